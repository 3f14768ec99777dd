import * as v from "valibot";
import { gpuSeconds, int, intField, num, oneOf, strictInput, stringField, text } from "../common.ts";
import { artifact } from "../refs.ts";
import type { ModelRequirements, ServiceDef } from "../types.ts";

export const SD_MODELS = ["sdxl-base-1.0", "sd-1.5", "sd3-medium", "flux.1-schnell"] as const;
type SdModel = (typeof SD_MODELS)[number];

/** Flow-matching transformers (SD3, FLUX) work on 2x2 latent patches: sizes must be multiples of 16, not 8. */
const PATCHED: readonly SdModel[] = ["sd3-medium", "flux.1-schnell"];

/**
 * fp16/bf16 inference at the model's native size; the recommended figure leaves room for 2048 px and batches.
 * FLUX.1-schnell (12B) fits 16 GB only with fp8 weights or text-encoder offload; 24 GB runs it comfortably.
 */
export const SD_HARDWARE: Record<SdModel, ModelRequirements> = {
  "sd-1.5": { min_vram_mb: 4096, recommended_vram_mb: 8192, gpu_count: 1, cuda_min: "12.1" },
  "sdxl-base-1.0": { min_vram_mb: 8192, recommended_vram_mb: 12288, gpu_count: 1, cuda_min: "12.1" },
  "sd3-medium": { min_vram_mb: 12288, recommended_vram_mb: 16384, gpu_count: 1, cuda_min: "12.1" },
  "flux.1-schnell": { min_vram_mb: 16384, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
};

/** Diffusers scheduler names. SD3 and FLUX are flow-matching models and only take `euler`. */
export const SD_SCHEDULERS = [
  "euler",
  "euler_a",
  "heun",
  "ddim",
  "dpmpp_2m",
  "dpmpp_2m_karras",
  "dpmpp_sde_karras",
  "unipc",
  "lcm",
] as const;

const side = (name: string) =>
  v.pipe(
    int(name, 256, 2048),
    v.multipleOf(8, `${name} must be a multiple of 8`),
    v.description("Pixels; the model's native size when absent (512 for sd-1.5, 1024 for the others)"),
  );

export const StableDiffusionInput = v.pipe(
  strictInput(
    {
      prompt: v.pipe(
        text("prompt", 1, 2000),
        v.check((s) => s.trim() !== "", "prompt must not be blank"),
      ),
      negative_prompt: v.optional(text("negative_prompt", 0, 2000)),
      model: v.optional(oneOf("model", SD_MODELS), "sdxl-base-1.0"),
      width: v.optional(side("width")),
      height: v.optional(side("height")),
      steps: v.optional(
        v.pipe(
          int("steps", 1, 150),
          v.description(
            "Denoising steps; the model's default when absent (4 for flux.1-schnell, 28-30 otherwise)",
          ),
        ),
      ),
      guidance: v.optional(
        v.pipe(
          num("guidance", 0, 30),
          v.description(
            "Classifier-free guidance scale; the model's default when absent (ignored by flux.1-schnell)",
          ),
        ),
      ),
      seed: v.optional(
        v.pipe(int("seed", 0, 4_294_967_295), v.description("Random when absent; image i uses seed + i")),
      ),
      num_images: v.optional(int("num_images", 1, 8), 1),
      scheduler: v.optional(oneOf("scheduler", SD_SCHEDULERS)),
      output_format: v.optional(oneOf("output_format", ["png", "jpeg", "webp"] as const), "png"),
    },
    "stable-diffusion input",
  ),
  v.forward(
    v.partialCheck(
      [["model"], ["width"]],
      (i) => i.width === undefined || !PATCHED.includes(i.model) || i.width % 16 === 0,
      "width must be a multiple of 16 for sd3-medium and flux.1-schnell",
    ),
    ["width"],
  ),
  v.forward(
    v.partialCheck(
      [["model"], ["height"]],
      (i) => i.height === undefined || !PATCHED.includes(i.model) || i.height % 16 === 0,
      "height must be a multiple of 16 for sd3-medium and flux.1-schnell",
    ),
    ["height"],
  ),
  v.forward(
    v.partialCheck(
      [["model"], ["scheduler"]],
      (i) => i.scheduler === undefined || !PATCHED.includes(i.model) || i.scheduler === "euler",
      "sd3-medium and flux.1-schnell only take the euler (flow-matching) scheduler",
    ),
    ["scheduler"],
  ),
);

export const StableDiffusionOutput = v.looseObject({
  images: v.pipe(
    v.array(
      artifact({
        seed: v.pipe(v.number(), v.integer(), v.description("Seed that reproduces this image")),
        width: v.optional(v.number()),
        height: v.optional(v.number()),
      }),
    ),
    v.minLength(1),
    v.maxLength(8),
  ),
  model: v.optional(v.string()),
  nsfw_detected: v.optional(v.array(v.boolean())),
});

export const stableDiffusionGenerate: ServiceDef = {
  id: "stable-diffusion.generate",
  category: "image",
  description:
    "Text to image with Stable Diffusion 1.5, SDXL, SD3 Medium or FLUX.1-schnell. Images are uploaded to object storage; the output links them with their SHA-256 and seed.",
  input: StableDiffusionInput,
  output: StableDiffusionOutput,
  requirements: { min_vram_mb: 4096, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
  model_requirements: SD_HARDWARE,
  pricing: {
    unit: "gpu_second",
    default_unit_price: 150,
    description:
      "Whole seconds between the miner's start and result, as the coordinator observed them. Not per image: the work behind one image varies by over 100x with model, steps and resolution (4 steps of FLUX.1-schnell at 512 px against 150 steps of SDXL at 2048 px), so a flat image price would be gamed by clients; execution time tracks the work and the coordinator observes it itself.",
  },
  defaults: { ttl_seconds: 900, timeout_seconds: 600, max_attempts: 3 },
  modelsFor: (input) => [stringField(input, "model", "sdxl-base-1.0")],
  meter: (_input, observedMs) => gpuSeconds(observedMs, 1),
  // One output slot per image asked for.
  artifacts: { outputs: (input) => intField(input, "num_images", 1), outputMaxMb: 100 },
};

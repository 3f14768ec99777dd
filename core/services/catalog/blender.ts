import * as v from "valibot";
import { int, intField, oneOf, strictInput, text } from "../common.ts";
import { artifact, MediaRef } from "../refs.ts";
import type { ServiceDef } from "../types.ts";

/** Blender's own frame limit. */
export const MAX_FRAME = 1_048_574;
/** Frames one job may span; longer animations are split into several jobs (which also spreads them over miners). */
export const MAX_FRAMES_PER_JOB = 10_000;
/** Frames a claim gets an upload URL for each (beyond: the archive carries them). */
export const MAX_UPLOADED_FRAMES = 64;
/** Up to this many frames the output lists every frame; beyond it, only the archive. */
export const MAX_LISTED_FRAMES = 1000;

/** Frames actually rendered: frame_start, frame_start + step, ... up to frame_end. */
export function renderedFrames(start: number, end: number, step: number): number {
  if (end < start) return 0;
  return Math.floor((end - start) / Math.max(1, step)) + 1;
}

const resolution = (name: string) =>
  v.pipe(int(name, 16, 16_384), v.description("Pixels; the scene's own setting when absent"));

export const BlenderInput = v.pipe(
  strictInput(
    {
      scene: v.pipe(MediaRef, v.description("The .blend file, with packed or relative resources")),
      scene_name: v.optional(
        v.pipe(
          text("scene_name", 1, 63),
          v.description("Scene to render; the file's active scene when absent"),
        ),
      ),
      camera: v.optional(
        v.pipe(text("camera", 1, 63), v.description("Camera object; the scene's active camera when absent")),
      ),
      engine: v.optional(oneOf("engine", ["cycles", "eevee"] as const), "cycles"),
      frame_start: int("frame_start", 0, MAX_FRAME),
      frame_end: int("frame_end", 0, MAX_FRAME),
      frame_step: v.optional(int("frame_step", 1, 1000), 1),
      width: v.optional(resolution("width")),
      height: v.optional(resolution("height")),
      samples: v.optional(
        v.pipe(
          int("samples", 1, 65_536),
          v.description("Render samples; the scene's own setting when absent"),
        ),
      ),
      output_format: v.optional(oneOf("output_format", ["png", "jpeg", "exr", "tiff"] as const), "png"),
    },
    "blender input",
  ),
  v.forward(
    v.partialCheck(
      [["frame_start"], ["frame_end"]],
      (i) => i.frame_end >= i.frame_start,
      "frame_end must be at least frame_start",
    ),
    ["frame_end"],
  ),
  v.forward(
    v.partialCheck(
      [["frame_start"], ["frame_end"]],
      (i) => i.frame_end - i.frame_start + 1 <= MAX_FRAMES_PER_JOB,
      `a job renders at most ${MAX_FRAMES_PER_JOB} frames (frame_end - frame_start + 1); split longer ranges into several jobs`,
    ),
    ["frame_end"],
  ),
);

export const BlenderOutput = v.looseObject({
  frames_rendered: v.pipe(v.number(), v.integer(), v.minValue(1)),
  frames: v.optional(
    v.pipe(
      v.array(artifact({ frame: v.pipe(v.number(), v.integer()) })),
      v.maxLength(MAX_LISTED_FRAMES),
      v.description(`Each frame, for ranges of at most ${MAX_LISTED_FRAMES} frames`),
    ),
  ),
  archive: v.optional(
    v.pipe(
      artifact({}),
      v.description("All frames in one .tar (always for longer ranges, which do not fit inline)"),
    ),
  ),
  engine: v.optional(v.string()),
});

export const blenderRender: ServiceDef = {
  id: "blender.render",
  category: "3d",
  description:
    "Render a frame range of a .blend scene with Cycles (OptiX/CUDA) or EEVEE. Frames are uploaded to object storage; the output links each frame (or an archive of them) with its SHA-256.",
  input: BlenderInput,
  output: BlenderOutput,
  requirements: { min_vram_mb: 4096, recommended_vram_mb: 12288, gpu_count: 1, cuda_min: "11.8" },
  pricing: {
    unit: "frame",
    default_unit_price: 10_000,
    description:
      "One unit per rendered frame: frame_start to frame_end every frame_step. The count is known from the validated input before the job runs, so it is honest and lets the client know the price up front; scene complexity is reflected in the miner's unit price.",
  },
  defaults: { ttl_seconds: 86_400, timeout_seconds: 21_600, max_attempts: 2 },
  meterReadsInput: true,
  meter: (input) => {
    const start = intField(input, "frame_start", 0);
    const end = intField(input, "frame_end", start);
    return Math.max(1, renderedFrames(start, end, intField(input, "frame_step", 1)));
  },
  // A slot per frame up to MAX_UPLOADED_FRAMES, and one for the archive of all frames.
  artifacts: {
    outputs: (input) => {
      const start = intField(input, "frame_start", 0);
      const end = intField(input, "frame_end", start);
      return Math.min(MAX_UPLOADED_FRAMES, renderedFrames(start, end, intField(input, "frame_step", 1))) + 1;
    },
  },
};

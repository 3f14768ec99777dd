import { describe, expect, it } from "vitest";
import { NotFoundError, ValidationError } from "../errors.ts";
import {
  defaultConstraints,
  findService,
  getService,
  jsonSchemaOf,
  listServices,
  maxUnits,
  requirementsFor,
  resolveShortcut,
  SERVICES,
  serviceView,
  shortcutOf,
  validateInput,
} from "./registry.ts";
import type { Requirements, ServiceDef } from "./types.ts";

/** Realistic miners, as `nvidia-smi` reports them (MiB, driver CUDA version). */
const MACHINES = [
  { name: "RTX 4090", gpus: [{ vram_mb: 24_564 }], cuda: "12.4" },
  { name: "2x A100 80GB", gpus: [{ vram_mb: 81_920 }, { vram_mb: 81_920 }], cuda: "12.4" },
];

function cudaAtLeast(have: string, need: string): boolean {
  const [hm = 0, hn = 0] = have.split(".").map(Number);
  const [nm = 0, nn = 0] = need.split(".").map(Number);
  return hm > nm || (hm === nm && hn >= nn);
}

function runsOn(r: Requirements, machine: (typeof MACHINES)[number]): boolean {
  const fit = machine.gpus.filter((g) => g.vram_mb >= r.min_vram_mb).length;
  return fit >= r.gpu_count && (r.cuda_min === undefined || cudaAtLeast(machine.cuda, r.cuda_min));
}

/** A valid input for every service, and for each model a service offers. */
const SAMPLES: Record<string, unknown[]> = {
  echo: [{ any: "thing" }],
  "whisper.transcribe": ["tiny", "base", "small", "medium", "large-v3", "large-v3-turbo"].map((model) => ({
    audio_url: "https://media.example.com/talk.mp3",
    model,
  })),
  "whisper.translate": ["tiny", "base", "small", "medium", "large-v3"].map((model) => ({
    audio_object: { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" },
    model,
  })),
  "stable-diffusion.generate": ["sdxl-base-1.0", "sd-1.5", "sd3-medium", "flux.1-schnell"].map((model) => ({
    prompt: "a red fox",
    model,
  })),
  "llm.inference": [
    "llama-3.1-8b-instruct",
    "llama-3.1-70b-instruct",
    "mistral-7b-instruct",
    "qwen2.5-7b-instruct",
  ].map((model) => ({ model, prompt: "Hello" })),
  "ffmpeg.transcode": [{ source: "https://media.example.com/in.mov", container: "mp4" }],
  "blender.render": [
    { scene: { artifact_id: "art_01bbbbbbbbbbbbbbbbbbbbbbbb" }, frame_start: 1, frame_end: 24 },
  ],
};

function samplesOf(def: ServiceDef): unknown[] {
  const raw = SAMPLES[def.id];
  if (!raw) throw new Error(`no sample input for ${def.id}`);
  return raw.map((input) => validateInput(def, input));
}

describe("service registry", () => {
  it("holds the built-in echo service and the GPU catalog, each id once", () => {
    const ids = SERVICES.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining([
        "echo",
        "whisper.transcribe",
        "whisper.translate",
        "stable-diffusion.generate",
        "llm.inference",
        "ffmpeg.transcode",
        "blender.render",
      ]),
    );
  });

  it("an unknown service is not found", () => {
    expect(findService("nope")).toBeUndefined();
    expect(() => getService("nope")).toThrow(NotFoundError);
    expect(getService("echo").id).toBe("echo");
  });

  it("typed shortcuts resolve to their services and unknown ones are not found", () => {
    expect(resolveShortcut("whisper", "transcribe").id).toBe("whisper.transcribe");
    expect(resolveShortcut("whisper", "translate").id).toBe("whisper.translate");
    expect(resolveShortcut("stable-diffusion", "generate").id).toBe("stable-diffusion.generate");
    expect(resolveShortcut("llm", "inference").id).toBe("llm.inference");
    expect(resolveShortcut("ffmpeg", "transcode").id).toBe("ffmpeg.transcode");
    expect(resolveShortcut("blender", "render").id).toBe("blender.render");
    expect(resolveShortcut("echo", "run").id).toBe("echo");
    expect(() => resolveShortcut("echo", "walk")).toThrow(NotFoundError);
    expect(() => resolveShortcut("whisper", "sing")).toThrow(NotFoundError);
    expect(() => resolveShortcut("whisper.transcribe", "run")).toThrow(NotFoundError);
  });

  it("every service's shortcut resolves back to it", () => {
    for (const def of SERVICES) {
      const [service = "", action = ""] = shortcutOf(def).split("/");
      expect(resolveShortcut(service, action)).toBe(def);
    }
  });

  it("validation errors are rooted at input", () => {
    try {
      validateInput(getService("llm.inference"), { model: "llama-3.1-8b-instruct", prompt: 5 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues).toEqual([
        { path: "input.prompt", message: "prompt must be a string" },
      ]);
    }
  });
});

describe("listing services", () => {
  it("filters by category", () => {
    const { items, next_cursor } = listServices({ category: "audio" });
    expect(items.map((s) => s.id)).toEqual(["whisper.transcribe", "whisper.translate"]);
    expect(next_cursor).toBeNull();
  });

  it("searches ids and descriptions case-insensitively", () => {
    expect(listServices({ q: "WHISPER" }).items.map((s) => s.id)).toEqual([
      "whisper.transcribe",
      "whisper.translate",
    ]);
    expect(listServices({ q: "cycles" }).items.map((s) => s.id)).toEqual(["blender.render"]);
    expect(listServices({ q: "no such thing" }).items).toEqual([]);
  });

  it("pages through every service exactly once with the cursor", () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = listServices({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((s) => s.id));
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    expect(seen).toEqual(SERVICES.map((s) => s.id).sort());
  });

  it("a limit outside 1..100 or a forged cursor is refused", () => {
    expect(() => listServices({ limit: 0 })).toThrow(ValidationError);
    expect(() => listServices({ limit: 101 })).toThrow(ValidationError);
    expect(() => listServices({ cursor: "not-a-cursor" })).toThrow(ValidationError);
  });
});

describe("service definitions", () => {
  it("every service exports a JSON schema", () => {
    for (const def of SERVICES) {
      const view = serviceView(def);
      expect(view.input_schema).toMatchObject({
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
      });
      expect(view.output_schema).toMatchObject({ type: "object" });
      expect(JSON.parse(JSON.stringify(view))).toEqual(view);
    }
    expect(jsonSchemaOf(getService("llm.inference").input)).toMatchObject({
      required: ["model"],
      additionalProperties: false,
      properties: { max_tokens: { type: "integer", minimum: 1, maximum: 32768, default: 1024 } },
    });
  });

  it("every service's requirements are satisfiable by a realistic GPU (an RTX 4090 24 GB, CUDA 12.4) or, for the 70b model, by a 2x A100 80GB miner", () => {
    const [rtx4090, a100x2] = MACHINES;
    for (const def of SERVICES) {
      expect(runsOn(def.requirements, rtx4090!), def.id).toBe(true);
      for (const input of samplesOf(def)) {
        const r = requirementsFor(def, input);
        const machine = (input as { model?: string }).model === "llama-3.1-70b-instruct" ? a100x2! : rtx4090!;
        expect(runsOn(r, machine), `${def.id} ${JSON.stringify(input)} on ${machine.name}`).toBe(true);
      }
    }
    const llama70b = requirementsFor(getService("llm.inference"), { model: "llama-3.1-70b-instruct" });
    expect(runsOn(llama70b, rtx4090!)).toBe(false);
    expect(llama70b.gpu_count * llama70b.min_vram_mb).toBeGreaterThanOrEqual(140 * 1024);
  });

  it("recommended VRAM is never below the minimum, and echo needs no GPU", () => {
    for (const def of SERVICES) {
      const profiles = [def.requirements, ...Object.values(def.model_requirements ?? {})];
      for (const p of profiles) expect(p.recommended_vram_mb).toBeGreaterThanOrEqual(p.min_vram_mb);
    }
    expect(getService("echo").requirements).toEqual({ min_vram_mb: 0, recommended_vram_mb: 0, gpu_count: 0 });
  });

  it("prices and defaults are positive integers (micro-credits, seconds)", () => {
    for (const def of SERVICES) {
      expect(Number.isSafeInteger(def.pricing.default_unit_price), def.id).toBe(true);
      expect(def.pricing.default_unit_price).toBeGreaterThan(0);
      for (const n of Object.values(def.defaults))
        expect(Number.isSafeInteger(n) && n > 0, def.id).toBe(true);
    }
  });

  it("meters are integers that never decrease with observed time", () => {
    for (const def of SERVICES) {
      for (const input of samplesOf(def)) {
        let previous = 0;
        for (const ms of [Number.NaN, -5, 0, 1, 999, 1000, 1001, 60_000, 3_600_000]) {
          const units = def.meter(input, ms);
          expect(Number.isSafeInteger(units) && units >= 0, `${def.id} at ${ms} ms`).toBe(true);
          expect(units).toBeGreaterThanOrEqual(previous);
          previous = units;
        }
      }
    }
  });

  it("gpu-second services bill whole observed seconds, rounded up", () => {
    const whisper = getService("whisper.transcribe");
    const input = samplesOf(whisper)[0];
    expect(whisper.meter(input, 0)).toBe(1);
    expect(whisper.meter(input, 1000)).toBe(1);
    expect(whisper.meter(input, 1001)).toBe(2);
    expect(whisper.meter(input, 59_500)).toBe(60);
  });

  it("the 70b model bills both of its GPUs", () => {
    const llm = getService("llm.inference");
    const small = validateInput(llm, { model: "llama-3.1-8b-instruct", prompt: "hi" });
    const big = validateInput(llm, { model: "llama-3.1-70b-instruct", prompt: "hi" });
    expect(llm.meter(small, 10_000)).toBe(10);
    expect(llm.meter(big, 10_000)).toBe(20);
  });

  it("blender meters frames from the requested range", () => {
    const blender = getService("blender.render");
    const scene = { artifact_id: "art_01bbbbbbbbbbbbbbbbbbbbbbbb" };
    const range = validateInput(blender, { scene, frame_start: 1, frame_end: 250 });
    expect(blender.meter(range, 5)).toBe(250);
    expect(blender.meter(range, 3_600_000)).toBe(250);
    const stepped = validateInput(blender, { scene, frame_start: 1, frame_end: 250, frame_step: 10 });
    expect(blender.meter(stepped, 0)).toBe(25);
    expect(blender.meter(validateInput(blender, { scene, frame_start: 7, frame_end: 7 }), 0)).toBe(1);
  });

  it("echo meters one request", () => {
    expect(getService("echo").meter({ sleep_ms: 10_000 }, 10_000)).toBe(1);
  });

  it("the hold bound is the meter at the timeout", () => {
    const llm = getService("llm.inference");
    const big = validateInput(llm, { model: "llama-3.1-70b-instruct", prompt: "hi" });
    expect(maxUnits(llm, big, llm.defaults.timeout_seconds)).toBe(2 * 1800);
  });
});

describe("default constraints", () => {
  it("an llm job requires the model it names and that model's hardware", () => {
    const llm = getService("llm.inference");
    expect(
      defaultConstraints(llm, validateInput(llm, { model: "llama-3.1-70b-instruct", prompt: "hi" })),
    ).toEqual({
      min_vram_mb: 76_800,
      gpu_count: 2,
      cuda_min: "12.1",
      models: ["llama-3.1-70b-instruct"],
    });
  });

  it("a whisper job requires the checkpoint it asks for", () => {
    const whisper = getService("whisper.transcribe");
    const input = validateInput(whisper, { audio_url: "https://x.example.com/a.wav", model: "large-v3" });
    expect(defaultConstraints(whisper, input)).toEqual({
      min_vram_mb: 10_240,
      gpu_count: 1,
      cuda_min: "12.1",
      models: ["whisper-large-v3"],
    });
  });

  it("echo runs anywhere and ffmpeg needs no model", () => {
    expect(defaultConstraints(getService("echo"), {})).toEqual({ min_vram_mb: 0, gpu_count: 0 });
    expect(defaultConstraints(getService("ffmpeg.transcode"), {})).toEqual({
      min_vram_mb: 2048,
      gpu_count: 1,
      cuda_min: "12.1",
    });
  });
});

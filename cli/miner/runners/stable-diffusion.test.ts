import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { StableDiffusionInput } from "../../../core/services/catalog/stable-diffusion.ts";
import { imageInfo, progressReport, seedsOf, serverFailure, txt2imgBody } from "./stable-diffusion.ts";

/** A job's input as the coordinator hands it over: validated, defaults filled. */
const input = (extra: Record<string, unknown> = {}) =>
  v.parse(StableDiffusionInput, { prompt: "a red bicycle", ...extra });

describe("the stable-diffusion runner's txt2img request", () => {
  it("maps the job's settings to A1111's fields: one iteration per image, the seed, the checkpoint and the format", () => {
    const body = txt2imgBody(
      input({
        negative_prompt: "text",
        width: 768,
        height: 512,
        steps: 25,
        guidance: 5,
        num_images: 3,
        scheduler: "dpmpp_sde_karras",
        output_format: "webp",
      }),
      42,
      "sd_xl_base_1.0.safetensors",
    );
    expect(body).toEqual({
      prompt: "a red bicycle",
      negative_prompt: "text",
      width: 768,
      height: 512,
      steps: 25,
      cfg_scale: 5,
      seed: 42,
      batch_size: 1,
      n_iter: 3,
      sampler_name: "DPM++ SDE",
      scheduler: "Karras",
      send_images: true,
      save_images: false,
      override_settings: { samples_format: "webp", sd_model_checkpoint: "sd_xl_base_1.0.safetensors" },
      override_settings_restore_afterwards: false,
    });
  });

  it("fills each model's own defaults where the input leaves them, and Euler for flow-matching models", () => {
    expect(txt2imgBody(input({ model: "sd-1.5" }), 1)).toMatchObject({
      width: 512,
      height: 512,
      steps: 30,
      cfg_scale: 7,
    });
    const sdxl = txt2imgBody(input(), 1);
    expect(sdxl).toMatchObject({ width: 1024, height: 1024, steps: 30, cfg_scale: 7, n_iter: 1 });
    // Left to the server's default sampler, and to the checkpoint it has loaded.
    expect(sdxl).not.toHaveProperty("sampler_name");
    expect(sdxl.override_settings).toEqual({ samples_format: "png" });
    expect(txt2imgBody(input({ model: "flux.1-schnell" }), 1)).toMatchObject({
      width: 1024,
      steps: 4,
      cfg_scale: 1,
      sampler_name: "Euler",
    });
    expect(txt2imgBody(input({ model: "sd3-medium", scheduler: "euler" }), 1)).toMatchObject({
      steps: 28,
      sampler_name: "Euler",
    });
  });
});

describe("the stable-diffusion runner's progress", () => {
  it("reports the server's progress with the image and step it is at, and an idle server as waiting", () => {
    expect(
      progressReport({
        progress: 0.55,
        eta_relative: 3.2,
        state: { job_count: 2, job_no: 1, sampling_step: 2, sampling_steps: 20 },
      }),
    ).toEqual({ fraction: 0.55, message: "image 2 of 2: step 2 of 20, about 4 s left" });
    // Never 1 while sampling: the uploads remain.
    expect(
      progressReport({
        progress: 1,
        state: { job_count: 1, job_no: 0, sampling_step: 20, sampling_steps: 20 },
      }).fraction,
    ).toBe(0.95);
    expect(progressReport({ progress: 0, state: { job_count: 0, sampling_steps: 0 } })).toEqual({
      fraction: 0,
      message: "waiting for the image server",
    });
  });
});

describe("the stable-diffusion runner's answer mapping", () => {
  it("reads a PNG's size from its IHDR and names the type by the bytes, whatever was asked", () => {
    const png = new Uint8Array(33);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
    new DataView(png.buffer).setUint32(16, 640);
    new DataView(png.buffer).setUint32(20, 448);
    expect(imageInfo(png)).toEqual({ contentType: "image/png", width: 640, height: 448 });
    expect(imageInfo(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toEqual({ contentType: "image/jpeg" });
    expect(imageInfo(new Uint8Array(Buffer.from("RIFF\0\0\0\0WEBPVP8 ", "latin1")))).toEqual({
      contentType: "image/webp",
    });
  });

  it("takes each image's seed from the answer's info, seed + i where it says none", () => {
    expect(seedsOf(JSON.stringify({ seed: 7, all_seeds: [7, 8, 9] }), 1, 3)).toEqual([7, 8, 9]);
    expect(seedsOf(JSON.stringify({ seed: 7 }), 1, 2)).toEqual([7, 8]);
    expect(seedsOf("not json", 100, 2)).toEqual([100, 101]);
    expect(seedsOf(undefined, 5, 1)).toEqual([5]);
  });
});

describe("the stable-diffusion runner's failures", () => {
  it("a refused input is final, with FastAPI's detail", () => {
    const f = serverFailure(
      422,
      JSON.stringify({ detail: [{ loc: ["body", "width"], msg: "value is not a valid integer" }] }),
    );
    expect([f.code, f.retryable]).toEqual(["sd_refused", false]);
    expect(f.message).toContain("value is not a valid integer");
  });

  it("out of memory, overload, bad credentials and a server without --api are retried", () => {
    const oom = serverFailure(
      500,
      JSON.stringify({ error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory." }),
    );
    expect([oom.code, oom.retryable, oom.message]).toEqual([
      "sd_server_error",
      true,
      "the image server answered 500: OutOfMemoryError: CUDA out of memory.",
    ]);
    expect([serverFailure(401, "").code, serverFailure(401, "").retryable]).toEqual([
      "sd_unauthorized",
      true,
    ]);
    expect(serverFailure(404, JSON.stringify({ detail: "Not Found" }))).toMatchObject({
      code: "sd_api_missing",
      retryable: true,
    });
    expect(serverFailure(429, "").retryable).toBe(true);
  });
});

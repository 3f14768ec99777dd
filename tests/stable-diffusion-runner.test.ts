import { createHash } from "node:crypto";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMiner } from "../cli/miner/agent.ts";
import type { Executor } from "../cli/miner/executors.ts";
import { stableDiffusionRunnerSpec } from "../cli/miner/runners/stable-diffusion.ts";
import { StableDiffusionOutput } from "../core/services/catalog/stable-diffusion.ts";
import {
  api,
  createAccount,
  eventually,
  fundedClient,
  isolated,
  minerRunWithoutServer,
  stack,
} from "./fixture.ts";
import { readPng } from "./png.ts";
import { type SdStandIn, startSdStandIn } from "./stable-diffusion-stand-in.ts";

/*
 * The reference miner's stable-diffusion runner on the real local stack, against a STAND-IN for an AUTOMATIC1111 /
 * Forge web UI that speaks its real API (tests/stable-diffusion-stand-in.ts): txt2img's base64 PNGs become one output
 * artifact each, which the client downloads through the result's presigned links; /sdapi/v1/progress polled during
 * the run becomes the job's progress; a cancel interrupts the server's sampling.
 */

const AUTH = "coord:hunter2";
let server: SdStandIn;
beforeAll(async () => {
  server = await startSdStandIn({
    stepMs: 120,
    auth: AUTH,
    checkpoints: ["sd_xl_base_1.0.safetensors [31e35c80fc]", "v1-5-pruned-emaonly.safetensors [6ce0161689]"],
  });
});
afterAll(() => server.close());

type Job = {
  id: string;
  status: string;
  error?: { code: string; message: string; retryable?: boolean } | null;
};
type Result = {
  status: string;
  output: { images: Record<string, unknown>[]; model?: string };
  artifacts: { path: string; artifact_id: string; download_url: string }[];
  usage: Record<string, number> | null;
};

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The runner as `coord miner run` builds it from its flags. */
function runner(opts: Record<string, string | string[]>): Executor {
  const made = stableDiffusionRunnerSpec.make(
    { opts: { "sd-url": server.url, "sd-auth": AUTH, ...opts }, env: {} },
    "stable-diffusion.generate",
  );
  if (typeof made === "string") throw new Error(made);
  return made;
}

/** Runs the reference miner with the stable-diffusion runner until it has done one job. */
async function sdMiner(region: string, executor: Executor) {
  const account = await createAccount("miner");
  return runMiner({
    url: stack.url,
    key: account.key,
    name: `sd-${region}`,
    services: ["stable-diffusion.generate"],
    region,
    gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
    prices: { "stable-diffusion.generate": 10 },
    registration: { cuda_version: "12.4", models: ["sdxl-base-1.0", "sd-1.5", "flux.1-schnell"] },
    maxJobs: 1,
    log: () => {},
    executors: { "stable-diffusion.generate": executor },
  });
}

async function submit(key: string, constraints: object, input: Record<string, unknown>, maxAttempts = 3) {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: {
      service: "stable-diffusion.generate",
      input,
      constraints,
      max_price: 10_000_000,
      max_attempts: maxAttempts,
    },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

describe("the stable-diffusion runner", () => {
  it("generates two images through txt2img: each a PNG of the asked size in its own output slot, progress polled from the server, the seeds in the output", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, {
      prompt: "a lighthouse at dusk, oil painting",
      negative_prompt: "blurry",
      model: "sdxl-base-1.0",
      width: 512,
      height: 384,
      steps: 15,
      guidance: 6.5,
      seed: 1234,
      num_images: 2,
      scheduler: "dpmpp_2m_karras",
    });
    const summary = await sdMiner(
      region,
      runner({ "sd-model": ["sdxl-base-1.0=sd_xl_base_1.0.safetensors"] }),
    );
    expect(summary).toMatchObject({ completed: 1, failed: 0 });

    const result = (await api<Result>("GET", `/v1/jobs/${job.id}/result`, { key: client.key })).body;
    expect(result.status).toBe("completed");
    expect(v.safeParse(StableDiffusionOutput, result.output).success).toBe(true);
    expect(result.output.model).toBe("sdxl-base-1.0");
    expect(result.output.images).toMatchObject([
      { seed: 1234, width: 512, height: 384, content_type: "image/png" },
      { seed: 1235, width: 512, height: 384, content_type: "image/png" },
    ]);
    expect(result.usage).toEqual({ images: 2, sampling_steps: 30 });
    // Each image is its own artifact, downloaded by the client: a real PNG of the asked size, the bytes the output names.
    expect(result.artifacts.map((a) => a.path)).toEqual(["output.images.0", "output.images.1"]);
    const ids = new Set(result.artifacts.map((a) => a.artifact_id));
    expect(ids.size).toBe(2);
    for (const [i, artifact] of result.artifacts.entries()) {
      const res = await fetch(artifact.download_url);
      expect(res.status).toBe(200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(readPng(bytes)).toEqual({ width: 512, height: 384 });
      expect(sha256(bytes)).toBe(result.output.images[i]?.sha256);
    }

    // What reached the server: the job's settings under A1111's names, one iteration per image, the checkpoint.
    const generation = server.generations.find((g) => g.body.prompt === "a lighthouse at dusk, oil painting");
    expect(generation?.body).toMatchObject({
      negative_prompt: "blurry",
      width: 512,
      height: 384,
      steps: 15,
      cfg_scale: 6.5,
      seed: 1234,
      batch_size: 1,
      n_iter: 2,
      sampler_name: "DPM++ 2M",
      scheduler: "Karras",
      send_images: true,
      save_images: false,
      override_settings: { sd_model_checkpoint: "sd_xl_base_1.0.safetensors", samples_format: "png" },
    });
    expect(generation?.sampled).toBe(30);
    // The checkpoint was looked up first, and every call carried the --api-auth credentials (the server refuses others).
    expect(server.requests.some((r) => r.path === "/sdapi/v1/sd-models")).toBe(true);
    expect(
      server.requests.every((r) => r.authorization === `Basic ${Buffer.from(AUTH).toString("base64")}`),
    ).toBe(true);

    // The server was polled mid-run, and what it said is the job's progress.
    expect(server.progressDuringRuns.length).toBeGreaterThan(0);
    const events = await api<{ events: { type: string; data?: { progress?: number; message?: string } }[] }>(
      "GET",
      `/v1/jobs/${job.id}/events`,
      { key: client.key },
    );
    const polled = events.body.events
      .filter((e) => e.type === "job.progress.v1")
      .map((e) => e.data?.message ?? "")
      .filter((m) => /^image [12] of 2: step \d+ of 15/.test(m));
    expect(polled.length).toBeGreaterThan(0);
  }, 45_000);

  it("a cancel mid-run makes the runner interrupt the server's sampling; the job ends cancelled with nothing uploaded", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const prompt = `a very slow cathedral ${region}`;
    const job = await submit(client.key, constraints, { prompt, model: "sd-1.5", steps: 150 });
    const done = sdMiner(region, runner({}));

    // Sampling under way on the server (150 steps of 120 ms: half a minute if nothing stops it).
    await eventually(
      async () =>
        server.progressDuringRuns.length > 0 && server.generations.some((g) => g.body.prompt === prompt),
      20_000,
    );
    const cancel = await api("POST", `/v1/jobs/${job.id}/cancel`, { key: client.key });
    expect(cancel.status, cancel.text).toBe(200);

    const summary = await done;
    expect(summary).toMatchObject({ claimed: 1, completed: 0, failed: 0, abandoned: 1 });
    expect(server.interrupts).toBeGreaterThan(0);
    const generation = server.generations.find((g) => g.body.prompt === prompt);
    expect(generation?.interrupted).toBe(true);
    expect(generation?.sampled).toBeLessThan(150);
    // Model defaults for sd-1.5 where the input said nothing: its native 512 px, 7 guidance.
    expect(generation?.body).toMatchObject({ width: 512, height: 512, steps: 150, cfg_scale: 7, n_iter: 1 });
    const result = (await api<Result>("GET", `/v1/jobs/${job.id}/result`, { key: client.key })).body;
    expect(result).toMatchObject({ status: "cancelled", artifacts: [] });
  }, 60_000);

  it("a checkpoint the server does not have fails the attempt as retryable sd_model_missing instead of generating with another", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const prompt = `a fox ${region}`;
    const job = await submit(client.key, constraints, { prompt, model: "flux.1-schnell" }, 1);
    const summary = await sdMiner(
      region,
      runner({ "sd-model": ["flux.1-schnell=flux1-schnell-fp8.safetensors"] }),
    );
    expect(summary).toMatchObject({ completed: 0, failed: 1 });
    const final = (await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key })).body;
    expect(final.status).toBe("failed");
    expect(final.error).toMatchObject({
      code: "sd_model_missing",
      retryable: true,
      message: expect.stringContaining("flux1-schnell-fp8.safetensors"),
    });
    // A1111 would have fallen back to its first checkpoint: nothing was generated.
    expect(server.generations.some((g) => g.body.prompt === prompt)).toBe(false);
  }, 45_000);

  it("coord miner run refuses to serve stable-diffusion.generate without an image server to forward to", async () => {
    const out = await minerRunWithoutServer("stable-diffusion.generate");
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("--sd-url");
  });
});

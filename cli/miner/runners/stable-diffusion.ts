import { randomInt } from "node:crypto";
import type * as v from "valibot";
import type {
  SD_SCHEDULERS,
  StableDiffusionInput,
  StableDiffusionOutput,
} from "../../../core/services/catalog/stable-diffusion.ts";
import { str } from "../../command.ts";
import { abortableSleep, Completed, type ExecutionContext, type Executor, JobFailure } from "../executors.ts";
import type { RunnerSpec } from "./index.ts";
import { modelNames } from "./model-names.ts";

/**
 * The `stable-diffusion.generate` runner: forwards a job to an AUTOMATIC1111 (or Forge) web UI started with `--api`.
 * `POST /sdapi/v1/txt2img` generates the images (one iteration per image: a batch of eight SDXL images would not fit
 * most cards, and iteration i still uses seed + i); while it runs, `GET /sdapi/v1/progress` is polled every second
 * and reported as progress, which renews the lease; a stop order posts `/sdapi/v1/interrupt` (closing the
 * connection alone does not stop A1111). Each image goes to one of the claim's output slots. A1111 generates one
 * request at a time, so a miner should register concurrency 1 per server (its progress is the server's, not a job's).
 */

type Input = v.InferOutput<typeof StableDiffusionInput>;
type Output = v.InferOutput<typeof StableDiffusionOutput>;
type Model = Input["model"];
type Scheduler = (typeof SD_SCHEDULERS)[number];

export interface StableDiffusionRunnerConfig {
  /** The web UI's base URL, e.g. `http://127.0.0.1:7860` (the `/sdapi/v1/...` paths are appended). */
  baseUrl: string;
  /** `user:pass` of A1111's `--api-auth` (HTTP basic). */
  auth?: string;
  /** The server's checkpoint for a registry model, e.g. `{"sdxl-base-1.0": "sd_xl_base_1.0.safetensors"}`. */
  models?: Record<string, string>;
  /** How often to poll `/sdapi/v1/progress` (default 1000 ms). */
  pollMs?: number;
}

/** What each model does when the input leaves it to "the model's default" (the registry's descriptions). */
const NATIVE: Record<Model, { size: number; steps: number; cfg: number }> = {
  "sd-1.5": { size: 512, steps: 30, cfg: 7 },
  "sdxl-base-1.0": { size: 1024, steps: 30, cfg: 7 },
  "sd3-medium": { size: 1024, steps: 28, cfg: 7 },
  // Distilled: no classifier-free guidance (cfg 1 turns it off), four steps.
  "flux.1-schnell": { size: 1024, steps: 4, cfg: 1 },
};

/** Diffusers scheduler names as A1111 samplers; since 1.9 the noise schedule (Karras) is a field of its own. */
const SAMPLERS: Record<Scheduler, { sampler_name: string; scheduler?: string }> = {
  euler: { sampler_name: "Euler" },
  euler_a: { sampler_name: "Euler a" },
  heun: { sampler_name: "Heun" },
  ddim: { sampler_name: "DDIM" },
  dpmpp_2m: { sampler_name: "DPM++ 2M" },
  dpmpp_2m_karras: { sampler_name: "DPM++ 2M", scheduler: "Karras" },
  dpmpp_sde_karras: { sampler_name: "DPM++ SDE", scheduler: "Karras" },
  unipc: { sampler_name: "UniPC" },
  lcm: { sampler_name: "LCM" },
};

/** Flow-matching models take Euler only (the registry refuses others); A1111's default sampler would not do. */
const FLOW: readonly Model[] = ["sd3-medium", "flux.1-schnell"];

/** The `POST /sdapi/v1/txt2img` body of one job (pure: what the tests check, and what is sent). */
export function txt2imgBody(input: Input, seed: number, checkpoint?: string): Record<string, unknown> {
  const model = input.model ?? "sdxl-base-1.0";
  const native = NATIVE[model];
  const sampler = input.scheduler
    ? SAMPLERS[input.scheduler]
    : FLOW.includes(model)
      ? SAMPLERS.euler
      : undefined;
  return {
    prompt: input.prompt,
    negative_prompt: input.negative_prompt ?? "",
    width: input.width ?? native.size,
    height: input.height ?? native.size,
    steps: input.steps ?? native.steps,
    cfg_scale: input.guidance ?? native.cfg,
    seed,
    batch_size: 1,
    n_iter: input.num_images ?? 1,
    ...sampler,
    send_images: true,
    save_images: false,
    override_settings: {
      // A1111 encodes the answer's images in this format.
      samples_format: input.output_format ?? "png",
      ...(checkpoint ? { sd_model_checkpoint: checkpoint } : {}),
    },
    // Kept loaded for the next job (switching checkpoints takes seconds); and the images are encoded after the
    // restore, so restoring would also lose samples_format.
    override_settings_restore_afterwards: false,
  };
}

/** `GET /sdapi/v1/progress` as A1111 answers it. */
export interface SdProgress {
  progress?: number;
  eta_relative?: number;
  state?: {
    job_count?: number;
    job_no?: number;
    sampling_step?: number;
    sampling_steps?: number;
    interrupted?: boolean;
  };
}

/** A progress answer as a fraction (kept under 1: the uploads remain) and a line for the job's progress. */
export function progressReport(p: SdProgress): { fraction: number; message: string } {
  const s = p.state ?? {};
  if (!s.job_count || !s.sampling_steps) return { fraction: 0, message: "waiting for the image server" };
  const eta = p.eta_relative && p.eta_relative > 0 ? `, about ${Math.ceil(p.eta_relative)} s left` : "";
  return {
    fraction: Math.max(0, Math.min(0.95, p.progress ?? 0)),
    message: `image ${(s.job_no ?? 0) + 1} of ${s.job_count}: step ${s.sampling_step ?? 0} of ${s.sampling_steps}${eta}`,
  };
}

/** An encoded image's type (by its magic bytes, whatever was asked) and, for a PNG, its size from the IHDR. */
export function imageInfo(bytes: Uint8Array): { contentType: string; width?: number; height?: number } {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes[0] === 0x89 && ascii(1, 4) === "PNG" && ascii(12, 16) === "IHDR") {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { contentType: "image/png", width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return { contentType: "image/jpeg" };
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return { contentType: "image/webp" };
  return { contentType: "application/octet-stream" };
}

/** The seeds of a txt2img answer: its `info` (a JSON string) names them; seed + i when it does not. */
export function seedsOf(info: unknown, seed: number, count: number): number[] {
  let parsed: { seed?: unknown; all_seeds?: unknown } = {};
  try {
    parsed = typeof info === "string" ? JSON.parse(info) : {};
  } catch {}
  const all = Array.isArray(parsed.all_seeds) ? parsed.all_seeds.filter(Number.isInteger) : [];
  const first = Number.isInteger(parsed.seed) ? (parsed.seed as number) : seed;
  return Array.from({ length: count }, (_, i) => (all[i] as number | undefined) ?? first + i);
}

/**
 * A server's refusal as a job failure: bad credentials (the miner's configuration), a server without `--api`
 * (404), overload and its own errors (out of memory among them: a larger card may manage) are retried; any other
 * 4xx refuses the job's input and is final.
 */
export function serverFailure(status: number, body: string): JobFailure {
  const said = `the image server answered ${status}: ${detailOf(body)}`;
  if (status === 401 || status === 403) return new JobFailure("sd_unauthorized", said, true);
  if (status === 404)
    return new JobFailure("sd_api_missing", `${said} (is the web UI started with --api?)`, true);
  if (status === 429 || status >= 500) return new JobFailure("sd_server_error", said, true);
  return new JobFailure("sd_refused", said, false);
}

/** The reason in an A1111 error body: FastAPI's `detail` (validation), or its `error` and `errors` (exceptions). */
function detailOf(body: string): string {
  try {
    const j = JSON.parse(body) as { detail?: unknown; error?: unknown; errors?: unknown };
    const parts = [j.error, j.detail, j.errors].filter((p) => p !== undefined && p !== "");
    if (parts.length > 0)
      return parts
        .map((p) => (typeof p === "string" ? p : JSON.stringify(p)))
        .join(": ")
        .slice(0, 1000);
  } catch {}
  return body.slice(0, 1000);
}

/** `coord miner run --services stable-diffusion.generate --sd-url URL`. */
export const stableDiffusionRunnerSpec: RunnerSpec = {
  name: "stable-diffusion",
  services: ["stable-diffusion.generate"],
  summary: "stable-diffusion.generate through an AUTOMATIC1111 or Forge web UI started with --api: --sd-url",
  options: {
    "sd-url": {
      type: "string",
      value: "URL",
      description:
        "AUTOMATIC1111/Forge web UI (started with --api) for stable-diffusion.generate (env COORD_SD_URL)",
    },
    "sd-auth": {
      type: "string",
      value: "USER:PASS",
      description: "Its --api-auth credentials, if it wants them (env COORD_SD_AUTH)",
    },
    "sd-model": {
      type: "string",
      multiple: true,
      value: "ID=CHECKPOINT",
      description:
        "The server's checkpoint for a registry model, e.g. sdxl-base-1.0=sd_xl_base_1.0.safetensors",
    },
  },
  make: ({ opts, env }) => {
    const baseUrl = str(opts, "sd-url") ?? env.COORD_SD_URL;
    if (!baseUrl)
      return "stable-diffusion.generate needs an AUTOMATIC1111 or Forge web UI: --sd-url URL (or COORD_SD_URL)";
    const auth = str(opts, "sd-auth") ?? env.COORD_SD_AUTH;
    if (auth !== undefined && !/^[^:]+:/.test(auth)) return "--sd-auth takes USER:PASS";
    const models = modelNames(opts, "sd-model", "ID=CHECKPOINT");
    if (typeof models === "string") return models;
    return stableDiffusionRunner({ baseUrl, models, ...(auth ? { auth } : {}) });
  },
};

interface SdModelEntry {
  title?: string;
  model_name?: string;
  hash?: string | null;
  sha256?: string | null;
  filename?: string;
}

export function stableDiffusionRunner(cfg: StableDiffusionRunnerConfig): Executor {
  const base = cfg.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = cfg.auth
    ? { authorization: `Basic ${Buffer.from(cfg.auth).toString("base64")}` }
    : {};
  const pollMs = cfg.pollMs ?? 1000;
  const present = new Set<string>();

  /** Calls the server; a connection that fails is the server's absence (retried), not the job's fault. */
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { ...headers, ...(init.headers as Record<string, string>) },
    });

  /**
   * A1111 quietly falls back to another checkpoint when `sd_model_checkpoint` names none it has: the mapped
   * checkpoint is looked up in `/sdapi/v1/sd-models` first (once it was found, not again).
   */
  async function ensureCheckpoint(name: string, signal: AbortSignal) {
    if (present.has(name)) return;
    const res = await call("/sdapi/v1/sd-models", { signal }).catch((err: Error) => {
      if (signal.aborted) throw signal.reason;
      throw new JobFailure("sd_unreachable", `${base}: ${err.message}`, true);
    });
    if (!res.ok) throw serverFailure(res.status, await res.text().catch(() => ""));
    const entries = (await res.json()) as SdModelEntry[];
    const found = entries.some(
      (e) =>
        e.title === name ||
        e.model_name === name ||
        e.hash === name ||
        e.sha256 === name ||
        e.title?.startsWith(`${name} [`) ||
        e.filename?.split(/[\\/]/).at(-1) === name,
    );
    if (!found)
      throw new JobFailure(
        "sd_model_missing",
        `the image server has no checkpoint ${JSON.stringify(name)} (it has ${entries.map((e) => e.title).join(", ")})`,
        true,
      );
    present.add(name);
  }

  /** Polls the server's progress until `stop` aborts, reporting each answer (which renews the lease). */
  async function pollProgress(ctx: ExecutionContext, stop: AbortSignal) {
    let best = 0;
    for (;;) {
      await abortableSleep(pollMs, stop);
      const res = await call("/sdapi/v1/progress?skip_current_image=true", { signal: stop }).catch(
        () => undefined,
      );
      if (stop.aborted) return;
      if (!res?.ok) {
        await res?.body?.cancel();
        continue;
      }
      const { fraction, message } = progressReport((await res.json()) as SdProgress);
      // The server's progress restarts between its own phases; the job's never goes backwards.
      best = Math.max(best, fraction);
      await ctx.progress(Number(best.toFixed(3)), message);
    }
  }

  return async (ctx) => {
    const input = ctx.input as Input;
    const count = input.num_images ?? 1;
    const model = input.model ?? "sdxl-base-1.0";
    const checkpoint = cfg.models?.[model];
    if (checkpoint) await ensureCheckpoint(checkpoint, ctx.signal);
    // Chosen here when the input leaves it random, so that the output names the seeds whatever the server says.
    const seed = input.seed ?? randomInt(0, 2 ** 32 - count);
    const body = txt2imgBody(input, seed, checkpoint);

    const finished = new AbortController();
    const stop = AbortSignal.any([ctx.signal, finished.signal]);
    let interrupted: Promise<void> | undefined;
    const onAbort = () => {
      interrupted = call("/sdapi/v1/interrupt", { method: "POST", signal: AbortSignal.timeout(5000) }).then(
        (r) => r.body?.cancel(),
        () => {},
      );
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    const polling = pollProgress(ctx, stop).catch(() => {});
    let answer: { images?: unknown; info?: unknown };
    try {
      const res = await call("/sdapi/v1/txt2img", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: ctx.signal,
      }).catch((err: Error) => {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        throw new JobFailure("sd_unreachable", `${base}: ${err.message}`, true);
      });
      if (!res.ok) throw serverFailure(res.status, await res.text().catch(() => ""));
      answer = (await res.json()) as typeof answer;
    } catch (err) {
      // Stopped: the GPU is freed before the runner says it is done, so that the next job does not queue behind.
      if (ctx.signal.aborted) await interrupted;
      throw err;
    } finally {
      finished.abort();
      ctx.signal.removeEventListener("abort", onAbort);
      await polling;
    }
    ctx.signal.throwIfAborted();

    const images = Array.isArray(answer.images) ? (answer.images as unknown[]) : [];
    // With save_images off A1111 adds no grid, so the first images are the iterations (extensions append theirs).
    if (images.length < count || images.slice(0, count).some((i) => typeof i !== "string"))
      throw new JobFailure(
        "sd_bad_answer",
        `asked for ${count} image(s), the image server answered ${images.length}`,
        true,
      );
    await ctx.progress(0.96, `uploading ${count} image(s)`);
    const seeds = seedsOf(answer.info, seed, count);
    const out: Output["images"] = [];
    for (const [i, encoded] of (images.slice(0, count) as string[]).entries()) {
      const bytes = new Uint8Array(Buffer.from(encoded.replace(/^data:[^,]*,/, ""), "base64"));
      const info = imageInfo(bytes);
      const uploaded = await ctx.artifacts.upload(bytes, info.contentType);
      out.push({
        ...uploaded,
        seed: seeds[i] as number,
        width: info.width ?? (body.width as number),
        height: info.height ?? (body.height as number),
      });
    }
    return new Completed(
      { images: out, model },
      { images: count, sampling_steps: (body.steps as number) * count },
    );
  };
}

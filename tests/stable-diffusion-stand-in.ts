import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { crc32, deflateSync } from "node:zlib";
import { listenLocal } from "./local-server.ts";

/**
 * A STAND-IN for an AUTOMATIC1111 / Forge web UI started with `--api`, which tests cannot run (no GPU, no
 * checkpoints): it speaks the real wire format of `POST /sdapi/v1/txt2img` (the JSON body in; `{images: [base64
 * PNG], parameters, info}` out, `info` being a JSON string with the seeds), `GET /sdapi/v1/progress` (`{progress,
 * eta_relative, state: {job_count, job_no, sampling_step, sampling_steps, ...}}`), `POST /sdapi/v1/interrupt`,
 * `GET /sdapi/v1/sd-models`, `--api-auth` basic auth and FastAPI's 422 bodies. Like A1111 it generates one request at
 * a time. Its "sampling" is `stepMs` a step; its images are real PNGs of the asked size (one solid colour from the
 * seed, the infotext in a `parameters` tEXt chunk as A1111 writes it). An interrupt ends sampling at once, and the
 * answer carries what was generated so far, as A1111's does.
 */

export interface SdStandInOptions {
  stepMs?: number;
  /** `user:pass` it wants as basic auth (A1111's `--api-auth`). */
  auth?: string;
  /** Its checkpoints' titles, as `/sdapi/v1/sd-models` lists them. */
  checkpoints?: string[];
}

export interface SdGeneration {
  body: Record<string, unknown>;
  /** Steps sampled, over all images. */
  sampled: number;
  interrupted: boolean;
}

export interface SdStandIn {
  url: string;
  /** Every request, in arrival order. */
  requests: { method: string; path: string; authorization?: string }[];
  generations: SdGeneration[];
  /** `/sdapi/v1/progress` answers given while a generation was sampling. */
  progressDuringRuns: Record<string, unknown>[];
  interrupts: number;
  close(): Promise<void>;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A valid RGB PNG of one colour, with `parameters` text. */
export function solidPng(width: number, height: number, rgb: [number, number, number], text: string): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set(rgb, 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("tEXt", Buffer.from(`parameters\0${text}`, "latin1")),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const idle = () => ({
  skipped: false,
  interrupted: false,
  job: "",
  job_count: 0,
  job_timestamp: "0",
  job_no: 0,
  sampling_step: 0,
  sampling_steps: 0,
});

export async function startSdStandIn(opts: SdStandInOptions = {}): Promise<SdStandIn> {
  const stepMs = opts.stepMs ?? 100;
  const checkpoints = opts.checkpoints ?? ["sd_xl_base_1.0.safetensors [31e35c80fc]"];
  let loaded = checkpoints[0] ?? "";
  const out: SdStandIn = {
    url: "",
    requests: [],
    generations: [],
    progressDuringRuns: [],
    interrupts: 0,
    close: async () => {},
  };
  let state = idle();
  let started = 0;
  /** The generation sampling now, which an interrupt ends. */
  let current: SdGeneration | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  async function txt2img(body: Record<string, unknown>, res: ServerResponse) {
    const issues: { loc: string[]; msg: string; type: string }[] = [];
    const int = (name: string, fallback: number) => {
      const v = body[name] ?? fallback;
      if (typeof v !== "number" || !Number.isInteger(v))
        issues.push({ loc: ["body", name], msg: "value is not a valid integer", type: "type_error.integer" });
      return Number(v);
    };
    const width = int("width", 512);
    const height = int("height", 512);
    const steps = int("steps", 50);
    const nIter = int("n_iter", 1);
    const batch = int("batch_size", 1);
    const requested = int("seed", -1);
    if (typeof body.prompt !== "string")
      issues.push({ loc: ["body", "prompt"], msg: "str type expected", type: "type_error.str" });
    if (issues.length > 0) return json(res, 422, { detail: issues });
    const overrides = (body.override_settings ?? {}) as Record<string, unknown>;
    const wanted = overrides.sd_model_checkpoint;
    // A1111 loads the named checkpoint, or falls back to its first one when it has no such checkpoint.
    if (typeof wanted === "string")
      loaded = checkpoints.find((c) => c === wanted || c.startsWith(`${wanted} [`)) ?? checkpoints[0] ?? "";

    const gen: SdGeneration = { body, sampled: 0, interrupted: false };
    out.generations.push(gen);
    current = gen;
    const seed = requested === -1 ? Math.floor(Math.random() * 4_294_967_294) : requested;
    const count = nIter * batch;
    const seeds = Array.from({ length: count }, (_, i) => seed + i);
    const timestamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    state = {
      ...idle(),
      job: "scripts_txt2img",
      job_count: nIter,
      job_timestamp: timestamp,
      sampling_steps: steps,
    };
    started = Date.now();
    const images: string[] = [];
    const modelName = loaded.replace(/\.[a-z]+( \[.*\])?$/, "");
    const infotext = (i: number) =>
      `${body.prompt}\nNegative prompt: ${body.negative_prompt ?? ""}\nSteps: ${steps}, Sampler: ${body.sampler_name ?? "DPM++ 2M"}, CFG scale: ${body.cfg_scale ?? 7}, Seed: ${seeds[i]}, Size: ${width}x${height}, Model: ${modelName}`;
    sampling: for (let i = 0; i < count; i++) {
      state.job_no = Math.floor(i / batch);
      for (let step = 1; step <= steps; step++) {
        await new Promise((r) => setTimeout(r, stepMs));
        if (gen.interrupted) {
          images.push(render(i));
          break sampling;
        }
        state.sampling_step = step;
        gen.sampled++;
      }
      images.push(render(i));
    }
    function render(i: number): string {
      const s = seeds[i] as number;
      return solidPng(width, height, [s % 256, (s >> 8) % 256, (s >> 16) % 256], infotext(i)).toString(
        "base64",
      );
    }
    state = idle();
    current = undefined;
    const { override_settings: _, ...parameters } = body;
    json(res, 200, {
      images,
      parameters: { ...parameters, seed },
      info: JSON.stringify({
        prompt: body.prompt,
        all_prompts: seeds.map(() => body.prompt),
        negative_prompt: body.negative_prompt ?? "",
        seed,
        all_seeds: seeds,
        subseed: seed + 1,
        all_subseeds: seeds.map((s) => s + 1),
        width,
        height,
        sampler_name: body.sampler_name ?? "DPM++ 2M",
        cfg_scale: body.cfg_scale ?? 7,
        steps,
        batch_size: batch,
        sd_model_name: modelName,
        sd_model_hash: /\[(\w+)\]$/.exec(loaded)?.[1] ?? null,
        job_timestamp: timestamp,
        infotexts: seeds.map((_s, i) => infotext(i)),
      }),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    let raw = "";
    for await (const c of req) raw += c;
    const url = new URL(req.url ?? "/", "http://stand-in");
    out.requests.push({
      method: req.method ?? "",
      path: url.pathname + url.search,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (opts.auth && req.headers.authorization !== `Basic ${Buffer.from(opts.auth).toString("base64")}`)
      return json(res, 401, { detail: "Incorrect username or password" }, { "www-authenticate": "Basic" });
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /sdapi/v1/progress") {
      const total = state.job_count * state.sampling_steps;
      const done = state.job_no * state.sampling_steps + state.sampling_step;
      const progress = total ? done / total : 0;
      const elapsed = (Date.now() - started) / 1000;
      const answer = {
        progress,
        eta_relative: progress > 0 ? elapsed / progress - elapsed : 0,
        state: { ...state },
        current_image: null,
        textinfo: null,
      };
      if (state.job_count > 0) out.progressDuringRuns.push(answer);
      return json(res, 200, answer);
    }
    if (route === "POST /sdapi/v1/interrupt") {
      out.interrupts++;
      // Recorded as it is honoured: sampling stops at its next step, the answer carries what was made so far.
      if (current) {
        current.interrupted = true;
        state.interrupted = true;
      }
      return json(res, 200, {});
    }
    if (route === "GET /sdapi/v1/sd-models")
      return json(
        res,
        200,
        checkpoints.map((title) => {
          const filename = title.replace(/ \[.*\]$/, "");
          return {
            title,
            model_name: filename.replace(/\.[a-z]+$/, ""),
            hash: /\[(\w+)\]$/.exec(title)?.[1] ?? null,
            sha256: null,
            filename: `/stable-diffusion-webui/models/Stable-diffusion/${filename}`,
            config: null,
          };
        }),
      );
    if (route === "POST /sdapi/v1/txt2img") {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return json(res, 422, {
          detail: [{ loc: ["body"], msg: "Expecting value", type: "value_error.jsondecode" }],
        });
      }
      // One generation at a time, as A1111's queue lock does.
      const run = queue.then(() => txt2img(body, res));
      queue = run.catch(() => {});
      return run;
    }
    json(res, 404, { detail: "Not Found" });
  }

  const server = createServer((req, res) => void handle(req, res));
  Object.assign(out, await listenLocal(server));
  return out;
}

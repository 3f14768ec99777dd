import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { str } from "../../command.ts";
import type { UploadedArtifact } from "../artifacts.ts";
import { type ExecutionContext, type Executor, JobFailure } from "../executors.ts";
import { lineSplitter, runGroup, throttled } from "./command.ts";
import type { RunnerSpec } from "./index.ts";

/**
 * The `blender.render` runner: the machine's own Blender renders the job's frame range in the background. The
 * scene comes from the job's artifact (or its https URL); Blender's log gives the progress (`Fra:N ... Sample x/y`,
 * `Saved: '...'`); each frame is uploaded to one of the job's output slots (a slot per frame for ranges of up to 64
 * frames, core/services/catalog/blender.ts) and all of them, in one ustar archive, to the last slot. Blender runs
 * in a process group of its own (cli/miner/runners/command.ts) that is killed when the job is stopped.
 *
 * One Blender process renders the whole range (`-s -e -j -a`), not one per frame: the scene is loaded, and
 * Cycles' kernels compiled, once. Scripts inside the .blend never run (`-Y`): a scene is the client's, the machine
 * is the operator's.
 *
 * The archive is built in memory and sent in one PUT: a range must fit the machine's memory and the upload limit
 * (COORD_UPLOAD_MAX_MB; offline fauxqs takes 11 MiB). Split long or heavy ranges into several jobs.
 */

/** Frames a claim has an output slot for each (core/services/catalog/blender.ts MAX_UPLOADED_FRAMES). */
const MAX_UPLOADED_FRAMES = 64;
/** Cycles' devices as `--cycles-device` names them. */
export const CYCLES_DEVICES = ["CPU", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"] as const;
export type CyclesDevice = (typeof CYCLES_DEVICES)[number];

export interface BlenderInput {
  scene: string | { artifact_id: string };
  scene_name?: string;
  camera?: string;
  engine?: "cycles" | "eevee";
  frame_start: number;
  frame_end: number;
  frame_step?: number;
  width?: number;
  height?: number;
  samples?: number;
  output_format?: "png" | "jpeg" | "exr" | "tiff";
}

export interface BlenderRunnerConfig {
  /** The binary (default `blender` on the PATH). */
  blender?: string;
  /** `major.minor` of that Blender (EEVEE's engine id depends on it); from `blender --version` when absent. */
  version?: [number, number];
  /** Cycles' device (default: the scene's and Blender's preferences, CPU on a fresh install). */
  device?: CyclesDevice;
  /** Largest scene fetched from an https URL, bytes (default 2 GiB). */
  maxSceneBytes?: number;
}

/** Blender's `-F` name, the extension it writes and the content type uploaded, per output_format. */
export const FORMATS = {
  png: { blender: "PNG", ext: ".png", contentType: "image/png" },
  jpeg: { blender: "JPEG", ext: ".jpg", contentType: "image/jpeg" },
  exr: { blender: "OPEN_EXR", ext: ".exr", contentType: "image/x-exr" },
  tiff: { blender: "TIFF", ext: ".tif", contentType: "image/tiff" },
} as const;

// ---- pure parts (cli/miner/runners/blender.test.ts) ----

/** The frames rendered: frame_start, frame_start + frame_step, ... up to frame_end. */
export function framesOf(input: Pick<BlenderInput, "frame_start" | "frame_end" | "frame_step">): number[] {
  const step = Math.max(1, input.frame_step ?? 1);
  const out: number[] = [];
  for (let f = input.frame_start; f <= input.frame_end; f += step) out.push(f);
  return out;
}

/** `major.minor` from `blender --version` (`Blender 4.2.1 LTS`). */
export function parseVersion(text: string): [number, number] | undefined {
  const m = /Blender\s+(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Blender's id of an engine: EEVEE was `BLENDER_EEVEE_NEXT` from 4.2 to 4.x, `BLENDER_EEVEE` before and after. */
export function engineId(engine: "cycles" | "eevee", version?: [number, number]): string {
  if (engine === "cycles") return "CYCLES";
  const [major, minor] = version ?? [0, 0];
  return major === 4 && minor >= 2 ? "BLENDER_EEVEE_NEXT" : "BLENDER_EEVEE";
}

/** The file Blender writes for `frame` under the `frame_#####` pattern (the #s zero-padded, longer numbers whole). */
export function frameFile(dir: string, frame: number, format: BlenderInput["output_format"] = "png"): string {
  return join(dir, `frame_${String(frame).padStart(5, "0")}${FORMATS[format].ext}`);
}

/**
 * The Python run before rendering for what has no command-line flag (resolution, samples, camera), or undefined
 * when the scene's own settings stand. Names are quoted as JSON strings, which are Python string literals too.
 */
export function overridesScript(input: BlenderInput): string | undefined {
  const lines: string[] = [];
  if (input.scene_name !== undefined)
    // `-S` names the scene; an unknown name would quietly render the active one.
    lines.push(
      `assert s.name == ${JSON.stringify(input.scene_name)}, "no scene named " + ${JSON.stringify(input.scene_name)}`,
    );
  if (input.width !== undefined || input.height !== undefined) {
    if (input.width !== undefined) lines.push(`s.render.resolution_x = ${input.width}`);
    if (input.height !== undefined) lines.push(`s.render.resolution_y = ${input.height}`);
    lines.push("s.render.resolution_percentage = 100");
  }
  if (input.samples !== undefined)
    lines.push(
      (input.engine ?? "cycles") === "cycles"
        ? `s.cycles.samples = ${input.samples}`
        : `s.eevee.taa_render_samples = ${input.samples}`,
    );
  if (input.camera !== undefined) lines.push(`s.camera = bpy.data.objects[${JSON.stringify(input.camera)}]`);
  if (lines.length === 0) return undefined;
  return ["import bpy", "s = bpy.context.scene", ...lines].join("\n");
}

/**
 * Blender's command line for the job. Blender acts on its arguments in order: the file loads where it is named,
 * `-S`/`-E`/`-o`/`-F` and the Python change the loaded scene, `-a` renders; what follows `--` is for Cycles.
 */
export function blenderArgs(
  input: BlenderInput,
  scene: string,
  outDir: string,
  opts: { version?: [number, number]; device?: CyclesDevice } = {},
): string[] {
  const engine = input.engine ?? "cycles";
  const format = FORMATS[input.output_format ?? "png"];
  const args = ["-b", "-Y", "-noaudio", scene];
  if (input.scene_name !== undefined) args.push("-S", input.scene_name);
  args.push("-E", engineId(engine, opts.version));
  args.push("-o", join(outDir, "frame_#####"), "-F", format.blender, "-x", "1");
  const script = overridesScript(input);
  // A failing override (an unknown camera) must fail the render, not be a traceback in the log.
  if (script) args.push("--python-exit-code", "1", "--python-expr", script);
  args.push("-s", String(input.frame_start), "-e", String(input.frame_end));
  args.push("-j", String(input.frame_step ?? 1), "-a");
  if (engine === "cycles" && opts.device) args.push("--", "--cycles-device", opts.device);
  return args;
}

export type LogLine =
  | { kind: "sample"; frame: number; sample: number; of: number }
  | { kind: "frame"; frame: number }
  | { kind: "saved"; path: string };

/**
 * What one line of Blender's log says: a sample of a frame (Cycles `| Sample 12/128`, EEVEE `| Rendering 12 / 64
 * samples`), a frame under way (`Fra:N ...`) or a frame written (`Saved: '/path'`).
 */
export function parseLogLine(line: string): LogLine | undefined {
  const saved = /^\s*Saved:\s*'(.+)'/.exec(line);
  if (saved) return { kind: "saved", path: saved[1] as string };
  const fra = /^Fra:(\d+)\s/.exec(line);
  if (!fra) return undefined;
  const frame = Number(fra[1]);
  const sample = /\|\s*(?:Sample\s+(\d+)\s*\/\s*(\d+)|Rendering\s+(\d+)\s*\/\s*(\d+)\s+samples)/.exec(line);
  if (sample) {
    const x = Number(sample[1] ?? sample[3]);
    const of = Number(sample[2] ?? sample[4]);
    if (of > 0) return { kind: "sample", frame, sample: x, of };
  }
  return { kind: "frame", frame };
}

/** The job's progress, 0..0.99, for a log line: frames before this one done, this one by its samples. */
export function progressOf(frames: readonly number[], line: LogLine, saved: number): number | undefined {
  if (frames.length === 0) return undefined;
  if (line.kind === "saved") return Math.min(0.99, saved / frames.length);
  const index = frames.indexOf(line.frame);
  if (index < 0) return undefined;
  const within = line.kind === "sample" ? Math.min(1, line.sample / line.of) : 0;
  return Math.min(0.99, Number(((index + within) / frames.length).toFixed(3)));
}

/**
 * A ustar archive of `files` (POSIX.1-1988: what every tar reads). Names up to 100 bytes, each file under 8 GiB;
 * enough for frames. No dependency: the format is a 512-byte header per file and zero padding.
 */
export function tarOf(files: readonly { name: string; bytes: Uint8Array }[], mtime = Date.now()): Uint8Array {
  const blocks = files.reduce((n, f) => n + 1 + Math.ceil(f.bytes.length / 512), 2);
  const out = new Uint8Array(blocks * 512);
  const enc = new TextEncoder();
  let at = 0;
  const field = (header: Uint8Array, offset: number, length: number, text: string) => {
    const bytes = enc.encode(text);
    if (bytes.length > length) throw new Error(`tar: ${JSON.stringify(text)} does not fit ${length} bytes`);
    header.set(bytes, offset);
  };
  /** Octal, zero-padded, NUL-terminated in `length` bytes. */
  const octal = (header: Uint8Array, offset: number, length: number, n: number) =>
    field(header, offset, length, `${n.toString(8).padStart(length - 1, "0")}\0`);
  for (const file of files) {
    const header = out.subarray(at, at + 512);
    field(header, 0, 100, file.name);
    octal(header, 100, 8, 0o644);
    octal(header, 108, 8, 0);
    octal(header, 116, 8, 0);
    octal(header, 124, 12, file.bytes.length);
    octal(header, 136, 12, Math.floor(mtime / 1000));
    header.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
    field(header, 156, 1, "0");
    field(header, 257, 6, "ustar\0");
    field(header, 263, 2, "00");
    const sum = header.reduce((s, b) => s + b, 0);
    field(header, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
    out.set(file.bytes, at + 512);
    at += 512 * (1 + Math.ceil(file.bytes.length / 512));
  }
  return out; // the two zero blocks that end it are already there
}

// ---- the executor ----

/** The scene's bytes: the job's artifact, or its https URL (bounded). */
async function sceneOf(ctx: ExecutionContext, input: BlenderInput, maxBytes: number): Promise<Uint8Array> {
  if (typeof input.scene !== "string") return ctx.artifacts.download("input.scene");
  const res = await fetch(input.scene, { signal: ctx.signal });
  if (!res.ok)
    throw new JobFailure("scene_unreachable", `GET ${input.scene}: HTTP ${res.status}`, res.status >= 500);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > maxBytes) throw new JobFailure("scene_too_large", `the scene is over ${maxBytes} bytes`);
  return bytes;
}

export function blenderRunner(cfg: BlenderRunnerConfig = {}): Executor {
  const blender = cfg.blender ?? "blender";
  const maxScene = cfg.maxSceneBytes ?? 2 * 1024 ** 3;
  return async (ctx) => {
    const input = ctx.input as BlenderInput;
    const format = input.output_format ?? "png";
    const frames = framesOf(input);
    const dir = await mkdtemp(join(tmpdir(), "coord-blender-"));
    try {
      const scene = join(dir, "scene.blend");
      await writeFile(scene, await sceneOf(ctx, input, maxScene));
      const outDir = join(dir, "frames");
      await mkdir(outDir);

      let saved = 0;
      let tail = "";
      // In order, and all in before the result (a report landing after it would be refused).
      let reported: Promise<void> = Promise.resolve();
      const progress = throttled((fraction, message) => {
        reported = reported.then(() => ctx.progress(fraction, message));
      });
      const onLine = (line: string) => {
        const parsed = parseLogLine(line);
        if (parsed?.kind === "saved") saved++;
        const fraction = parsed ? progressOf(frames, parsed, saved) : undefined;
        if (parsed && fraction !== undefined)
          progress.report(
            fraction,
            parsed.kind === "saved"
              ? `${saved} of ${frames.length} frames saved`
              : parsed.kind === "sample"
                ? `frame ${parsed.frame}: sample ${parsed.sample} of ${parsed.of}`
                : `frame ${parsed.frame}`,
          );
        // What explains a failure: Blender's own messages, not its stream of progress lines.
        if (parsed?.kind !== "sample" && parsed?.kind !== "frame" && line.trim())
          tail = `${tail}${line}\n`.slice(-3000);
      };
      // One splitter a stream: chunks of the two interleave, their lines must not.
      const logOut = lineSplitter(onLine);
      const logErr = lineSplitter(onLine);
      const exit = await runGroup({
        file: blender,
        args: blenderArgs(input, scene, outDir, {
          ...(cfg.version ? { version: cfg.version } : {}),
          ...(cfg.device ? { device: cfg.device } : {}),
        }),
        cwd: dir,
        signal: ctx.signal,
        ...(ctx.timeoutAt ? { deadline: Date.parse(ctx.timeoutAt) } : {}),
        onStdout: (chunk) => logOut.push(chunk),
        onStderr: (chunk) => logErr.push(chunk),
      })
        .catch((err: Error) => {
          throw new JobFailure("blender_unavailable", `could not run ${blender}: ${err.message}`, true);
        })
        .finally(() => {
          logOut.end();
          logErr.end();
          progress.stop();
        });
      await reported;
      if (exit.stopped === "aborted" || ctx.signal.aborted) throw ctx.signal.reason ?? new Error("aborted");
      if (exit.stopped === "timed_out")
        throw new JobFailure("render_timeout", "the job's timeout passed before Blender finished", false);
      const why = tail.trim();
      if (exit.code !== 0 || exit.signal)
        throw renderFailure(
          `Blender ${exit.code !== null ? `exited with ${exit.code}` : `was killed by ${exit.signal}`}: ${why}`,
        );

      // Every frame, read back from where Blender writes it (its `Saved:` lines are for progress only).
      const rendered: { frame: number; bytes: Uint8Array }[] = [];
      for (const frame of frames) {
        const bytes = await readFile(frameFile(outDir, frame, format)).catch(() => undefined);
        if (!bytes) throw renderFailure(`Blender wrote no frame ${frame}: ${why}`);
        rendered.push({ frame, bytes: new Uint8Array(bytes) });
      }
      const contentType = FORMATS[format].contentType;
      const listed: (UploadedArtifact & { frame: number })[] = [];
      // A slot each only for ranges that have one per frame; longer ranges travel in the archive alone.
      await ctx.progress(0.99, `uploading ${frames.length} frames`);
      if (frames.length <= MAX_UPLOADED_FRAMES)
        for (const { frame, bytes } of rendered)
          listed.push({ frame, ...(await ctx.artifacts.upload(bytes, contentType)) });
      const archive = await ctx.artifacts.upload(
        tarOf(rendered.map((r) => ({ name: frameFile("", r.frame, format), bytes: r.bytes }))),
        "application/x-tar",
      );
      return {
        frames_rendered: frames.length,
        ...(listed.length > 0 ? { frames: listed } : {}),
        archive,
        engine: input.engine ?? "cycles",
        ...(cfg.device && (input.engine ?? "cycles") === "cycles" ? { device: cfg.device } : {}),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}

/** A render that did not produce its frames; out of GPU memory is worth a retry (on a bigger card). */
function renderFailure(message: string): JobFailure {
  const oom = /out of memory|CUDA_ERROR_OUT_OF_MEMORY|System is out of GPU/i.test(message);
  return new JobFailure(oom ? "out_of_memory" : "render_failed", message.slice(0, 3500), oom);
}

/** `coord miner run --services blender.render [--blender-bin PATH] [--blender-device OPTIX]`. */
export const blenderRunnerSpec: RunnerSpec = {
  name: "blender",
  services: ["blender.render"],
  summary: "blender.render with this machine's Blender (Cycles on --blender-device, or EEVEE)",
  options: {
    "blender-bin": {
      type: "string",
      value: "PATH",
      description: "The Blender to run (default: blender on PATH)",
    },
    "blender-device": {
      type: "string",
      value: "DEV",
      description: `Cycles device: ${CYCLES_DEVICES.join(", ")} (default: the scene's and Blender's preferences)`,
    },
  },
  make: ({ opts }) => {
    const blender = str(opts, "blender-bin") ?? "blender";
    const device = str(opts, "blender-device")?.toUpperCase();
    if (device !== undefined && !(CYCLES_DEVICES as readonly string[]).includes(device))
      return `--blender-device takes one of ${CYCLES_DEVICES.join(", ")}, got ${JSON.stringify(device)}`;
    // Once at start: a miner that cannot run Blender refuses to register for blender.render.
    let version: [number, number] | undefined;
    try {
      const out = execFileSync(blender, ["--version"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 60_000,
      });
      version = parseVersion(out);
    } catch (err) {
      return `blender.render needs Blender: \`${blender} --version\` failed (${(err as Error).message.split("\n")[0]}); install Blender or pass --blender-bin PATH`;
    }
    if (!version)
      return `blender.render needs Blender: \`${blender} --version\` did not print a Blender version; pass --blender-bin PATH`;
    return blenderRunner({ blender, version, ...(device ? { device: device as CyclesDevice } : {}) });
  },
};

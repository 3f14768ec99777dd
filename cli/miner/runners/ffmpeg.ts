import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Executor, JobFailure } from "../executors.ts";
import type { RunnerSpec } from "./index.ts";

/**
 * The `ffmpeg.transcode` runner: real transcodes with the machine's own ffmpeg. The source comes from the job's
 * artifact (its presigned link) or its https URL; the output is uploaded to the job's output slot and probed with
 * ffprobe for what the service's output reports. Progress is ffmpeg's own (`-progress pipe:1`: `out_time_us`
 * against the source's probed duration). NVENC encoders are used when this ffmpeg has them (a GPU miner), the
 * usual software encoders otherwise, so the same runner works on a laptop.
 */

const run = promisify(execFile);

export interface FfmpegRunnerConfig {
  /** The binaries (default: `ffmpeg` and `ffprobe` on the PATH). */
  ffmpeg?: string;
  ffprobe?: string;
  /** Use NVENC when available (`auto`, the default) or never (`software`). */
  encoders?: "auto" | "software";
  /** Largest source fetched from an https URL, bytes (default 2 GiB). */
  maxSourceBytes?: number;
}

interface Input {
  source: string | { artifact_id: string };
  container: "mp4" | "webm" | "mkv" | "mov" | "mp3" | "wav" | "flac";
  video_codec: "h264" | "h265" | "vp9" | "av1" | "copy" | "none";
  audio_codec: "aac" | "opus" | "mp3" | "flac" | "pcm_s16le" | "copy" | "none";
  width?: number;
  height?: number;
  fps?: number;
  crf?: number;
  video_bitrate_kbps?: number;
  audio_bitrate_kbps?: number;
  audio_channels?: number;
  preset?: string;
  start_s?: number;
  duration_s?: number;
}

const CONTENT_TYPES: Record<Input["container"], string> = {
  mp4: "video/mp4",
  webm: "video/webm",
  mkv: "video/x-matroska",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  flac: "audio/flac",
};

const AUDIO_ENCODERS: Record<Exclude<Input["audio_codec"], "none">, string> = {
  aac: "aac",
  opus: "libopus",
  mp3: "libmp3lame",
  flac: "flac",
  pcm_s16le: "pcm_s16le",
  copy: "copy",
};

/** Software encoders first choice and fallbacks; NVENC where the GPU can do it (vp9 has none). */
const VIDEO_ENCODERS: Record<"h264" | "h265" | "vp9" | "av1", { nvenc?: string; software: string[] }> = {
  h264: { nvenc: "h264_nvenc", software: ["libx264"] },
  h265: { nvenc: "hevc_nvenc", software: ["libx265"] },
  vp9: { software: ["libvpx-vp9"] },
  av1: { nvenc: "av1_nvenc", software: ["libsvtav1", "libaom-av1"] },
};

/** NVENC's p1 (fastest) .. p7 (best) as x264/x265 presets. */
const X26X_PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"];

/** The argument list for one transcode (pure: what the tests check, and what the runner spawns). */
export function ffmpegArgs(input: Input, src: string, out: string, encoders: ReadonlySet<string>): string[] {
  const args = ["-hide_banner", "-nostdin", "-y", "-v", "error"];
  if (input.start_s !== undefined) args.push("-ss", String(input.start_s));
  args.push("-i", src);
  if (input.duration_s !== undefined) args.push("-t", String(input.duration_s));
  if (input.video_codec === "none") args.push("-vn");
  else if (input.video_codec === "copy") args.push("-c:v", "copy");
  else {
    const choice = VIDEO_ENCODERS[input.video_codec];
    const nvenc = choice.nvenc && encoders.has(choice.nvenc) ? choice.nvenc : undefined;
    const encoder = nvenc ?? choice.software.find((e) => encoders.has(e)) ?? choice.software[0];
    args.push("-c:v", encoder as string);
    if (input.width !== undefined || input.height !== undefined)
      args.push("-vf", `scale=${input.width ?? -2}:${input.height ?? -2}`);
    if (input.fps !== undefined) args.push("-r", String(input.fps));
    if (input.crf !== undefined) {
      if (nvenc) args.push("-rc", "vbr", "-cq", String(input.crf));
      else if (encoder === "libvpx-vp9") args.push("-crf", String(input.crf), "-b:v", "0");
      else args.push("-crf", String(input.crf));
    }
    if (input.video_bitrate_kbps !== undefined) args.push("-b:v", `${input.video_bitrate_kbps}k`);
    if (input.preset !== undefined) {
      const level = Number(input.preset.slice(1));
      if (nvenc) args.push("-preset", input.preset);
      else if (encoder === "libx264" || encoder === "libx265")
        args.push("-preset", X26X_PRESETS[level - 1] ?? "medium");
    }
    // Players want 4:2:0 (and some sources are 4:4:4 or RGB).
    if (!nvenc) args.push("-pix_fmt", "yuv420p");
  }
  if (input.audio_codec === "none") args.push("-an");
  else {
    args.push("-c:a", AUDIO_ENCODERS[input.audio_codec]);
    if (input.audio_bitrate_kbps !== undefined) args.push("-b:a", `${input.audio_bitrate_kbps}k`);
    if (input.audio_channels !== undefined) args.push("-ac", String(input.audio_channels));
  }
  args.push("-progress", "pipe:1", "-nostats", out);
  return args;
}

interface Probed {
  duration_s: number;
  video?: { codec: string; width: number; height: number; fps?: number };
  audio?: { codec: string; sample_rate?: number; channels?: number };
}

/** What ffprobe says of a file: its duration and its first video and audio streams. */
export async function probe(file: string, ffprobe = "ffprobe"): Promise<Probed> {
  const { stdout } = await run(ffprobe, [
    "-v",
    "error",
    "-show_entries",
    "format=duration:stream=codec_type,codec_name,width,height,avg_frame_rate,sample_rate,channels",
    "-of",
    "json",
    file,
  ]);
  const j = JSON.parse(stdout) as {
    format?: { duration?: string };
    streams?: Record<string, string | number | undefined>[];
  };
  const video = j.streams?.find((s) => s.codec_type === "video");
  const audio = j.streams?.find((s) => s.codec_type === "audio");
  const rate = (r: unknown) => {
    const [n, d] = String(r ?? "")
      .split("/")
      .map(Number);
    return n && d ? Math.round((n / d) * 1000) / 1000 : undefined;
  };
  return {
    duration_s: Number(j.format?.duration ?? 0) || 0,
    ...(video
      ? {
          video: {
            codec: String(video.codec_name),
            width: Number(video.width),
            height: Number(video.height),
            fps: rate(video.avg_frame_rate),
          },
        }
      : {}),
    ...(audio
      ? {
          audio: {
            codec: String(audio.codec_name),
            sample_rate: audio.sample_rate ? Number(audio.sample_rate) : undefined,
            channels: audio.channels ? Number(audio.channels) : undefined,
          },
        }
      : {}),
  };
}

/**
 * The encoders this ffmpeg can use, once per binary: those `ffmpeg -encoders` lists, less the NVENC ones that fail
 * a tenth of a second's test encode (a build with NVENC on a machine without an NVIDIA driver lists them all).
 */
const known = new Map<string, Promise<Set<string>>>();
function encodersOf(ffmpeg: string): Promise<Set<string>> {
  let found = known.get(ffmpeg);
  if (!found) {
    found = (async () => {
      const { stdout } = await run(ffmpeg, ["-hide_banner", "-encoders"]);
      const listed = [...stdout.matchAll(/^\s*[VAS][.A-Z]{5}\s+(\S+)/gm)].map((m) => m[1] as string);
      const works = (encoder: string) =>
        run(ffmpeg, [
          ...["-hide_banner", "-v", "error", "-f", "lavfi", "-i", "color=size=256x256:duration=0.1"],
          ...["-c:v", encoder, "-f", "null", "-"],
        ]).then(
          () => true,
          () => false,
        );
      const usable = await Promise.all(
        listed.map(async (e) => (!e.endsWith("_nvenc") || (await works(e)) ? [e] : [])),
      );
      return new Set(usable.flat());
    })();
    known.set(ffmpeg, found);
  }
  return found;
}

/** `coord miner run --services ffmpeg.transcode`: this machine's ffmpeg and ffprobe (or the ones named). */
export const ffmpegRunnerSpec: RunnerSpec = {
  name: "ffmpeg",
  services: ["ffmpeg.transcode"],
  summary: "ffmpeg.transcode with this machine's ffmpeg (NVENC when a test encode works)",
  options: {
    "ffmpeg-bin": {
      type: "string",
      value: "PATH",
      description: "The ffmpeg to run (default: ffmpeg on PATH)",
    },
    "ffprobe-bin": {
      type: "string",
      value: "PATH",
      description: "The ffprobe to run (default: ffprobe on PATH)",
    },
  },
  make: ({ opts }) =>
    ffmpegRunner({
      ...(typeof opts["ffmpeg-bin"] === "string" ? { ffmpeg: opts["ffmpeg-bin"] } : {}),
      ...(typeof opts["ffprobe-bin"] === "string" ? { ffprobe: opts["ffprobe-bin"] } : {}),
    }),
};

export function ffmpegRunner(cfg: FfmpegRunnerConfig = {}): Executor {
  const ffmpeg = cfg.ffmpeg ?? "ffmpeg";
  const ffprobe = cfg.ffprobe ?? "ffprobe";
  const maxSource = cfg.maxSourceBytes ?? 2 * 1024 ** 3;
  return async (ctx) => {
    const input = ctx.input as Input;
    const dir = await mkdtemp(join(tmpdir(), "coord-ffmpeg-"));
    try {
      const src = join(dir, "source");
      if (typeof input.source === "string") {
        const res = await fetch(input.source, { signal: ctx.signal });
        if (!res.ok)
          throw new JobFailure(
            "source_unreachable",
            `GET ${input.source}: HTTP ${res.status}`,
            res.status >= 500,
          );
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length > maxSource)
          throw new JobFailure("source_too_large", `the source is over ${maxSource} bytes`);
        await writeFile(src, bytes);
      } else {
        await writeFile(src, await ctx.artifacts.download("input.source"));
      }
      const source = await probe(src, ffprobe).catch((err: Error) => {
        throw new JobFailure(
          "unreadable_source",
          `ffprobe could not read the source: ${err.message.slice(0, 500)}`,
        );
      });
      const span = Math.max(0.001, input.duration_s ?? Math.max(0, source.duration_s - (input.start_s ?? 0)));
      const usable = cfg.encoders === "software" ? await softwareOnly(ffmpeg) : await encodersOf(ffmpeg);
      const out = join(dir, `output.${input.container}`);
      await transcode(ffmpeg, ffmpegArgs(input, src, out, usable), span, ctx);
      const result = await probe(out, ffprobe);
      const file = await ctx.artifacts.upload(
        new Uint8Array(await readFile(out)),
        CONTENT_TYPES[input.container],
      );
      return { file, container: input.container, ...result };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}

/** This ffmpeg's encoders without NVENC ones. */
async function softwareOnly(ffmpeg: string): Promise<Set<string>> {
  return new Set([...(await encodersOf(ffmpeg))].filter((e) => !e.endsWith("_nvenc")));
}

/** Runs ffmpeg, reporting its progress (at most once a second) and killing it when the job is stopped. */
function transcode(
  ffmpeg: string,
  args: string[],
  spanSeconds: number,
  ctx: Parameters<Executor>[0],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let lastReport = 0;
    let buffered = "";
    const onAbort = () => child.kill("SIGKILL");
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^out_time_us=(\d+)/.exec(line.trim());
        if (!m || Date.now() - lastReport < 1000) continue;
        lastReport = Date.now();
        const fraction = Math.min(0.99, Number(m[1]) / 1e6 / spanSeconds);
        void ctx.progress(Number(fraction.toFixed(3)), `transcoded ${(Number(m[1]) / 1e6).toFixed(1)} s`);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-4000);
    });
    child.on("error", (err) => {
      ctx.signal.removeEventListener("abort", onAbort);
      reject(new JobFailure("ffmpeg_unavailable", `could not run ${ffmpeg}: ${err.message}`, true));
    });
    child.on("close", (code) => {
      ctx.signal.removeEventListener("abort", onAbort);
      if (ctx.signal.aborted) return reject(ctx.signal.reason);
      if (code === 0) return resolve();
      reject(
        new JobFailure("ffmpeg_failed", `ffmpeg exited with ${code}: ${stderr.trim().slice(-2000)}`, false),
      );
    });
  });
}

import * as v from "valibot";
import { gpuSeconds, int, num, oneOf, strictInput } from "../common.ts";
import { artifact, MediaRef } from "../refs.ts";
import type { ServiceDef } from "../types.ts";

export const CONTAINERS = ["mp4", "webm", "mkv", "mov", "mp3", "wav", "flac"] as const;
export const VIDEO_CODECS = ["h264", "h265", "vp9", "av1", "copy", "none"] as const;
export const AUDIO_CODECS = ["aac", "opus", "mp3", "flac", "pcm_s16le", "copy", "none"] as const;
type Container = (typeof CONTAINERS)[number];
type VideoCodec = (typeof VIDEO_CODECS)[number];
type AudioCodec = (typeof AUDIO_CODECS)[number];

/** What each container can carry, and what it gets when the codec is not named. */
export const CONTAINER_RULES: Record<
  Container,
  { video: readonly VideoCodec[]; audio: readonly AudioCodec[]; defaults: [VideoCodec, AudioCodec] }
> = {
  mp4: {
    video: ["h264", "h265", "av1", "copy", "none"],
    audio: ["aac", "mp3", "opus", "flac", "copy", "none"],
    defaults: ["h264", "aac"],
  },
  webm: { video: ["vp9", "av1", "copy", "none"], audio: ["opus", "copy", "none"], defaults: ["vp9", "opus"] },
  mkv: { video: VIDEO_CODECS, audio: AUDIO_CODECS, defaults: ["h264", "aac"] },
  mov: {
    video: ["h264", "h265", "copy", "none"],
    audio: ["aac", "mp3", "pcm_s16le", "copy", "none"],
    defaults: ["h264", "aac"],
  },
  mp3: { video: ["none"], audio: ["mp3", "copy"], defaults: ["none", "mp3"] },
  wav: { video: ["none"], audio: ["pcm_s16le", "copy"], defaults: ["none", "pcm_s16le"] },
  flac: { video: ["none"], audio: ["flac", "copy"], defaults: ["none", "flac"] },
};

const effective = (i: { container: Container; video_codec?: VideoCodec; audio_codec?: AudioCodec }) => {
  const [video, audio] = CONTAINER_RULES[i.container].defaults;
  return { video: i.video_codec ?? video, audio: i.audio_codec ?? audio };
};

const even = (name: string, max: number) =>
  v.pipe(
    int(name, 16, max),
    v.check((n) => n % 2 === 0, `${name} must be even (4:2:0 video needs even dimensions)`),
  );

/** NVENC preset names: p1 is fastest, p7 best quality. */
const PRESETS = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"] as const;

const VIDEO_ENCODING_FIELDS = ["width", "height", "fps", "crf", "video_bitrate_kbps", "preset"] as const;

export const FfmpegInput = v.pipe(
  strictInput(
    {
      source: v.pipe(MediaRef, v.description("The media to transcode")),
      container: v.pipe(oneOf("container", CONTAINERS), v.description("Output container")),
      video_codec: v.optional(
        v.pipe(
          oneOf("video_codec", VIDEO_CODECS),
          v.description("The container's usual codec when absent; copy keeps the stream, none drops it"),
        ),
      ),
      audio_codec: v.optional(
        v.pipe(
          oneOf("audio_codec", AUDIO_CODECS),
          v.description("The container's usual codec when absent; copy keeps the stream, none drops it"),
        ),
      ),
      width: v.optional(
        v.pipe(
          even("width", 7680),
          v.description("Output width; keeps the aspect ratio when height is absent"),
        ),
      ),
      height: v.optional(
        v.pipe(
          even("height", 4320),
          v.description("Output height; keeps the aspect ratio when width is absent"),
        ),
      ),
      fps: v.optional(num("fps", 1, 240)),
      crf: v.optional(
        v.pipe(
          int("crf", 0, 51),
          v.description("Constant quality (NVENC -cq); lower is better. Not with a bitrate"),
        ),
      ),
      video_bitrate_kbps: v.optional(int("video_bitrate_kbps", 50, 200_000)),
      audio_bitrate_kbps: v.optional(int("audio_bitrate_kbps", 8, 512)),
      audio_channels: v.optional(int("audio_channels", 1, 8)),
      preset: v.optional(
        v.pipe(oneOf("preset", PRESETS), v.description("NVENC preset: p1 fastest .. p7 best")),
      ),
      start_s: v.optional(
        v.pipe(num("start_s", 0, 604_800), v.description("Seconds to skip from the start of the source")),
      ),
      duration_s: v.optional(
        v.pipe(
          v.number("duration_s must be a number"),
          v.gtValue(0, "duration_s must be greater than 0"),
          v.maxValue(86_400, "duration_s must be at most 86400"),
          v.description("Seconds to keep from start_s"),
        ),
      ),
    },
    "ffmpeg input",
  ),
  v.forward(
    v.partialCheck(
      [["container"], ["video_codec"]],
      (i) => CONTAINER_RULES[i.container].video.includes(effective(i).video),
      "this video codec cannot go in this container (audio containers take none)",
    ),
    ["video_codec"],
  ),
  v.forward(
    v.partialCheck(
      [["container"], ["audio_codec"]],
      (i) => CONTAINER_RULES[i.container].audio.includes(effective(i).audio),
      "this audio codec cannot go in this container",
    ),
    ["audio_codec"],
  ),
  v.forward(
    v.partialCheck(
      [["container"], ["video_codec"], ["audio_codec"]],
      (i) => {
        const e = effective(i);
        return !(e.video === "none" && e.audio === "none");
      },
      "video_codec and audio_codec cannot both be none: there would be nothing to write",
    ),
    ["audio_codec"],
  ),
  v.forward(
    v.partialCheck(
      [
        ["container"],
        ["video_codec"],
        ["width"],
        ["height"],
        ["fps"],
        ["crf"],
        ["video_bitrate_kbps"],
        ["preset"],
      ],
      (i) => {
        const video = effective(i).video;
        return (
          (video !== "copy" && video !== "none") || VIDEO_ENCODING_FIELDS.every((f) => i[f] === undefined)
        );
      },
      "width, height, fps, crf, video_bitrate_kbps and preset need a video codec to encode with (not copy or none)",
    ),
    ["video_codec"],
  ),
  v.forward(
    v.partialCheck(
      [["crf"], ["video_bitrate_kbps"]],
      (i) => i.crf === undefined || i.video_bitrate_kbps === undefined,
      "give crf or video_bitrate_kbps, not both",
    ),
    ["crf"],
  ),
  v.transform((i) => {
    const e = effective(i);
    return { ...i, video_codec: e.video, audio_codec: e.audio };
  }),
);

const Stream = v.looseObject({ codec: v.string() });

export const FfmpegOutput = v.looseObject({
  file: artifact({}),
  container: v.string(),
  duration_s: v.pipe(v.number(), v.minValue(0)),
  video: v.optional(
    v.looseObject({ ...Stream.entries, width: v.number(), height: v.number(), fps: v.optional(v.number()) }),
  ),
  audio: v.optional(
    v.looseObject({
      ...Stream.entries,
      sample_rate: v.optional(v.number()),
      channels: v.optional(v.number()),
    }),
  ),
});

export const ffmpegTranscode: ServiceDef = {
  id: "ffmpeg.transcode",
  category: "video",
  description:
    "Transcode, trim and scale audio or video with FFmpeg on NVENC/NVDEC (h264, h265; av1 needs an Ada or newer GPU; vp9 encodes on the CPU). The result is uploaded to object storage.",
  input: FfmpegInput,
  output: FfmpegOutput,
  requirements: { min_vram_mb: 2048, recommended_vram_mb: 4096, gpu_count: 1, cuda_min: "12.1" },
  pricing: {
    unit: "gpu_second",
    default_unit_price: 60,
    description:
      "Whole seconds between the miner's start and result, as the coordinator observed them. Media length would be the natural unit, but the coordinator never reads the source, so only the miner could report it.",
  },
  defaults: { ttl_seconds: 3600, timeout_seconds: 3600, max_attempts: 3 },
  meter: (_input, observedMs) => gpuSeconds(observedMs, 1),
  // The transcoded file is uploaded as an artifact through the claim's one output slot.
  artifacts: {
    input: { contentTypes: ["video/", "audio/", "image/", "application/octet-stream"] },
    outputs: () => 1,
  },
};

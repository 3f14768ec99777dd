import { describe, expect, it } from "vitest";
import { ffmpegArgs } from "./ffmpeg.ts";

const base = {
  source: "https://x.example.com/a.mov",
  container: "mp4",
  video_codec: "h264",
  audio_codec: "aac",
} as const;
const software = new Set(["libx264", "libx265", "libvpx-vp9", "libsvtav1", "aac", "libopus"]);
const gpu = new Set([...software, "h264_nvenc", "hevc_nvenc", "av1_nvenc"]);
const flagValue = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe("the ffmpeg runner's command line", () => {
  it("encodes on NVENC when this ffmpeg has it, with software encoders otherwise", () => {
    expect(flagValue(ffmpegArgs(base, "in", "out.mp4", gpu), "-c:v")).toBe("h264_nvenc");
    expect(flagValue(ffmpegArgs(base, "in", "out.mp4", software), "-c:v")).toBe("libx264");
    expect(
      flagValue(
        ffmpegArgs({ ...base, video_codec: "vp9", container: "webm", audio_codec: "opus" }, "in", "o", gpu),
        "-c:v",
      ),
    ).toBe("libvpx-vp9");
    expect(flagValue(ffmpegArgs({ ...base, video_codec: "av1" }, "in", "o", software), "-c:v")).toBe(
      "libsvtav1",
    );
  });

  it("maps quality, presets, scaling, trims and stream drops to ffmpeg's flags", () => {
    const sw = ffmpegArgs(
      { ...base, crf: 23, preset: "p7", width: 640, start_s: 2, duration_s: 5 },
      "in",
      "o",
      software,
    );
    expect(flagValue(sw, "-crf")).toBe("23");
    expect(flagValue(sw, "-preset")).toBe("slow");
    expect(flagValue(sw, "-vf")).toBe("scale=640:-2");
    expect(sw.indexOf("-ss")).toBeLessThan(sw.indexOf("-i"));
    expect(flagValue(sw, "-t")).toBe("5");
    const hw = ffmpegArgs({ ...base, crf: 23, preset: "p7" }, "in", "o", gpu);
    expect(flagValue(hw, "-cq")).toBe("23");
    expect(flagValue(hw, "-preset")).toBe("p7");
    const audioOnly = ffmpegArgs(
      { ...base, container: "mp3", video_codec: "none", audio_codec: "mp3" },
      "in",
      "o",
      software,
    );
    expect(audioOnly).toContain("-vn");
    expect(flagValue(audioOnly, "-c:a")).toBe("libmp3lame");
    expect(ffmpegArgs({ ...base, audio_codec: "none" }, "in", "o", software)).toContain("-an");
    // Progress comes from ffmpeg itself, the output last.
    expect(flagValue(sw, "-progress")).toBe("pipe:1");
    expect(sw.at(-1)).toBe("o");
  });
});

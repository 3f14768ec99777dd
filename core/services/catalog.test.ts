import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.ts";
import { getService, validateInput } from "./registry.ts";

/** The paths a refused input names, e.g. ["input.messages"]. */
function refusedPaths(serviceId: string, input: unknown): string[] {
  try {
    validateInput(getService(serviceId), input);
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => i.path);
    throw err;
  }
  throw new Error(`expected ${serviceId} to refuse ${JSON.stringify(input)}`);
}

function refusal(serviceId: string, input: unknown): { path: string; message: string } {
  try {
    validateInput(getService(serviceId), input);
  } catch (err) {
    if (err instanceof ValidationError && err.issues[0]) return err.issues[0];
    throw err;
  }
  throw new Error(`expected ${serviceId} to refuse ${JSON.stringify(input)}`);
}

const accepted = (serviceId: string, input: unknown) => validateInput(getService(serviceId), input);

const audio = { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" };
const scene = { artifact_id: "art_01bbbbbbbbbbbbbbbbbbbbbbbb" };

describe("echo", () => {
  it("returns any JSON object unchanged, unknown fields included", () => {
    const input = { hello: "world", nested: { n: 1 }, list: [1, 2] };
    expect(accepted("echo", input)).toEqual(input);
  });

  it("accepts sleep_ms and a scripted failure for tests", () => {
    expect(accepted("echo", { sleep_ms: 1500, fail: { code: "oom", message: "out of memory" } })).toEqual({
      sleep_ms: 1500,
      fail: { code: "oom", message: "out of memory", retryable: false },
    });
  });

  it("a sleep over a minute is refused naming input.sleep_ms", () => {
    expect(refusedPaths("echo", { sleep_ms: 60_001 })).toEqual(["input.sleep_ms"]);
  });

  it("an array or a string is not a JSON object", () => {
    expect(refusal("echo", [1, 2])).toEqual({ path: "input", message: "echo input must be a JSON object" });
    expect(refusedPaths("echo", "hi")).toEqual(["input"]);
    expect(refusedPaths("echo", undefined)).toEqual(["input"]);
  });

  it("a scripted failure without a message is refused naming input.fail.message", () => {
    expect(refusedPaths("echo", { fail: { code: "boom" } })).toEqual(["input.fail.message"]);
  });
});

describe("whisper", () => {
  it("fills defaults for a minimal transcription", () => {
    expect(accepted("whisper.transcribe", { audio_object: audio })).toEqual({
      audio_object: audio,
      model: "large-v3-turbo",
      response_format: "json",
      temperature: 0,
      word_timestamps: false,
    });
  });

  it("needs the audio by url or object, and not both", () => {
    expect(refusal("whisper.transcribe", {})).toEqual({
      path: "input.audio_url",
      message: "audio_url or audio_object is required",
    });
    expect(
      refusedPaths("whisper.transcribe", { audio_url: "https://example.com/a.mp3", audio_object: audio }),
    ).toEqual(["input.audio_object"]);
  });

  it("an http or loopback audio url is refused", () => {
    expect(refusal("whisper.transcribe", { audio_url: "http://example.com/a.mp3" }).message).toMatch(/https/);
    expect(refusal("whisper.transcribe", { audio_url: "https://169.254.169.254/latest" }).message).toMatch(
      /link-local/,
    );
  });

  it("a language that is not an ISO 639-1 code is refused naming input.language", () => {
    expect(refusedPaths("whisper.transcribe", { audio_object: audio, language: "english" })).toEqual([
      "input.language",
    ]);
    expect(refusedPaths("whisper.transcribe", { audio_object: audio, language: "xx" })).toEqual([
      "input.language",
    ]);
  });

  it("a misspelt option is refused instead of silently ignored", () => {
    expect(refusal("whisper.transcribe", { audio_object: audio, temprature: 0.2 })).toEqual({
      path: "input.temprature",
      message: 'unknown field "temprature"',
    });
  });

  it("translation does not offer large-v3-turbo, which cannot translate", () => {
    expect(refusedPaths("whisper.translate", { audio_object: audio, model: "large-v3-turbo" })).toEqual([
      "input.model",
    ]);
    expect(accepted("whisper.translate", { audio_object: audio, language: "de" })).toMatchObject({
      model: "large-v3",
    });
  });

  it("temperature above 1 is refused", () => {
    expect(refusedPaths("whisper.transcribe", { audio_object: audio, temperature: 1.5 })).toEqual([
      "input.temperature",
    ]);
  });
});

describe("stable diffusion", () => {
  const base = { prompt: "a lighthouse at dusk, oil painting" };

  it("fills defaults for a minimal prompt", () => {
    expect(accepted("stable-diffusion.generate", base)).toEqual({
      ...base,
      model: "sdxl-base-1.0",
      num_images: 1,
      output_format: "png",
    });
  });

  it("a stable diffusion width that is not a multiple of 8 is refused", () => {
    expect(refusal("stable-diffusion.generate", { ...base, width: 1020 })).toEqual({
      path: "input.width",
      message: "width must be a multiple of 8",
    });
  });

  it("sizes outside 256..2048 are refused", () => {
    expect(refusedPaths("stable-diffusion.generate", { ...base, height: 4096 })).toEqual(["input.height"]);
    expect(refusedPaths("stable-diffusion.generate", { ...base, width: 128 })).toEqual(["input.width"]);
  });

  it("flux and sd3 need multiples of 16", () => {
    expect(
      accepted("stable-diffusion.generate", { ...base, model: "sdxl-base-1.0", width: 1000 }),
    ).toBeTruthy();
    expect(
      refusedPaths("stable-diffusion.generate", { ...base, model: "flux.1-schnell", width: 1000 }),
    ).toEqual(["input.width"]);
  });

  it("flow-matching models refuse a non-euler scheduler", () => {
    expect(
      refusedPaths("stable-diffusion.generate", { ...base, model: "sd3-medium", scheduler: "dpmpp_2m" }),
    ).toEqual(["input.scheduler"]);
  });

  it("an empty or blank prompt, 9 images or 151 steps are refused", () => {
    expect(refusedPaths("stable-diffusion.generate", { prompt: "" })).toEqual(["input.prompt"]);
    expect(refusedPaths("stable-diffusion.generate", { prompt: "   " })).toEqual(["input.prompt"]);
    expect(refusedPaths("stable-diffusion.generate", { ...base, num_images: 9 })).toEqual([
      "input.num_images",
    ]);
    expect(refusedPaths("stable-diffusion.generate", { ...base, steps: 151 })).toEqual(["input.steps"]);
  });

  it("a prompt over 2000 characters is refused", () => {
    expect(refusedPaths("stable-diffusion.generate", { prompt: "a".repeat(2001) })).toEqual(["input.prompt"]);
  });
});

describe("llm", () => {
  const model = "llama-3.1-8b-instruct";

  it("accepts chat messages and fills sampling defaults", () => {
    expect(
      accepted("llm.inference", {
        model,
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Why is the sky blue?" },
        ],
      }),
    ).toMatchObject({ model, max_tokens: 1024, temperature: 0.7, top_p: 1 });
  });

  it("an llm request with both prompt and messages is refused naming input.messages", () => {
    expect(
      refusal("llm.inference", { model, prompt: "hi", messages: [{ role: "user", content: "hi" }] }),
    ).toEqual({ path: "input.messages", message: "give prompt or messages, not both" });
  });

  it("an llm request with neither prompt nor messages is refused naming input.messages", () => {
    expect(refusal("llm.inference", { model })).toEqual({
      path: "input.messages",
      message: "prompt or messages is required",
    });
  });

  it("an unknown model is refused naming input.model", () => {
    expect(refusedPaths("llm.inference", { model: "gpt-5", prompt: "hi" })).toEqual(["input.model"]);
  });

  it("streaming is refused", () => {
    expect(refusal("llm.inference", { model, prompt: "hi", stream: true }).path).toBe("input.stream");
  });

  it("more than 4 stop sequences or a role of tool are refused", () => {
    expect(refusedPaths("llm.inference", { model, prompt: "hi", stop: ["a", "b", "c", "d", "e"] })).toEqual([
      "input.stop",
    ]);
    expect(refusedPaths("llm.inference", { model, messages: [{ role: "tool", content: "x" }] })).toEqual([
      "input.messages.0.role",
    ]);
  });

  it("a conversation over 200k characters in total is refused", () => {
    const big = "x".repeat(120_000);
    expect(
      refusedPaths("llm.inference", {
        model,
        messages: [
          { role: "user", content: big },
          { role: "assistant", content: big },
        ],
      }),
    ).toEqual(["input.messages"]);
  });

  it("max_tokens and temperature are bounded", () => {
    expect(refusedPaths("llm.inference", { model, prompt: "hi", max_tokens: 32_769 })).toEqual([
      "input.max_tokens",
    ]);
    expect(refusedPaths("llm.inference", { model, prompt: "hi", temperature: 2.5 })).toEqual([
      "input.temperature",
    ]);
  });
});

describe("ffmpeg", () => {
  const source = { artifact_id: "art_01cccccccccccccccccccccccc" };

  it("fills the container's usual codecs", () => {
    expect(accepted("ffmpeg.transcode", { source, container: "webm" })).toMatchObject({
      video_codec: "vp9",
      audio_codec: "opus",
    });
    expect(accepted("ffmpeg.transcode", { source, container: "mp3" })).toMatchObject({
      video_codec: "none",
      audio_codec: "mp3",
    });
  });

  it("a codec the container cannot carry is refused naming it", () => {
    expect(refusedPaths("ffmpeg.transcode", { source, container: "webm", video_codec: "h264" })).toEqual([
      "input.video_codec",
    ]);
    expect(refusedPaths("ffmpeg.transcode", { source, container: "mp3", video_codec: "h264" })).toEqual([
      "input.video_codec",
    ]);
    expect(refusedPaths("ffmpeg.transcode", { source, container: "flac", audio_codec: "aac" })).toEqual([
      "input.audio_codec",
    ]);
  });

  it("dropping both streams is refused", () => {
    expect(
      refusedPaths("ffmpeg.transcode", {
        source,
        container: "mkv",
        video_codec: "none",
        audio_codec: "none",
      }),
    ).toEqual(["input.audio_codec"]);
  });

  it("scaling a copied stream is refused", () => {
    expect(
      refusedPaths("ffmpeg.transcode", { source, container: "mp4", video_codec: "copy", width: 1280 }),
    ).toEqual(["input.video_codec"]);
  });

  it("crf above 51, odd sizes and crf with a bitrate are refused", () => {
    expect(refusedPaths("ffmpeg.transcode", { source, container: "mp4", crf: 52 })).toEqual(["input.crf"]);
    expect(refusedPaths("ffmpeg.transcode", { source, container: "mp4", width: 1279 })).toEqual([
      "input.width",
    ]);
    expect(
      refusedPaths("ffmpeg.transcode", { source, container: "mp4", crf: 23, video_bitrate_kbps: 4000 }),
    ).toEqual(["input.crf"]);
  });

  it("a source that is neither an https URL nor an object reference is refused naming input.source", () => {
    expect(refusal("ffmpeg.transcode", { source: { bucket: "coord-uploads" }, container: "mp4" })).toEqual({
      path: "input.source",
      message: "must be an https URL or an artifact reference {artifact_id}: artifact_id is required",
    });
    expect(refusedPaths("ffmpeg.transcode", { source: 42, container: "mp4" })).toEqual(["input.source"]);
  });
});

describe("blender", () => {
  it("fills defaults for a frame range", () => {
    expect(accepted("blender.render", { scene, frame_start: 1, frame_end: 250 })).toEqual({
      scene,
      frame_start: 1,
      frame_end: 250,
      engine: "cycles",
      frame_step: 1,
      output_format: "png",
    });
  });

  it("an end before the start is refused naming input.frame_end", () => {
    expect(refusal("blender.render", { scene, frame_start: 10, frame_end: 9 })).toEqual({
      path: "input.frame_end",
      message: "frame_end must be at least frame_start",
    });
  });

  it("more than 10 000 frames in one job is refused", () => {
    expect(accepted("blender.render", { scene, frame_start: 1, frame_end: 10_000 })).toBeTruthy();
    expect(refusedPaths("blender.render", { scene, frame_start: 1, frame_end: 10_001 })).toEqual([
      "input.frame_end",
    ]);
  });

  it("samples are bounded to 1..65536", () => {
    expect(refusedPaths("blender.render", { scene, frame_start: 1, frame_end: 1, samples: 0 })).toEqual([
      "input.samples",
    ]);
    expect(refusedPaths("blender.render", { scene, frame_start: 1, frame_end: 1, samples: 65_537 })).toEqual([
      "input.samples",
    ]);
  });
});

describe("metering", () => {
  it("a service whose meter prices by the input says so (the result reads the input back only then)", async () => {
    const { SERVICES } = await import("./registry.ts");
    const inputs = [
      {},
      null,
      { frame_start: 1, frame_end: 250, frame_step: 1 },
      { model: "meta-llama/Llama-3.1-70B-Instruct", max_tokens: 4000 },
      { n: 8, steps: 80, width: 2048, height: 2048 },
    ];
    for (const def of SERVICES) {
      if (def.meterReadsInput) continue;
      for (const ms of [0, 1500, 60_000, 3_600_000]) {
        const base = def.meter(undefined, ms);
        for (const input of inputs) expect(def.meter(input, ms), `${def.id} at ${ms} ms`).toBe(base);
      }
    }
  });
});

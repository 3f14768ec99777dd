import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { WhisperOutput, WhisperTranscribeInput } from "../../../core/services/catalog/whisper.ts";
import { JobFailure } from "../executors.ts";
import {
  addEvent,
  audioFormat,
  fetchAudio,
  languageCode,
  publicAddress,
  serverFailure,
  srt,
  type Transcript,
  transcriptOf,
  vtt,
  wavSeconds,
  whisperOutput,
  whisperRequest,
} from "./whisper.ts";

const ref = { artifact_id: "art_0123456789abcdefghijklmnop" };
/** A job's input as the coordinator hands it over: validated, defaults filled. */
const input = (extra: Record<string, unknown> = {}) =>
  v.parse(WhisperTranscribeInput, { audio_object: ref, ...extra });
const audio = { bytes: new Uint8Array([1, 2, 3]), filename: "audio.wav", type: "audio/wav" };
const fields = (form: FormData) => {
  const out: Record<string, string[]> = {};
  for (const [k, val] of form.entries()) if (typeof val === "string") out[k] = [...(out[k] ?? []), val];
  return out;
};

/** A PCM WAV header claiming `seconds` at `byteRate`, data following (or not, for a streamed header). */
function wav(seconds: number, byteRate: number, dataSize?: number): Uint8Array {
  const size = dataSize ?? seconds * byteRate;
  const b = Buffer.alloc(44);
  b.write("RIFF", 0, "ascii");
  b.writeUInt32LE(Math.min(0xffffffff, 36 + size), 4);
  b.write("WAVEfmt ", 8, "ascii");
  b.writeUInt32LE(16, 16);
  b.writeUInt32LE(byteRate, 28);
  b.write("data", 36, "ascii");
  b.writeUInt32LE(size, 40);
  return new Uint8Array(b);
}

describe("the whisper runner's request", () => {
  it("sends a transcription's options as OpenAI's form fields, under the server's model name, always as verbose_json", () => {
    const { path, form } = whisperRequest(
      "whisper.transcribe",
      input({
        model: "large-v3",
        language: "fr",
        initial_prompt: "Lyon",
        temperature: 0.4,
        word_timestamps: true,
      }),
      audio,
      { models: { "large-v3": "Systran/faster-whisper-large-v3" } },
    );
    expect(path).toBe("/v1/audio/transcriptions");
    expect(fields(form)).toEqual({
      model: ["Systran/faster-whisper-large-v3"],
      language: ["fr"],
      prompt: ["Lyon"],
      temperature: ["0.4"],
      response_format: ["verbose_json"],
      "timestamp_granularities[]": ["segment", "word"],
      stream: ["true"],
    });
    const file = form.get("file") as File;
    expect([file.name, file.type, file.size]).toEqual(["audio.wav", "audio/wav", 3]);
  });

  it("sends a translation to the translations route (or the one configured) with whisper.cpp's translate field, and no stream field when streaming is off", () => {
    const tr = v.parse(WhisperTranscribeInput, { audio_object: ref, model: "medium" });
    const plain = whisperRequest("whisper.translate", tr, audio, {});
    expect(plain.path).toBe("/v1/audio/translations");
    expect(fields(plain.form)).toMatchObject({ translate: ["true"], model: ["medium"] });
    expect(fields(plain.form)).not.toHaveProperty("timestamp_granularities[]");
    const cpp = whisperRequest("whisper.translate", tr, audio, {
      translatePath: "/inference",
      stream: false,
    });
    expect(cpp.path).toBe("/inference");
    expect(fields(cpp.form)).not.toHaveProperty("stream");
  });
});

describe("the whisper runner's answer mapping", () => {
  const doc = {
    task: "transcribe",
    language: "english",
    duration: 4.5,
    text: " Hello there. General Kenobi.",
    segments: [
      {
        id: 0,
        seek: 0,
        start: 0,
        end: 2,
        text: " Hello there.",
        tokens: [1],
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
      },
      {
        id: 1,
        seek: 0,
        start: 2,
        end: 4.25,
        text: " General Kenobi.",
        tokens: [2],
        avg_logprob: -0.3,
        no_speech_prob: 0.02,
      },
    ],
    // OpenAI puts words beside the segments, not in them.
    words: [
      { word: "Hello", start: 0, end: 0.8 },
      { word: "there.", start: 0.8, end: 2 },
      { word: "General", start: 2, end: 3 },
      { word: "Kenobi.", start: 3, end: 4.25 },
    ],
  };

  it("maps verbose_json to the service's output: trimmed text, an ISO language code, segments with their own words", () => {
    const t = transcriptOf(JSON.stringify(doc), "application/json");
    const out = whisperOutput(input({ response_format: "verbose_json", word_timestamps: true }), t);
    expect(v.safeParse(WhisperOutput, out).success).toBe(true);
    expect(out).toMatchObject({ text: "Hello there. General Kenobi.", language: "en", duration_s: 4.5 });
    expect(out.segments?.[1]).toEqual({
      id: 1,
      start: 2,
      end: 4.25,
      text: "General Kenobi.",
      avg_logprob: -0.3,
      no_speech_prob: 0.02,
      words: [
        { word: "General", start: 2, end: 3 },
        { word: "Kenobi.", start: 3, end: 4.25 },
      ],
    });
  });

  it("keeps only what the asked response_format has: text for json, subtitles for srt and vtt", () => {
    const t = transcriptOf(JSON.stringify(doc), "application/json");
    expect(whisperOutput(input(), t)).toEqual({
      text: "Hello there. General Kenobi.",
      language: "en",
      duration_s: 4.5,
    });
    expect(whisperOutput(input({ response_format: "vtt" }), t).subtitles).toBe(
      "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n\n00:00:02.000 --> 00:00:04.250\nGeneral Kenobi.\n\n",
    );
    expect(whisperOutput(input({ response_format: "srt" }), t).subtitles).toBe(
      "1\n00:00:00,000 --> 00:00:02,000\nHello there.\n\n2\n00:00:02,000 --> 00:00:04,250\nGeneral Kenobi.\n\n",
    );
  });

  it("takes a streamed segment's duration for its own length, not the audio's, and uses the measured length instead", () => {
    const t: Transcript = { segments: [], words: [] };
    // speaches: each event's duration is end - start; the first one's equals its end.
    addEvent(t, { language: "en", duration: 2, segments: [{ start: 0, end: 2, text: " Hello there." }] });
    addEvent(t, {
      language: "en",
      duration: 2.25,
      segments: [{ start: 2, end: 4.25, text: "General Kenobi." }],
    });
    expect(t.duration).toBeUndefined();
    const out = whisperOutput(input(), t, 7);
    expect(out).toEqual({ text: "Hello there. General Kenobi.", language: "en", duration_s: 7 });
    // Nothing measured: the audio lasts at least as long as its last segment.
    expect(whisperOutput(input(), t).duration_s).toBe(4.25);
    // A server that sends the whole length with each event is believed.
    const whole: Transcript = { segments: [], words: [] };
    addEvent(whole, { duration: 30, segments: [{ start: 0, end: 2, text: " Hi." }] });
    expect(whole.duration).toBe(30);
  });

  it("takes a plain-text answer of a server that ignored the format as the transcript", () => {
    const t = transcriptOf("Hello there.\n", "text/plain");
    expect(whisperOutput(input({ language: "en" }), t, 2)).toEqual({
      text: "Hello there.",
      language: "en",
      duration_s: 2,
    });
  });

  it("names languages by ISO 639-1 code whether the server says en or english", () => {
    expect(languageCode("en")).toBe("en");
    expect(languageCode("english")).toBe("en");
    expect(languageCode("German")).toBe("de");
    expect(languageCode("maori")).toBe("mi");
    expect(languageCode("myanmar")).toBe("my");
    expect(languageCode("klingon")).toBe("klingon");
    expect(languageCode(undefined)).toBeUndefined();
  });

  it("writes subtitle times as hours, minutes, seconds and milliseconds", () => {
    const cue = [{ start: 3725.5, end: 3727.004, text: " Late. " }];
    expect(srt(cue)).toBe("1\n01:02:05,500 --> 01:02:07,004\nLate.\n\n");
    expect(vtt(cue)).toBe("WEBVTT\n\n01:02:05.500 --> 01:02:07.004\nLate.\n\n");
  });
});

describe("the whisper runner's failures", () => {
  it("a refusal of the job's audio or options is final with a stable code and the server's reason", () => {
    const unsupported = serverFailure(415, JSON.stringify({ detail: "Failed to decode audio." }));
    expect([unsupported.code, unsupported.retryable, unsupported.message]).toEqual([
      "unsupported_audio",
      false,
      "the whisper server answered 415: Failed to decode audio.",
    ]);
    const invalid = serverFailure(
      422,
      JSON.stringify({ detail: [{ loc: ["body", "language"], msg: "Input should be 'af', ..." }] }),
    );
    expect([invalid.code, invalid.retryable]).toEqual(["whisper_refused", false]);
    expect(invalid.message).toContain("body");
    const openai = serverFailure(400, JSON.stringify({ error: { message: "Invalid file format." } }));
    expect([openai.code, openai.message]).toEqual([
      "whisper_refused",
      "the whisper server answered 400: Invalid file format.",
    ]);
    expect(serverFailure(413, "").code).toBe("audio_too_large");
  });

  it("the server failing, overloaded or refusing the miner's key is retried (another attempt may do better)", () => {
    for (const [status, code] of [
      [500, "whisper_server_error"],
      [503, "whisper_server_error"],
      [429, "whisper_server_error"],
      [401, "whisper_unauthorized"],
      [403, "whisper_unauthorized"],
    ] as const) {
      const f = serverFailure(status, JSON.stringify({ error: "whisper.cpp says no" }));
      expect([f.code, f.retryable]).toEqual([code, true]);
    }
  });

  it("an audio_url is fetched only from public addresses", async () => {
    expect(publicAddress("93.184.215.14", 4)).toBe(true);
    expect(publicAddress("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 6)).toBe(true);
    for (const [a, f] of [
      ["127.0.0.1", 4],
      ["10.1.2.3", 4],
      ["169.254.169.254", 4],
      ["192.168.0.10", 4],
      ["::1", 6],
      ["fd00::1", 6],
    ] as const)
      expect(publicAddress(a, f), a).toBe(false);
    const signal = new AbortController().signal;
    await expect(fetchAudio("https://127.0.0.1/a.wav", 1024, signal)).rejects.toMatchObject({
      code: "audio_url_refused",
      retryable: false,
    });
    await expect(fetchAudio("http://example.com/a.wav", 1024, signal)).rejects.toBeInstanceOf(JobFailure);
  });
});

describe("the whisper runner's audio sniffing", () => {
  it("names the container by its first bytes, for the servers that decode by file name", () => {
    const b = (s: string, ...extra: number[]) => new Uint8Array([...Buffer.from(s, "latin1"), ...extra]);
    expect(audioFormat(wav(1, 8000))?.ext).toBe("wav");
    expect(audioFormat(b("ID3\x04\x00"))?.ext).toBe("mp3");
    expect(audioFormat(new Uint8Array([0xff, 0xfb, 0x90, 0x00]))?.ext).toBe("mp3");
    expect(audioFormat(new Uint8Array([0xff, 0xf1, 0x50, 0x80]))?.ext).toBe("aac");
    expect(audioFormat(b("fLaC"))?.ext).toBe("flac");
    expect(audioFormat(b("OggS"))?.ext).toBe("ogg");
    expect(audioFormat(b("\x00\x00\x00\x20ftypM4A "))).toEqual({ ext: "m4a", type: "audio/mp4" });
    expect(audioFormat(b("\x00\x00\x00\x20ftypisom"))).toEqual({ ext: "mp4", type: "video/mp4" });
    expect(audioFormat(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]))?.ext).toBe("webm");
    expect(audioFormat(b("hello"))).toBeUndefined();
  });

  it("reads a WAV's length from its header, a streamed header's from the bytes that follow", () => {
    expect(wavSeconds(wav(6, 100))).toBe(6);
    const streamed = new Uint8Array([...wav(0, 16_000, 0xffffffff), ...new Uint8Array(32_000)]);
    expect(wavSeconds(streamed)).toBe(2);
    expect(wavSeconds(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });
});

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import {
  WHISPER_LANGUAGES,
  type WhisperOutput,
  type WhisperTranscribeInput,
} from "../../../core/services/catalog/whisper.ts";
import { HttpsUrl } from "../../../core/services/refs.ts";
import { str } from "../../command.ts";
import { Completed, type ExecutionContext, type Executor, JobFailure } from "../executors.ts";
import { probe } from "./ffmpeg.ts";
import type { RunnerSpec } from "./index.ts";
import { modelNames } from "./model-names.ts";

/**
 * The `whisper.transcribe` and `whisper.translate` runner: forwards a job to an OpenAI-compatible audio server
 * (faster-whisper-server / speaches, whisper.cpp's server, anything speaking OpenAI's audio API). The audio (the
 * job's artifact, or its https `audio_url`) goes as multipart/form-data to `POST /v1/audio/transcriptions` or
 * `/v1/audio/translations`, always as `verbose_json`: its segments, language and duration are what the service's
 * output is made of, whatever `response_format` the client asked for (subtitles are written here from the
 * segments). `stream=true` is asked for too: a server that streams (speaches) answers server-sent events, one
 * segment each, reported as progress against the audio's length; one that does not (whisper.cpp) ignores the field
 * and answers one JSON document. The content type of the answer says which, so both work without configuration.
 * The audio seconds are recorded as usage (never billed: the coordinator meters time).
 */

type Input = v.InferOutput<typeof WhisperTranscribeInput>;
type Output = v.InferOutput<typeof WhisperOutput>;

export interface WhisperRunnerConfig {
  /** The server's base URL, e.g. `http://127.0.0.1:8000` (the `/v1/audio/...` paths are appended). */
  baseUrl: string;
  apiKey?: string;
  /** The server's name for a registry model, e.g. `{"large-v3": "Systran/faster-whisper-large-v3"}`. */
  models?: Record<string, string>;
  /** Ask for server-sent events of segments (default true); off for a server that refuses the `stream` field. */
  stream?: boolean;
  /**
   * Where translations go (default `/v1/audio/translations`). whisper.cpp's server has one route
   * (`--inference-path`): point this at it too, and the `translate=true` field sent with translations tells it.
   */
  translatePath?: string;
  /** Largest audio fetched from an `audio_url`, bytes (default 1 GiB, the service's artifact limit). */
  maxAudioBytes?: number;
  /** The ffprobe that measures non-WAV audio for progress (default `ffprobe` on the PATH; false: never). */
  ffprobe?: string | false;
}

/** A segment or word as OpenAI-compatible servers write them in `verbose_json`. */
export interface ServerWord {
  word: string;
  start: number;
  end: number;
  probability?: number;
}
export interface ServerSegment {
  id?: number;
  start: number;
  end: number;
  text: string;
  avg_logprob?: number;
  no_speech_prob?: number;
  words?: ServerWord[] | null;
}
export interface VerboseJson {
  task?: string;
  language?: string;
  duration?: number;
  text?: string;
  segments?: ServerSegment[];
  words?: ServerWord[] | null;
}

/** The audio as the server gets it: bytes, and the file name and type its decoder may go by (OpenAI's does). */
export interface Audio {
  bytes: Uint8Array;
  filename: string;
  type: string;
}

const TRANSCRIBE_PATH = "/v1/audio/transcriptions";
const TRANSLATE_PATH = "/v1/audio/translations";

/** The multipart form of one job, and the route it goes to (pure: what the tests check, and what is sent). */
export function whisperRequest(
  service: string,
  input: Input,
  audio: Audio,
  cfg: Pick<WhisperRunnerConfig, "models" | "stream" | "translatePath">,
): { path: string; form: FormData } {
  const translate = service === "whisper.translate";
  const form = new FormData();
  form.append(
    "file",
    new Blob([audio.bytes as Uint8Array<ArrayBuffer>], { type: audio.type }),
    audio.filename,
  );
  form.append("model", cfg.models?.[input.model] ?? input.model);
  if (input.language !== undefined) form.append("language", input.language);
  if (input.initial_prompt !== undefined) form.append("prompt", input.initial_prompt);
  form.append("temperature", String(input.temperature ?? 0));
  // Always the verbose form: duration and language are required in the output, segments make subtitles.
  form.append("response_format", "verbose_json");
  // OpenAI's transcriptions take granularities (translations do not); whisper.cpp adds words to verbose_json anyway.
  if (!translate) {
    form.append("timestamp_granularities[]", "segment");
    if (input.word_timestamps) form.append("timestamp_granularities[]", "word");
  }
  if (cfg.stream !== false) form.append("stream", "true");
  // whisper.cpp's server translates on this field; servers with a translations route ignore it.
  if (translate) form.append("translate", "true");
  return { path: translate ? (cfg.translatePath ?? TRANSLATE_PATH) : TRANSCRIBE_PATH, form };
}

/** What the server said, gathered from one document or from a stream of segment events. */
export interface Transcript {
  text?: string;
  language?: string;
  /** The whole audio's length, when the server said it. */
  duration?: number;
  segments: ServerSegment[];
  words: ServerWord[];
}

/**
 * A document or a streamed event of the server's, parsed. Unreadable JSON is a retryable failure (`how` says which
 * it was): a broken answer is the server's fault, not the job's, and another attempt may get a whole one.
 */
function verboseJson(text: string, how: "answered" | "streamed"): VerboseJson {
  try {
    return JSON.parse(text) as VerboseJson;
  } catch {
    throw new JobFailure(
      "whisper_bad_answer",
      `the whisper server ${how} unreadable JSON: ${text.slice(0, 200)}`,
      true,
    );
  }
}

/** A non-streamed answer: `verbose_json`, or the plain `{text}` of a server that ignored the format. */
export function transcriptOf(body: string, contentType: string | null): Transcript {
  if (!/json/i.test(contentType ?? "") && !body.trimStart().startsWith("{")) {
    return { text: body, segments: [], words: [] };
  }
  const doc = verboseJson(body, "answered");
  return {
    ...(typeof doc.text === "string" ? { text: doc.text } : {}),
    ...(doc.language ? { language: doc.language } : {}),
    ...(typeof doc.duration === "number" ? { duration: doc.duration } : {}),
    segments: doc.segments ?? [],
    words: doc.words ?? [],
  };
}

/**
 * Adds one streamed event to the transcript. Each speaches event is a `verbose_json` of one segment whose
 * `duration` is that segment's length, not the audio's (the first one's equals its end): a duration counts as the
 * whole length only when it reaches past the segment's end.
 */
export function addEvent(t: Transcript, event: VerboseJson): void {
  for (const s of event.segments ?? []) t.segments.push(s);
  if (event.language) t.language = event.language;
  const end = t.segments.at(-1)?.end ?? 0;
  if (typeof event.duration === "number" && event.duration > end && event.duration > (t.duration ?? 0))
    t.duration = event.duration;
}

const names = new Intl.DisplayNames(["en"], { type: "language" });
const plain = (s: string) =>
  s
    .normalize("NFD")
    .replace(/\p{Diacritic}/gu, "")
    .toLowerCase();
/** Whisper's own names where they differ from Unicode's English ones. */
const WHISPER_NAMES: Record<string, string> = {
  myanmar: "my",
  nynorsk: "nn",
  castilian: "es",
  valencian: "ca",
};
const BY_NAME = new Map<string, string>([
  ...WHISPER_LANGUAGES.map((code) => [plain(names.of(code) ?? code), code] as [string, string]),
  ...Object.entries(WHISPER_NAMES),
]);

/**
 * The ISO 639-1 code of a language as a server names it: speaches and whisper.cpp say `en`, OpenAI says `english`.
 * A name it does not know is kept as the server wrote it.
 */
export function languageCode(language: string | undefined): string | undefined {
  if (!language) return undefined;
  const l = language.trim();
  if (/^[a-z]{2,3}$/.test(l)) return l;
  return BY_NAME.get(plain(l)) ?? l;
}

const clock = (seconds: number, decimal: "," | ".") => {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${decimal}${pad(ms % 1000, 3)}`;
};

/** SubRip subtitles of the segments. */
export function srt(segments: readonly { start: number; end: number; text: string }[]): string {
  return segments
    .map((s, i) => `${i + 1}\n${clock(s.start, ",")} --> ${clock(s.end, ",")}\n${s.text.trim()}\n\n`)
    .join("");
}

/** WebVTT subtitles of the segments. */
export function vtt(segments: readonly { start: number; end: number; text: string }[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${clock(s.start, ".")} --> ${clock(s.end, ".")}\n${s.text.trim()}\n\n`).join("")}`;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Streamed segments' text as one: Whisper starts a segment with its space; a server that trims gets one back. */
function joined(segments: readonly ServerSegment[]): string {
  return segments.reduce(
    (text, s) =>
      text === "" || /\s$/.test(text) || /^\s/.test(s.text) ? text + s.text : `${text} ${s.text}`,
    "",
  );
}

/**
 * The service's output from what the server said: the plain text always, segments for `verbose_json` (with words
 * for `word_timestamps`), subtitles for `srt` and `vtt`. The audio's length is the server's, else the one measured
 * here (`knownSeconds`), else where the last segment ends.
 */
export function whisperOutput(input: Input, t: Transcript, knownSeconds?: number): Output {
  const words = (s: ServerSegment): ServerWord[] =>
    s.words ?? t.words.filter((w) => w.start >= s.start && w.start < s.end);
  const segments = t.segments.map((s, i) => ({
    id: s.id ?? i,
    start: round3(s.start),
    end: round3(s.end),
    text: s.text.trim(),
    ...(typeof s.avg_logprob === "number" ? { avg_logprob: s.avg_logprob } : {}),
    ...(typeof s.no_speech_prob === "number" ? { no_speech_prob: s.no_speech_prob } : {}),
    ...(input.word_timestamps
      ? {
          words: words(s).map((w) => ({
            word: w.word.trim(),
            start: round3(w.start),
            end: round3(w.end),
            ...(typeof w.probability === "number" ? { probability: w.probability } : {}),
          })),
        }
      : {}),
  }));
  const text = (t.text ?? joined(t.segments)).trim();
  const format = input.response_format ?? "json";
  return {
    text,
    language: languageCode(t.language) ?? input.language ?? "und",
    duration_s: round3(Math.max(0, t.duration ?? knownSeconds ?? segments.at(-1)?.end ?? 0)),
    ...(format === "verbose_json" ? { segments } : {}),
    ...(format === "srt" ? { subtitles: srt(segments) } : {}),
    ...(format === "vtt" ? { subtitles: vtt(segments) } : {}),
  };
}

/**
 * A server's refusal as a job failure. Its credentials refused (the miner's configuration, not the job) and
 * overload are retried, as are its own errors; any other 4xx is the job's (audio it cannot decode, an option it
 * refuses) and is final.
 */
export function serverFailure(status: number, body: string): JobFailure {
  const said = `the whisper server answered ${status}: ${detailOf(body)}`;
  if (status === 401 || status === 403) return new JobFailure("whisper_unauthorized", said, true);
  if (status === 429 || status >= 500) return new JobFailure("whisper_server_error", said, true);
  if (status === 413) return new JobFailure("audio_too_large", said, false);
  if (status === 415) return new JobFailure("unsupported_audio", said, false);
  return new JobFailure("whisper_refused", said, false);
}

/** The reason in an error body: FastAPI's `detail`, OpenAI's `error.message`, whisper.cpp's `error`. */
function detailOf(body: string): string {
  try {
    const j = JSON.parse(body) as { detail?: unknown; error?: unknown };
    const e = j.error as { message?: unknown } | string | undefined;
    const found = j.detail ?? (typeof e === "object" && e !== null ? e.message : e);
    if (found !== undefined)
      return (typeof found === "string" ? found : JSON.stringify(found)).slice(0, 1000);
  } catch {}
  return body.slice(0, 1000);
}

/** The container of some audio by its first bytes, for the file name servers decide the decoder by. */
export function audioFormat(bytes: Uint8Array): { ext: string; type: string } | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE") return { ext: "wav", type: "audio/wav" };
  if (ascii(0, 4) === "fLaC") return { ext: "flac", type: "audio/flac" };
  if (ascii(0, 4) === "OggS") return { ext: "ogg", type: "audio/ogg" };
  if (ascii(4, 8) === "ftyp")
    return ascii(8, 11) === "M4A" ? { ext: "m4a", type: "audio/mp4" } : { ext: "mp4", type: "video/mp4" };
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3)
    return { ext: "webm", type: "video/webm" };
  if (ascii(0, 3) === "ID3") return { ext: "mp3", type: "audio/mpeg" };
  if (bytes[0] === 0xff && ((bytes[1] ?? 0) & 0xf6) === 0xf0) return { ext: "aac", type: "audio/aac" };
  if (bytes[0] === 0xff && ((bytes[1] ?? 0) & 0xe0) === 0xe0) return { ext: "mp3", type: "audio/mpeg" };
  return undefined;
}

/** The length of a PCM WAV from its header (`fmt ` byte rate, `data` size), without decoding anything. */
export function wavSeconds(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || ascii(0) !== "RIFF" || ascii(8) !== "WAVE") return undefined;
  let byteRate = 0;
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = ascii(at);
    const size = view.getUint32(at + 4, true);
    if (id === "fmt " && at + 16 <= bytes.length) byteRate = view.getUint32(at + 16, true);
    if (id === "data") {
      // A header written before the length was known says 0 or 0xFFFFFFFF: the rest of the file is the data.
      const data = size === 0 || size === 0xffffffff ? bytes.length - at - 8 : size;
      return byteRate > 0 ? data / byteRate : undefined;
    }
    at += 8 + size + (size % 2);
  }
  return undefined;
}

/** The audio's length: from a WAV header, else from ffprobe; undefined when neither can tell. */
async function audioSeconds(audio: Audio, ffprobe: string | false): Promise<number | undefined> {
  const wav = wavSeconds(audio.bytes);
  if (wav !== undefined || ffprobe === false) return wav;
  const dir = await mkdtemp(join(tmpdir(), "coord-whisper-"));
  try {
    const file = join(dir, audio.filename);
    await writeFile(file, audio.bytes);
    const { duration_s } = await probe(file, ffprobe);
    return duration_s > 0 ? duration_s : undefined;
  } catch {
    // No ffprobe, or audio it cannot read: progress then says how far the server got, without a fraction.
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether an address the miner would connect to is public (the same rule the registry applies to literal hosts). */
export function publicAddress(address: string, family: number): boolean {
  return v.is(HttpsUrl, family === 6 ? `https://[${address}]/` : `https://${address}/`);
}

/**
 * DNS lookup that refuses private, loopback and link-local answers: a public name can resolve anywhere, and a
 * miner on a cloud GPU must not be steered at its own metadata service (core/services/refs.ts).
 */
const publicLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...(options as LookupOptions), all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    const refused = addresses.find((a) => !publicAddress(a.address, a.family));
    if (refused || addresses.length === 0) {
      const e: NodeJS.ErrnoException = new Error(
        `${hostname} resolves to ${refused?.address ?? "nothing"}, not a public address`,
      );
      e.code = "EPRIVATEADDRESS";
      return callback(e, "", 0);
    }
    if ((options as LookupOptions).all) return callback(null, addresses);
    const first = addresses[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
};

/**
 * The audio at a public https URL, at most `maxBytes`, following up to 5 redirects (each target held to the same
 * rule). Plain node:https rather than fetch: only it lets every connection go through `publicLookup`.
 */
export function fetchAudio(
  url: string,
  maxBytes: number,
  signal: AbortSignal,
  redirects = 5,
): Promise<Audio> {
  if (!v.is(HttpsUrl, url))
    return Promise.reject(new JobFailure("audio_url_refused", `${url} is not a public https URL`, false));
  return new Promise((resolve, reject) => {
    const tooLarge = () => new JobFailure("audio_too_large", `the audio at ${url} is over ${maxBytes} bytes`);
    const req = httpsRequest(url, { lookup: publicLookup, signal }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        res.resume();
        if (redirects === 0)
          return reject(new JobFailure("audio_url_unreachable", `GET ${url}: too many redirects`, false));
        return resolve(fetchAudio(new URL(location, url).toString(), maxBytes, signal, redirects - 1));
      }
      if (status !== 200) {
        res.resume();
        return reject(
          new JobFailure(
            "audio_url_unreachable",
            `GET ${url}: HTTP ${status}`,
            status >= 500 || status === 429,
          ),
        );
      }
      if (Number(res.headers["content-length"] ?? 0) > maxBytes) {
        res.destroy();
        return reject(tooLarge());
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          reject(tooLarge());
        } else chunks.push(chunk);
      });
      res.on("error", (err) => reject(signal.aborted ? signal.reason : unreachable(url, err)));
      res.on("end", () => {
        const bytes = new Uint8Array(Buffer.concat(chunks));
        const sniffed = audioFormat(bytes);
        const named = /\.([a-z0-9]{2,4})$/i.exec(new URL(url).pathname)?.[1];
        const type = String(res.headers["content-type"] ?? "")
          .split(";")[0]
          ?.trim();
        resolve({
          bytes,
          filename: `audio.${named ?? sniffed?.ext ?? "bin"}`,
          type: sniffed?.type ?? (type || "application/octet-stream"),
        });
      });
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return reject(signal.reason);
      if (err.code === "EPRIVATEADDRESS")
        return reject(new JobFailure("audio_url_refused", err.message, false));
      reject(unreachable(url, err));
    });
    req.end();
  });
}

const unreachable = (url: string, err: Error) =>
  new JobFailure("audio_url_unreachable", `GET ${url}: ${err.message}`, true);

/** The events of a `text/event-stream` body: each `data:` payload (a final one without its blank line too). */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  const dataOf = (event: string) =>
    event
      .split(/\r?\n/)
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trimStart())
      .join("\n");
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let m = /\r?\n\r?\n/.exec(buffered); m; m = /\r?\n\r?\n/.exec(buffered)) {
      const data = dataOf(buffered.slice(0, m.index));
      buffered = buffered.slice(m.index + m[0].length);
      if (data === "[DONE]") return;
      if (data) yield data;
    }
  }
  const last = dataOf(buffered + decoder.decode());
  if (last && last !== "[DONE]") yield last;
}

/** The request body as a stream of the encoded form, so that the upload's progress can be told. */
function uploading(bytes: Uint8Array, onSent: (sent: number) => void): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(bytes.length, sent + 1024 * 1024);
      controller.enqueue(bytes.subarray(sent, end));
      sent = end;
      onSent(sent);
    },
  });
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/** `coord miner run --services whisper.transcribe,whisper.translate --whisper-url URL`. */
export const whisperRunnerSpec: RunnerSpec = {
  name: "whisper",
  services: ["whisper.transcribe", "whisper.translate"],
  summary:
    "whisper.transcribe/translate through an OpenAI-compatible audio server (faster-whisper-server/speaches, whisper.cpp): --whisper-url",
  options: {
    "whisper-url": {
      type: "string",
      value: "URL",
      description:
        "OpenAI-compatible audio server for whisper.* (speaches, faster-whisper-server, whisper.cpp; env COORD_WHISPER_URL)",
    },
    "whisper-key": {
      type: "string",
      value: "KEY",
      description: "Its API key, if it wants one (env COORD_WHISPER_KEY)",
    },
    "whisper-model": {
      type: "string",
      multiple: true,
      value: "ID=NAME",
      description: "The server's name for a registry model, e.g. large-v3=Systran/faster-whisper-large-v3",
    },
    "whisper-no-stream": {
      type: "boolean",
      description: "Do not ask the audio server to stream segments (for a server that refuses stream=true)",
    },
    "whisper-translate-path": {
      type: "string",
      value: "PATH",
      description:
        "Route for whisper.translate (default /v1/audio/translations; whisper.cpp: its --inference-path)",
    },
  },
  make: ({ opts, env }) => {
    const baseUrl = str(opts, "whisper-url") ?? env.COORD_WHISPER_URL;
    if (!baseUrl)
      return "whisper.transcribe and whisper.translate need an OpenAI-compatible audio server: --whisper-url URL (or COORD_WHISPER_URL)";
    const models = modelNames(opts, "whisper-model");
    if (typeof models === "string") return models;
    const apiKey = str(opts, "whisper-key") ?? env.COORD_WHISPER_KEY;
    const translatePath = str(opts, "whisper-translate-path");
    return whisperRunner({
      baseUrl,
      models,
      stream: opts["whisper-no-stream"] !== true,
      ...(apiKey ? { apiKey } : {}),
      ...(translatePath ? { translatePath } : {}),
    });
  },
};

export function whisperRunner(cfg: WhisperRunnerConfig): Executor {
  const base = cfg.baseUrl.replace(/\/+$/, "");
  const maxAudio = cfg.maxAudioBytes ?? 1024 ** 3;
  return async (ctx) => {
    const input = ctx.input as Input;
    await ctx.progress(0, input.audio_object ? "downloading the audio" : "fetching the audio");
    const audio = input.audio_object
      ? await artifactAudio(ctx)
      : await fetchAudio(input.audio_url as string, maxAudio, ctx.signal);
    // Measured while the upload runs: only progress and a server that does not say the length need it.
    const seconds = audioSeconds(audio, cfg.ffprobe ?? "ffprobe");
    const { path, form } = whisperRequest(ctx.service, input, audio, cfg);
    const encoded = new Response(form);
    const body = new Uint8Array(await encoded.arrayBuffer());
    const progress = reporter(ctx);
    progress.report(0, `uploading ${mb(audio.bytes.length)} of audio to the whisper server`, true);
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        "content-type": encoded.headers.get("content-type") ?? "multipart/form-data",
        "content-length": String(body.length),
        accept: "text/event-stream, application/json",
        ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}),
      },
      body: uploading(body, (sent) =>
        sent < body.length
          ? progress.report((0.05 * sent) / body.length, `uploaded ${mb(sent)} of ${mb(body.length)}`)
          : progress.report(0.05, "audio uploaded; transcribing", true),
      ),
      duplex: "half",
      signal: ctx.signal,
    }).catch((err: Error) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new JobFailure("whisper_unreachable", `${base}: ${err.message}`, true);
    });
    if (!res.ok || !res.body) throw serverFailure(res.status, await res.text().catch(() => ""));
    const known = await seconds;
    const streamed = /text\/event-stream/i.test(res.headers.get("content-type") ?? "");
    let transcript: Transcript;
    try {
      transcript = streamed
        ? await readSegments(res.body, known, progress)
        : transcriptOf(await res.text(), res.headers.get("content-type"));
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (err instanceof JobFailure) throw err;
      // The connection broke mid-answer: the server crashed or went away, another attempt may do better.
      throw new JobFailure(
        "whisper_stream_broken",
        `reading the whisper server's answer: ${String(err)}`,
        true,
      );
    }
    await progress.flush();
    ctx.signal.throwIfAborted();
    const output = whisperOutput(input, transcript, known);
    return new Completed(output, { audio_seconds: output.duration_s, segments: transcript.segments.length });
  };
}

async function artifactAudio(ctx: ExecutionContext): Promise<Audio> {
  const bytes = await ctx.artifacts.download("input.audio_object");
  const format = audioFormat(bytes);
  return {
    bytes,
    filename: `audio.${format?.ext ?? "bin"}`,
    type: format?.type ?? "application/octet-stream",
  };
}

interface Reporter {
  /** Reports at most once a second (`now`: at once), never going backwards; does not wait for the report. */
  report(fraction: number, message: string, now?: boolean): void;
  readonly fraction: number;
  /** Waits for the reports sent: a result must not overtake them (one landing after it is refused). */
  flush(): Promise<void>;
}

function reporter(ctx: ExecutionContext): Reporter {
  let last = 0;
  let fraction = 0;
  const sent = new Set<Promise<void>>();
  return {
    report(f, message, now = false) {
      if (!now && Date.now() - last < 1000) return;
      last = Date.now();
      fraction = Math.max(fraction, Math.min(0.99, f));
      const p = ctx.progress(Number(fraction.toFixed(3)), message).finally(() => sent.delete(p));
      sent.add(p);
    },
    get fraction() {
      return fraction;
    },
    flush: async () => {
      await Promise.all(sent);
    },
  };
}

/** Reads a stream of segment events, reporting how far into the audio the server is. */
async function readSegments(
  body: ReadableStream<Uint8Array>,
  knownSeconds: number | undefined,
  progress: Reporter,
): Promise<Transcript> {
  const t: Transcript = { segments: [], words: [] };
  let first = true;
  for await (const data of sseData(body)) {
    const event = verboseJson(data, "streamed");
    addEvent(t, event);
    const end = t.segments.at(-1)?.end ?? 0;
    const total = t.duration ?? knownSeconds;
    progress.report(
      total ? 0.05 + 0.9 * Math.min(1, end / total) : progress.fraction,
      total ? `transcribed ${end.toFixed(1)} of ${total.toFixed(1)} s` : `transcribed ${end.toFixed(1)} s`,
      first,
    );
    first = false;
  }
  return t;
}

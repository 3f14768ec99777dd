import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { listenLocal } from "./local-server.ts";

/**
 * A STAND-IN for an OpenAI-compatible audio server (faster-whisper-server / speaches, whisper.cpp's server), which
 * tests cannot run: it speaks the real wire format of `POST /v1/audio/transcriptions` and `/v1/audio/translations`
 * (multipart/form-data in, parsed with the web `Response.formData()`; `verbose_json`, `json`, `text`, `srt` and
 * `vtt` out; with `stream=true` on a streaming server, speaches' server-sent events: one `verbose_json` per segment
 * whose `duration` is that segment's length) and FastAPI's error bodies (415 for audio it cannot decode, 422 for a
 * missing field, 404 for a model it does not have, 401 for a wrong key). It does not decode audio: it reads a WAV's
 * length from its header (other containers it recognises last `DEFAULT_SECONDS`), and its "speech" is `SPOKEN`
 * (German, so that a translation is visibly another text), one sentence a segment, spread evenly over the audio.
 */

export const SPOKEN = [
  "Guten Morgen zusammen.",
  "Der Zug nach Berlin fährt um acht.",
  "Bitte nicht vergessen.",
];
export const TRANSLATED = [
  "Good morning everyone.",
  "The train to Berlin leaves at eight.",
  "Please do not forget.",
];
export const DEFAULT_SECONDS = 9;

export interface WhisperStandInOptions {
  /** Whether it streams on `stream=true` (speaches) or ignores the field (whisper.cpp). */
  streams?: boolean;
  /** Between streamed segments. */
  segmentMs?: number;
  /** Bearer key it wants, if any. */
  apiKey?: string;
  /** Models it has; `model` names another: 404. */
  models?: string[];
}

export interface WhisperRequest {
  path: string;
  authorization?: string;
  /** Every text field, repeated ones (`timestamp_granularities[]`) in order. */
  fields: Record<string, string[]>;
  file?: { name: string; type: string; bytes: number; sha256: string };
}

export interface WhisperStandIn {
  url: string;
  requests: WhisperRequest[];
  close(): Promise<void>;
}

const FORMATS = ["json", "text", "srt", "vtt", "verbose_json"];

function sniffSeconds(bytes: Uint8Array): number | undefined {
  const ascii = (at: number, n = 4) => String.fromCharCode(...bytes.subarray(at, at + n));
  if (ascii(0) === "RIFF" && ascii(8) === "WAVE") {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let rate = 0;
    for (let at = 12; at + 8 <= bytes.length; ) {
      const size = view.getUint32(at + 4, true);
      if (ascii(at) === "fmt ") rate = view.getUint32(at + 16, true);
      if (ascii(at) === "data") return rate ? size / rate : undefined;
      at += 8 + size + (size % 2);
    }
    return undefined;
  }
  if (["fLaC", "OggS"].includes(ascii(0)) || ascii(0, 3) === "ID3" || ascii(4) === "ftyp")
    return DEFAULT_SECONDS;
  return undefined;
}

const clock = (s: number, sep: string) => {
  const ms = Math.round(s * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(Math.floor(ms / 3_600_000))}:${p(Math.floor(ms / 60_000) % 60)}:${p(Math.floor(ms / 1000) % 60)}${sep}${p(ms % 1000, 3)}`;
};

export async function startWhisperStandIn(opts: WhisperStandInOptions = {}): Promise<WhisperStandIn> {
  const requests: WhisperRequest[] = [];
  const models = opts.models ?? ["Systran/faster-whisper-large-v3", "Systran/faster-distil-whisper-large-v3"];
  const server = createServer((req, res) => void handle(req, res));

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = req.url ?? "";
    const translate = path === "/v1/audio/translations";
    if (req.method !== "POST" || (!translate && path !== "/v1/audio/transcriptions"))
      return json(res, 404, { detail: "Not Found" });
    if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`)
      return json(res, 401, { detail: "Invalid API key" });
    let form: FormData;
    try {
      form = await new Response(Buffer.concat(chunks), {
        headers: { "content-type": req.headers["content-type"] ?? "" },
      }).formData();
    } catch {
      return json(res, 400, { detail: "There was an error parsing the body" });
    }
    const fields: Record<string, string[]> = {};
    let file: File | undefined;
    for (const [name, value] of form.entries()) {
      if (typeof value === "string") fields[name] = [...(fields[name] ?? []), value];
      else if (name === "file") file = value;
    }
    const bytes = file ? new Uint8Array(await file.arrayBuffer()) : undefined;
    requests.push({
      path,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      fields,
      ...(file && bytes
        ? {
            file: {
              name: file.name,
              type: file.type,
              bytes: bytes.length,
              sha256: createHash("sha256").update(bytes).digest("hex"),
            },
          }
        : {}),
    });
    const one = (name: string) => fields[name]?.[0];

    if (!bytes)
      return json(res, 422, { detail: [{ type: "missing", loc: ["body", "file"], msg: "Field required" }] });
    const format = one("response_format") ?? "json";
    if (!FORMATS.includes(format))
      return json(res, 422, {
        detail: [
          { type: "enum", loc: ["body", "response_format"], msg: `Input should be ${FORMATS.join(", ")}` },
        ],
      });
    const temperature = Number(one("temperature") ?? "0");
    if (!Number.isFinite(temperature))
      return json(res, 422, {
        detail: [
          { type: "float_parsing", loc: ["body", "temperature"], msg: "Input should be a valid number" },
        ],
      });
    const model = one("model");
    if (model !== undefined && !models.includes(model))
      return json(res, 404, { detail: `Model '${model}' not found` });
    const seconds = sniffSeconds(bytes);
    if (seconds === undefined)
      return json(res, 415, { detail: "Failed to decode audio. The provided file type is not supported." });

    const sentences = translate ? TRANSLATED : SPOKEN;
    const language = one("language") ?? "de";
    const withWords = (fields["timestamp_granularities[]"] ?? []).includes("word");
    const span = seconds / sentences.length;
    const segments = sentences.map((sentence, i) => {
      const start = Math.round(i * span * 1000) / 1000;
      const end = Math.round((i + 1) * span * 1000) / 1000;
      const spoken = sentence.split(" ");
      return {
        id: i + 1,
        seek: 0,
        start,
        end,
        text: ` ${sentence}`,
        tokens: spoken.map((_, t) => 50_365 + t),
        temperature,
        avg_logprob: -0.21,
        compression_ratio: 1.1,
        no_speech_prob: 0.01,
        words: withWords
          ? spoken.map((w, k) => ({
              start: Math.round((start + (k * (end - start)) / spoken.length) * 1000) / 1000,
              end: Math.round((start + ((k + 1) * (end - start)) / spoken.length) * 1000) / 1000,
              word: ` ${w}`,
              probability: 0.93,
            }))
          : null,
      };
    });
    const task = translate ? "translate" : "transcribe";
    const verbose = (segs: typeof segments, duration: number) => ({
      task,
      language,
      duration,
      text: segs
        .map((s) => s.text)
        .join("")
        .trim(),
      words: withWords ? segs.flatMap((s) => s.words ?? []) : null,
      segments: segs,
    });

    if (one("stream") === "true" && opts.streams !== false) {
      res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
      for (const s of segments) {
        await new Promise((r) => setTimeout(r, opts.segmentMs ?? 300));
        const data =
          format === "verbose_json"
            ? JSON.stringify(verbose([s], Math.round((s.end - s.start) * 1000) / 1000))
            : format === "json"
              ? JSON.stringify({ text: s.text.trim() })
              : s.text;
        res.write(`data: ${data}\n\n`);
      }
      return res.end();
    }
    if (format === "verbose_json") return json(res, 200, verbose(segments, seconds));
    if (format === "json") return json(res, 200, { text: verbose(segments, seconds).text });
    res.writeHead(200, { "content-type": format === "vtt" ? "text/vtt" : "text/plain; charset=utf-8" });
    if (format === "text") return res.end(verbose(segments, seconds).text);
    const sep = format === "srt" ? "," : ".";
    const cues = segments
      .map(
        (s, i) =>
          `${format === "srt" ? `${i + 1}\n` : ""}${clock(s.start, sep)} --> ${clock(s.end, sep)}\n${s.text.trim()}\n\n`,
      )
      .join("");
    res.end(format === "vtt" ? `WEBVTT\n\n${cues}` : cues);
  }

  return { ...(await listenLocal(server)), requests };
}

/** A PCM WAV of `seconds` silence at `rate` samples a second, 8-bit mono: small enough for the test stack's limits. */
export function silentWav(seconds: number, rate: number): Uint8Array {
  const samples = Math.round(seconds * rate);
  const out = Buffer.alloc(44 + samples, 0x80);
  out.write("RIFF", 0, "ascii");
  out.writeUInt32LE(36 + samples, 4);
  out.write("WAVEfmt ", 8, "ascii");
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate, 28); // byte rate: 1 byte a sample
  out.writeUInt16LE(1, 32);
  out.writeUInt16LE(8, 34);
  out.write("data", 36, "ascii");
  out.writeUInt32LE(samples, 40);
  return new Uint8Array(out);
}

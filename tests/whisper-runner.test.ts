import { createHash } from "node:crypto";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMiner } from "../cli/miner/agent.ts";
import type { Executor } from "../cli/miner/executors.ts";
import { whisperRunnerSpec } from "../cli/miner/runners/whisper.ts";
import { WhisperOutput } from "../core/services/catalog/whisper.ts";
import {
  api,
  createAccount,
  fundedClient,
  isolated,
  minerRunWithoutServer,
  stack,
  uploadArtifact,
} from "./fixture.ts";
import {
  SPOKEN,
  silentWav,
  startWhisperStandIn,
  TRANSLATED,
  type WhisperStandIn,
} from "./whisper-stand-in.ts";

/*
 * The reference miner's whisper runner (whisper.transcribe, whisper.translate) on the real local stack, against
 * STAND-INS for OpenAI-compatible audio servers that speak the real wire format (tests/whisper-stand-in.ts): one
 * that streams segments as speaches does, one that answers a single document as whisper.cpp does. The audio is an
 * uploaded artifact the runner downloads through its claim's link and forwards as multipart/form-data.
 */

let streaming: WhisperStandIn;
let plain: WhisperStandIn;
beforeAll(async () => {
  streaming = await startWhisperStandIn({ streams: true, segmentMs: 400 });
  plain = await startWhisperStandIn({ streams: false, apiKey: "sk-local", models: ["large-v3"] });
});
afterAll(async () => {
  await streaming.close();
  await plain.close();
});

/**
 * Six seconds of 100 Hz 8-bit silence: 644 bytes, under the 1 KiB the test stack allows whisper.transcribe uploads
 * (tests/global-setup.ts), yet long enough for three segments.
 */
const AUDIO = silentWav(6, 100);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

type Job = {
  id: string;
  status: string;
  attempt: number;
  error?: { code: string; message: string; retryable?: boolean } | null;
};
type Result = { status: string; output: Record<string, unknown>; usage: Record<string, number> | null };

/** An uploaded audio artifact, named as a client would (the runner forwards the file as `audio.wav` regardless). */
const upload = (key: string, bytes: Uint8Array, contentType: string) =>
  uploadArtifact(key, bytes, contentType, "speech.wav");

async function submit(key: string, service: string, constraints: object, input: Record<string, unknown>) {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: { service, input, constraints, max_price: 10_000_000, max_attempts: 3 },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The runner as `coord miner run` builds it from its flags and environment. */
function runner(
  service: string,
  opts: Record<string, string | string[] | boolean>,
  env: NodeJS.ProcessEnv = {},
) {
  const made = whisperRunnerSpec.make({ opts, env }, service);
  if (typeof made === "string") throw new Error(made);
  return made;
}

/** Runs the reference miner with the whisper runner until it has done one job. */
async function whisperMiner(region: string, service: string, executor: Executor) {
  const account = await createAccount("miner");
  return runMiner({
    url: stack.url,
    key: account.key,
    name: `whisper-${region}`,
    services: [service],
    region,
    gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
    prices: { [service]: 10 },
    registration: { cuda_version: "12.4", models: ["whisper-large-v3", "whisper-large-v3-turbo"] },
    maxJobs: 1,
    log: () => {},
    executors: { [service]: executor },
  });
}

const result = async (key: string, id: string) =>
  (await api<Result>("GET", `/v1/jobs/${id}/result`, { key })).body;

async function progressMessages(key: string, id: string): Promise<string[]> {
  const events = await api<{ events: { type: string; data?: { message?: string } }[] }>(
    "GET",
    `/v1/jobs/${id}/events`,
    { key },
  );
  return events.body.events.filter((e) => e.type === "job.progress.v1").map((e) => e.data?.message ?? "");
}

describe("the whisper runner", () => {
  it("transcribes an uploaded WAV through a streaming server: segments as progress, the transcript with segments and words, audio seconds as usage", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const audio = await upload(client.key, AUDIO, "audio/wav");
    const job = await submit(client.key, "whisper.transcribe", constraints, {
      audio_object: { artifact_id: audio },
      model: "large-v3",
      language: "de",
      initial_prompt: "Bahn, Berlin",
      temperature: 0.2,
      response_format: "verbose_json",
      word_timestamps: true,
    });
    const summary = await whisperMiner(
      region,
      "whisper.transcribe",
      runner("whisper.transcribe", {
        "whisper-url": streaming.url,
        "whisper-model": ["large-v3=Systran/faster-whisper-large-v3"],
      }),
    );
    expect(summary).toMatchObject({ completed: 1, failed: 0 });

    const done = await result(client.key, job.id);
    expect(done.status).toBe("completed");
    expect(v.safeParse(WhisperOutput, done.output).success).toBe(true);
    expect(done.output).toMatchObject({ text: SPOKEN.join(" "), language: "de", duration_s: 6 });
    const segments = done.output.segments as { start: number; end: number; text: string; words: unknown[] }[];
    expect(segments.map((s) => [s.start, s.end, s.text])).toEqual([
      [0, 2, SPOKEN[0]],
      [2, 4, SPOKEN[1]],
      [4, 6, SPOKEN[2]],
    ]);
    expect(segments[0]?.words).toEqual([
      { word: "Guten", start: 0, end: 0.667, probability: 0.93 },
      { word: "Morgen", start: 0.667, end: 1.333, probability: 0.93 },
      { word: "zusammen.", start: 1.333, end: 2, probability: 0.93 },
    ]);
    // The length comes from the WAV's header: speaches' streamed events only give each segment's own length.
    expect(done.usage).toEqual({ audio_seconds: 6, segments: 3 });

    // What reached the server: the transcription route, the exact bytes, the job's options under the server's names.
    expect(streaming.requests.find((r) => r.file?.sha256 === sha256(AUDIO))).toEqual({
      path: "/v1/audio/transcriptions",
      fields: {
        model: ["Systran/faster-whisper-large-v3"],
        language: ["de"],
        prompt: ["Bahn, Berlin"],
        temperature: ["0.2"],
        response_format: ["verbose_json"],
        "timestamp_granularities[]": ["segment", "word"],
        stream: ["true"],
      },
      file: { name: "audio.wav", type: "audio/wav", bytes: AUDIO.length, sha256: sha256(AUDIO) },
    });
    // Progress on the job: the upload, then the first streamed segment against the six seconds.
    const messages = await progressMessages(client.key, job.id);
    expect(messages).toContain("audio uploaded; transcribing");
    expect(messages).toContain("transcribed 2.0 of 6.0 s");
  }, 45_000);

  it("translates through /v1/audio/translations of a server that does not stream, and writes SRT subtitles from its segments", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const audio = await upload(client.key, AUDIO, "audio/wav");
    const job = await submit(client.key, "whisper.translate", constraints, {
      audio_object: { artifact_id: audio },
      model: "large-v3",
      response_format: "srt",
    });
    // Configured from the environment alone, key included (the server refuses requests without it).
    const summary = await whisperMiner(
      region,
      "whisper.translate",
      runner("whisper.translate", {}, { COORD_WHISPER_URL: plain.url, COORD_WHISPER_KEY: "sk-local" }),
    );
    expect(summary).toMatchObject({ completed: 1, failed: 0 });

    const done = await result(client.key, job.id);
    expect(v.safeParse(WhisperOutput, done.output).success).toBe(true);
    expect(done.output).toEqual({
      text: TRANSLATED.join(" "),
      language: "de",
      duration_s: 6,
      subtitles: [
        "1\n00:00:00,000 --> 00:00:02,000\nGood morning everyone.\n\n",
        "2\n00:00:02,000 --> 00:00:04,000\nThe train to Berlin leaves at eight.\n\n",
        "3\n00:00:04,000 --> 00:00:06,000\nPlease do not forget.\n\n",
      ].join(""),
    });
    expect(done.usage).toEqual({ audio_seconds: 6, segments: 3 });
    const sent = plain.requests.find((r) => r.file?.sha256 === sha256(AUDIO));
    expect(sent).toMatchObject({
      path: "/v1/audio/translations",
      authorization: "Bearer sk-local",
      fields: {
        model: ["large-v3"],
        response_format: ["verbose_json"],
        translate: ["true"],
        stream: ["true"],
      },
    });
    // Translations take no timestamp granularities (OpenAI's API has none for them).
    expect(sent?.fields).not.toHaveProperty("timestamp_granularities[]");
    expect(await progressMessages(client.key, job.id)).toContain("audio uploaded; transcribing");
  }, 45_000);

  it("audio the server cannot decode fails the job at once with unsupported_audio, not retried", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const bogus = new TextEncoder().encode("this is a text file, not audio");
    const audio = await upload(client.key, bogus, "audio/mpeg");
    const job = await submit(client.key, "whisper.transcribe", constraints, {
      audio_object: { artifact_id: audio },
    });
    const summary = await whisperMiner(
      region,
      "whisper.transcribe",
      runner("whisper.transcribe", {
        "whisper-url": streaming.url,
        "whisper-model": ["large-v3-turbo=Systran/faster-distil-whisper-large-v3"],
      }),
    );
    expect(summary).toMatchObject({ completed: 0, failed: 1 });
    const final = (await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key })).body;
    // Failed on its first attempt although three were allowed: the refusal is the audio's, another miner would fare no better.
    expect(final).toMatchObject({ status: "failed", attempt: 1 });
    expect(final.error).toMatchObject({
      code: "unsupported_audio",
      message: expect.stringContaining("Failed to decode audio"),
    });
    expect(streaming.requests.find((r) => r.file?.sha256 === sha256(bogus))?.path).toBe(
      "/v1/audio/transcriptions",
    );
  }, 45_000);

  it("coord miner run refuses to serve whisper.* without an audio server to forward to", async () => {
    const out = await minerRunWithoutServer("whisper.transcribe");
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("--whisper-url");
  });
});

import "./env.ts";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import type { LocalStack } from "../local/stack.ts";
import { call, Http } from "./lib/http.ts";
import * as instrument from "./lib/instrument.ts";
import { createAccount, fundedClient } from "./lib/setup.ts";
import { benchMain } from "./lib/stack.ts";
import { num, progress, table } from "./lib/stats.ts";

/**
 * `npx tsx bench/artifacts.ts [--jobs N] [--json FILE]`: what an artifact adds per job (issue 13). The same
 * `ffmpeg.transcode` job run one at a time two ways, on one in-process local stack:
 * - inline: the source is an https URL and the output names a link (no artifact anywhere);
 * - artifacts: the client uploads the source (POST /v1/uploads + PUT), the job references it, the miner downloads it
 *   and uploads its output through the claim's links, the result references the output, the client downloads it.
 * Per job: DynamoDB requests and write units (AWS billing, everything the job caused: API, stream, consumers) and
 * the coordinator's own S3 calls, side by side, and the difference; with the previous run's figures beside them
 * (bench/results/artifacts-previous.json; this run's go to artifacts-latest.json).
 */

interface Phase {
  jobs: number;
  ddbRequests: number;
  writeUnits: number;
  readUnits: number;
  s3Calls: Record<string, number>;
}

const s3Calls = new Map<string, number>();

/** Counts the coordinator's S3 commands (HEAD, GET...) by name: the gate's traffic is the clients' and miners'. */
function countS3(): void {
  const send = S3Client.prototype.send;
  S3Client.prototype.send = function (
    this: S3Client,
    command: { constructor: { name: string } },
    ...rest: unknown[]
  ) {
    const name = command.constructor.name.replace(/Command$/, "");
    s3Calls.set(name, (s3Calls.get(name) ?? 0) + 1);
    return (send as (...a: unknown[]) => Promise<unknown>).call(this, command, ...rest);
  } as typeof S3Client.prototype.send;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function runPhase(http: Http, stack: LocalStack, jobs: number, withArtifacts: boolean): Promise<Phase> {
  const client = await fundedClient(http, stack, 10_000_000_000);
  const minerAcct = await createAccount(http, stack, "miner");
  const region = `bench-${Math.random().toString(36).slice(2, 8)}`;
  const reg = await call(() =>
    http.post<{ miner_id: string }>(
      "/v1/miners/register",
      {
        name: `bench-${region}`,
        services: ["ffmpeg.transcode"],
        region,
        concurrency: 1,
        prices: { "ffmpeg.transcode": 10 },
        gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
        cuda_version: "12.4",
      },
      { key: minerAcct.key },
    ),
  );
  const miner = { key: minerAcct.key, headers: { "x-miner-id": reg.body.miner_id } };
  // Settle the stack's background work (registration events) before counting.
  await new Promise((r) => setTimeout(r, 1500));
  instrument.reset();
  s3Calls.clear();
  for (let i = 0; i < jobs; i++) {
    const bytes = randomBytes(64 * 1024);
    let source: unknown = "https://media.example.com/clip.mp4";
    if (withArtifacts) {
      const up = await call(() =>
        http.post<{ artifact_id: string; upload_url: string; upload_headers: Record<string, string> }>(
          "/v1/uploads",
          { content_type: "video/mp4", size: bytes.length, sha256: sha256(bytes) },
          { key: client.key },
        ),
      );
      const put = await fetch(up.body.upload_url, {
        method: "PUT",
        headers: up.body.upload_headers,
        body: bytes,
      });
      if (put.status !== 200) throw new Error(`upload PUT: ${put.status}`);
      source = { artifact_id: up.body.artifact_id };
    }
    const sub = await call(() =>
      http.post<{ id: string }>(
        "/v1/jobs",
        {
          service: "ffmpeg.transcode",
          input: { source, container: "mp4" },
          constraints: { regions: [region] },
          max_price: 1_000_000,
        },
        { key: client.key },
      ),
    );
    if (sub.status !== 201) throw new Error(`submit: ${sub.status} ${JSON.stringify(sub.body)}`);
    let job:
      | {
          job_id: string;
          claim_token: string;
          artifacts?: { inputs: { url: string }[]; outputs: { artifact_id: string; upload_url: string }[] };
        }
      | undefined;
    while (!job) {
      const polled = await http.post<{ jobs: NonNullable<typeof job>[] }>(
        "/v1/miners/poll",
        { wait_seconds: 5 },
        { key: miner.key, headers: miner.headers },
      );
      job = polled.status === 200 ? polled.body.jobs[0] : undefined;
    }
    let output: unknown = {
      file: { url: "https://media.example.com/out.mp4", sha256: sha256(bytes) },
      container: "mp4",
    };
    if (withArtifacts && job.artifacts) {
      const got = await fetch(job.artifacts.inputs[0]?.url as string);
      await got.arrayBuffer();
      const slot = job.artifacts.outputs[0] as { artifact_id: string; upload_url: string };
      const put = await fetch(slot.upload_url, {
        method: "PUT",
        headers: { "content-type": "video/mp4" },
        body: bytes,
      });
      if (put.status !== 200) throw new Error(`output PUT: ${put.status}`);
      output = { file: { artifact_id: slot.artifact_id }, container: "mp4" };
    }
    const done = await call(() =>
      http.post(
        `/v1/miners/${job.job_id}/result`,
        { claim_token: job.claim_token, output },
        {
          key: miner.key,
          headers: miner.headers,
        },
      ),
    );
    if (done.status !== 200) throw new Error(`result: ${done.status} ${JSON.stringify(done.body)}`);
    const result = await call(() =>
      http.get<{ artifacts: { download_url?: string }[] }>(`/v1/jobs/${job.job_id}/result`, {
        key: client.key,
      }),
    );
    if (withArtifacts) await (await fetch(result.body.artifacts[0]?.download_url as string)).arrayBuffer();
    progress(`${withArtifacts ? "artifacts" : "inline"}: ${i + 1}/${jobs}`);
  }
  // The stream and the consumers finish what the last job started.
  await new Promise((r) => setTimeout(r, 2500));
  const all = instrument.merge(Object.values(instrument.snapshot().buckets));
  return {
    jobs,
    ddbRequests: all.calls / jobs,
    writeUnits: all.write / jobs,
    readUnits: all.read / jobs,
    s3Calls: Object.fromEntries([...s3Calls].map(([k, n]) => [k, n / jobs])),
  };
}

interface Result {
  inline: Phase;
  artifacts: Phase;
}

const here = dirname(fileURLToPath(import.meta.url));
const previousFile = `${here}/results/artifacts-previous.json`;
const latestFile = `${here}/results/artifacts-latest.json`;

function print(r: Result): void {
  const prev = existsSync(previousFile)
    ? (JSON.parse(readFileSync(previousFile, "utf8")) as Result)
    : undefined;
  const s3 = (p: Phase | undefined) =>
    p
      ? Object.entries(p.s3Calls)
          .map(([k, n]) => `${k} ${num(n, 2)}`)
          .join(", ") || "none"
      : "-";
  const row = (name: string, get: (p: Phase) => number) => [
    name,
    num(get(r.inline), 2),
    num(get(r.artifacts), 2),
    num(get(r.artifacts) - get(r.inline), 2),
    prev ? num(get(prev.artifacts) - get(prev.inline), 2) : "-",
  ];
  console.log(
    `\nWhat one input artifact and one output artifact add to a job (${r.artifacts.jobs} jobs each, serial)\n`,
  );
  console.log(
    table(
      ["per job", "inline", "with artifacts", "added", "added, previous run"],
      [
        row("DynamoDB requests", (p) => p.ddbRequests),
        row("write units (AWS billing)", (p) => p.writeUnits),
        row("read units", (p) => p.readUnits),
        ["coordinator S3 calls", s3(r.inline), s3(r.artifacts), "", prev ? s3(prev.artifacts) : "-"],
      ],
    ),
  );
  mkdirSync(dirname(latestFile), { recursive: true });
  writeFileSync(latestFile, `${JSON.stringify(r, null, 2)}\n`);
}

benchMain(
  import.meta.url,
  "artifacts",
  async (stack, args) => {
    countS3();
    const jobs = Number(args.jobs ?? 20);
    const http = new Http(stack.url);
    try {
      const inline = await runPhase(http, stack, jobs, false);
      const artifacts = await runPhase(http, stack, jobs, true);
      return { inline, artifacts };
    } finally {
      http.close();
    }
  },
  print,
);

import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runMiner } from "../cli/miner/agent.ts";
import {
  api,
  coordInProcess,
  createAccount,
  eventually,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
} from "./fixture.ts";

/*
 * Artifacts on the real stack: uploads through presigned PUTs to the stack's S3 (fauxqs, behind the gate that checks
 * presigned URLs as S3 does), jobs that reference them, miners that download inputs and upload outputs through the
 * links their claim carries, and clients that download the exact bytes back. Most tests play the miner over HTTP;
 * the last runs the reference miner (cli/miner) with a stand-in executor.
 */

type Obj = Record<string, unknown>;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Upload {
  artifact_id: string;
  upload_url: string;
  upload_headers: Record<string, string>;
  status: string;
}

async function upload(key: string, bytes: Uint8Array, body: Obj = {}): Promise<Upload> {
  const res = await api<Upload>("POST", "/v1/uploads", {
    key,
    body: { content_type: "video/mp4", size: bytes.length, ...body },
  });
  expect(res.status, res.text).toBe(201);
  expect(res.body.status).toBe("awaiting_upload");
  return res.body;
}

const put = (u: Upload, bytes: Uint8Array, headers = u.upload_headers) =>
  fetch(u.upload_url, { method: "PUT", headers, body: bytes });

/** A GPU miner that runs ffmpeg jobs in its own region. */
async function ffmpegMiner(region: string) {
  return registeredMiner({
    services: ["ffmpeg.transcode"],
    region,
    prices: { "ffmpeg.transcode": 10 },
    gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
    cuda_version: "12.4",
  });
}

const transcode = (key: string, constraints: Obj, artifactId: string) =>
  api<Obj>("POST", "/v1/jobs", {
    key,
    body: {
      service: "ffmpeg.transcode",
      input: { source: { artifact_id: artifactId }, container: "mp4" },
      constraints,
      max_price: 1_000_000,
    },
  });

interface Links {
  inputs: { path: string; artifact_id: string; url: string }[];
  outputs: { artifact_id: string; upload_url: string }[];
  expires_at: string;
}

/** A transcode of an uploaded source of `size` bytes, claimed by an ffmpeg miner: the claim and its links. */
async function claimedTranscode(size: number) {
  const { region, constraints } = isolated();
  const client = await fundedClient();
  const bytes = randomBytes(size);
  const u = await upload(client.key, bytes);
  expect((await put(u, bytes)).status).toBe(200);
  expect((await transcode(client.key, constraints, u.artifact_id)).status).toBe(201);
  const miner = await ffmpegMiner(region);
  const claimed = await eventually(async () => (await pollJobs(miner, { wait_seconds: 1 })).jobs[0]);
  return { u, miner, claimed, links: (claimed as unknown as { artifacts: Links }).artifacts };
}

describe("artifacts", () => {
  it("a client uploads, a job references it, the miner downloads it and uploads its output, the client downloads the exact bytes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const source = randomBytes(100_000);
    const u = await upload(client.key, source, { sha256: sha256(source), filename: "clip.mp4" });
    expect((await put(u, source)).status).toBe(200);

    const job = await transcode(client.key, constraints, u.artifact_id);
    expect(job.status, job.text).toBe(201);
    const miner = await ffmpegMiner(region);
    const claimed = await eventually(async () => (await pollJobs(miner, { wait_seconds: 1 })).jobs[0]);
    const links = (claimed as unknown as { artifacts: Links }).artifacts;
    expect(links.inputs).toEqual([
      { path: "input.source", artifact_id: u.artifact_id, url: expect.any(String) },
    ]);
    expect(links.outputs).toHaveLength(1);
    expect(Date.parse(links.expires_at)).toBeLessThanOrEqual(Date.now() + 3_500);

    // The miner's side: the input through its presigned GET, the output through its presigned PUT.
    const got = new Uint8Array(await (await fetch(links.inputs[0]?.url as string)).arrayBuffer());
    expect(sha256(got)).toBe(sha256(source));
    const rendered = randomBytes(50_000);
    const out = links.outputs[0] as { artifact_id: string; upload_url: string };
    expect(
      (
        await fetch(out.upload_url, {
          method: "PUT",
          body: rendered,
          headers: { "content-type": "video/mp4" },
        })
      ).status,
    ).toBe(200);
    const result = await minerCall(miner, claimed.job_id, "result", {
      claim_token: claimed.claim_token,
      output: { file: { artifact_id: out.artifact_id, sha256: sha256(rendered) }, container: "mp4" },
    });
    expect(result.status, result.text).toBe(200);

    // The client's side: the result links the output; the download is the exact bytes.
    const res = await api<{ artifacts: Obj[] }>("GET", `/v1/jobs/${claimed.job_id}/result`, {
      key: client.key,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.artifacts).toEqual([
      expect.objectContaining({
        path: "output.file",
        artifact_id: out.artifact_id,
        status: "ready",
        role: "output",
        bytes: rendered.length,
        sha256: sha256(rendered),
        job_id: claimed.job_id,
      }),
    ]);
    const link = res.body.artifacts[0]?.download_url as string;
    const back = new Uint8Array(await (await fetch(link)).arrayBuffer());
    expect(sha256(back)).toBe(sha256(rendered));

    // The receipt covers both, by SHA-256.
    const receipt = await api<{ receipt: { artifacts: Obj[] } }>(
      "GET",
      `/v1/jobs/${claimed.job_id}/receipt`,
      {
        key: client.key,
      },
    );
    expect(receipt.body.receipt.artifacts).toEqual([
      expect.objectContaining({
        role: "input",
        artifact_id: u.artifact_id,
        sha256: sha256(source),
        bytes: source.length,
      }),
      expect.objectContaining({ role: "output", artifact_id: out.artifact_id, sha256: sha256(rendered) }),
    ]);
    const verdict = await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: receipt.body });
    expect(verdict.body).toMatchObject({ valid: true });

    // The uploaded input, read by its owner: measured, with a download.
    const meta = await api<Obj>("GET", `/v1/artifacts/${u.artifact_id}`, { key: client.key });
    expect(meta.body).toMatchObject({
      status: "ready",
      bytes: source.length,
      sha256: sha256(source),
      filename: "clip.mp4",
    });
  }, 30_000);

  it("another account reaches neither the upload nor the output: 404, and no link to them is handed out", async () => {
    const owner = await fundedClient();
    const other = await fundedClient();
    const bytes = randomBytes(1000);
    const u = await upload(owner.key, bytes);
    expect((await put(u, bytes)).status).toBe(200);
    const seen = await api<Obj>("GET", `/v1/artifacts/${u.artifact_id}`, { key: other.key });
    expect(seen.status).toBe(404);
    expect(seen.text).not.toContain("download_url");
    // Referencing it in a job is the same 422 as an artifact that does not exist.
    const { constraints } = isolated();
    const job = await transcode(other.key, constraints, u.artifact_id);
    expect(job.status).toBe(422);
    expect(job.body).toMatchObject({ errors: [{ path: "body.input.source" }] });
    expect(job.text).not.toContain("upload_url");
  });

  it("a job referencing a missing, foreign, not yet uploaded, oversized or refused artifact is 422 naming the field", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const missing = await transcode(client.key, constraints, `art_${"0".repeat(26)}`);
    expect(missing.status).toBe(422);
    expect(missing.body).toMatchObject({
      errors: [{ path: "body.input.source", message: expect.stringContaining("POST /v1/uploads") }],
    });

    const pending = await upload(client.key, randomBytes(10));
    const early = await transcode(client.key, constraints, pending.artifact_id);
    expect(early.status).toBe(422);
    expect(early.body).toMatchObject({
      errors: [{ path: "body.input.source", message: expect.stringContaining("not arrived") }],
    });

    // Larger than the service takes (whisper.transcribe: 1 KiB on the test stack).
    const audio = randomBytes(2000);
    const big = await upload(client.key, audio, { content_type: "audio/wav" });
    expect((await put(big, audio)).status).toBe(200);
    const oversized = await api<Obj>("POST", "/v1/jobs", {
      key: client.key,
      body: {
        service: "whisper.transcribe",
        input: { audio_object: { artifact_id: big.artifact_id } },
        constraints,
      },
    });
    expect(oversized.status).toBe(422);
    expect(oversized.body).toMatchObject({
      errors: [{ path: "body.input.audio_object", message: expect.stringContaining("at most 1024") }],
    });

    // A type the service does not take.
    const text = randomBytes(10);
    const doc = await upload(client.key, text, { content_type: "text/plain" });
    expect((await put(doc, text)).status).toBe(200);
    const wrongType = await transcode(client.key, constraints, doc.artifact_id);
    expect(wrongType.status).toBe(422);
    expect(wrongType.body).toMatchObject({
      errors: [{ path: "body.input.source", message: expect.stringContaining("text/plain") }],
    });

    // A declared SHA-256 the upload does not match: refused, its object gone, and so is any job referencing it.
    const bytes = randomBytes(64);
    const lying = await upload(client.key, bytes, { sha256: sha256(randomBytes(64)) });
    expect((await put(lying, bytes)).status).toBe(200);
    const refused = await transcode(client.key, constraints, lying.artifact_id);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({
      errors: [{ path: "body.input.source", message: expect.stringContaining("refused") }],
    });
    const meta = await api<Obj>("GET", `/v1/artifacts/${lying.artifact_id}`, { key: client.key });
    expect(meta.body).toMatchObject({
      status: "refused",
      refused_reason: expect.stringContaining("SHA-256"),
    });
    expect(meta.body.download_url).toBeUndefined();
  });

  it("an upload of another size or type than the one signed is refused by storage", async () => {
    const client = await fundedClient();
    const bytes = randomBytes(100);
    const u = await upload(client.key, bytes);
    expect((await put(u, randomBytes(101), { ...u.upload_headers, "content-length": "101" })).status).toBe(
      403,
    );
    expect((await put(u, bytes, { ...u.upload_headers, "content-type": "video/webm" })).status).toBe(403);
    expect((await put(u, bytes)).status).toBe(200);
  });

  it("bad upload requests are 422 naming the field", async () => {
    const client = await fundedClient();
    for (const [body, path] of [
      [{ size: 10 }, "body.content_type"],
      [{ content_type: "video/mp4" }, "body.size"],
      [{ content_type: "not a type", size: 10 }, "body.content_type"],
      [{ content_type: "video/mp4", size: 0 }, "body.size"],
      [{ content_type: "video/mp4", size: 1.5 }, "body.size"],
      [{ content_type: "video/mp4", size: 10 ** 13 }, "body.size"],
      [{ content_type: "video/mp4", size: 10, sha256: "abc" }, "body.sha256"],
      [{ content_type: "video/mp4", size: 10, filename: "a/b" }, "body.filename"],
      [{ content_type: "video/mp4", size: 10, bucket: "x" }, "body"],
    ] as const) {
      const res = await api<Obj>("POST", "/v1/uploads", { key: client.key, body });
      expect(res.status, `${JSON.stringify(body)}: ${res.text}`).toBe(422);
      expect(JSON.stringify(res.body.errors)).toContain(path);
    }
    const miner = await createAccount("miner");
    const asMiner = await api<Obj>("POST", "/v1/uploads", {
      key: miner.key,
      body: { content_type: "video/mp4", size: 1 },
    });
    expect(asMiner.status).toBe(403);
  });

  it("a miner's links stop working at the lease's end; the holder gets fresh ones, a stale claim gets none", async () => {
    const { u, miner, claimed, links } = await claimedTranscode(5000);
    const url = links.inputs[0]?.url as string;
    expect((await fetch(url)).status).toBe(200);

    // Fresh links for the holder, from its claim token.
    const fresh = await api<Links>("POST", `/v1/miners/${claimed.job_id}/artifacts`, {
      key: miner.key,
      headers: miner.headers,
      body: { claim_token: claimed.claim_token },
    });
    expect(fresh.status, fresh.text).toBe(200);
    expect(fresh.body.inputs[0]?.artifact_id).toBe(u.artifact_id);
    expect(fresh.body.outputs.map((o) => o.artifact_id)).toEqual(links.outputs.map((o) => o.artifact_id));

    // Past the lease (3 s on the test stack, no heartbeat): the URL answers 403, and the claim is stale.
    await new Promise((r) => setTimeout(r, Date.parse(links.expires_at) - Date.now() + 1500));
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain("expired");
    const stale = await eventually(async () => {
      const res = await api<Obj>("POST", `/v1/miners/${claimed.job_id}/artifacts`, {
        key: miner.key,
        headers: miner.headers,
        body: { claim_token: claimed.claim_token },
      });
      return res.status === 409 ? res : undefined;
    }, 15_000);
    expect(stale.body).toMatchObject({ code: "stale_claim" });
    expect(stale.text).not.toContain("X-Amz-Signature");
  }, 40_000);

  it("a result naming an output that is not this claim's, or was not uploaded, is 422 and the job stays held", async () => {
    const { u, miner, claimed, links } = await claimedTranscode(100);
    const report = (output: Obj) =>
      minerCall(miner, claimed.job_id, "result", { claim_token: claimed.claim_token, output });

    const foreign = await report({ file: { artifact_id: u.artifact_id }, container: "mp4" });
    expect(foreign.status).toBe(422);
    expect(foreign.body).toMatchObject({ errors: [{ path: "body.output.file" }] });
    const notUploaded = await report({
      file: { artifact_id: links.outputs[0]?.artifact_id },
      container: "mp4",
    });
    expect(notUploaded.status).toBe(422);
    expect(notUploaded.text).toContain("nothing was uploaded");

    const rendered = randomBytes(10);
    expect(
      (await fetch(links.outputs[0]?.upload_url as string, { method: "PUT", body: rendered })).status,
    ).toBe(200);
    const wrongHash = await report({
      file: { artifact_id: links.outputs[0]?.artifact_id, sha256: sha256(randomBytes(10)) },
      container: "mp4",
    });
    expect(wrongHash.status).toBe(422);
    expect(wrongHash.body).toMatchObject({ errors: [{ path: "body.output.file.sha256" }] });
    // Still held: the right result is taken.
    const ok = await report({ file: { artifact_id: links.outputs[0]?.artifact_id }, container: "mp4" });
    expect(ok.status, ok.text).toBe(200);
  }, 30_000);
});

describe("the reference miner", () => {
  it("downloads a job's input artifact through its presigned link and uploads its output; the client gets the exact bytes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const source = randomBytes(20_000);
    const u = await upload(client.key, source);
    expect((await put(u, source)).status).toBe(200);
    const job = await transcode(client.key, constraints, u.artifact_id);
    expect(job.status, job.text).toBe(201);

    // An ffmpeg stand-in executor (the real runner is the SDK issue's): it reverses the bytes it downloaded.
    const reversed = Uint8Array.from(source).reverse();
    const controller = new AbortController();
    const minerAccount = await createAccount("miner");
    const done = runMiner({
      url: stack.url,
      key: minerAccount.key,
      name: `ref-${Math.random().toString(36).slice(2, 10)}`,
      services: ["ffmpeg.transcode"],
      region,
      gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
      prices: { "ffmpeg.transcode": 10 },
      registration: { cuda_version: "12.4" },
      maxJobs: 1,
      signal: controller.signal,
      log: () => {},
      executors: {
        "ffmpeg.transcode": async (ctx) => {
          expect(ctx.artifacts.inputs).toEqual(["input.source"]);
          const bytes = await ctx.artifacts.download("input.source");
          const out = await ctx.artifacts.upload(Uint8Array.from(bytes).reverse(), "video/mp4");
          return { file: out, container: "mp4" };
        },
      },
    });
    const summary = await done;
    expect(summary.completed).toBe(1);
    const res = await api<{ status: string; artifacts: Obj[] }>("GET", `/v1/jobs/${job.body.id}/result`, {
      key: client.key,
    });
    expect(res.body.status).toBe("completed");
    expect(res.body.artifacts[0]).toMatchObject({ sha256: sha256(reversed), bytes: reversed.length });
    const back = new Uint8Array(
      await (await fetch(res.body.artifacts[0]?.download_url as string)).arrayBuffer(),
    );
    expect(sha256(back)).toBe(sha256(reversed));
  }, 30_000);
});

describe("coord upload / coord download", () => {
  it("upload a file as an artifact and download it back, the bytes checked against its SHA-256", async () => {
    const client = await fundedClient();
    const dir = mkdtempSync(join(tmpdir(), "coord-upload-"));
    try {
      const file = join(dir, "talk.wav");
      const bytes = randomBytes(4096);
      writeFileSync(file, bytes);
      const coord = (args: string[]) => coordInProcess(args, { COORD_API_KEY: client.key });
      const up = await coord(["upload", file, "--json"]);
      expect(up.code, up.stderr).toBe(0);
      const uploaded = JSON.parse(up.stdout) as { artifact_id: string; content_type: string; sha256: string };
      expect(uploaded).toMatchObject({ content_type: "audio/wav", sha256: sha256(bytes) });
      const target = join(dir, "back.wav");
      const down = await coord(["download", uploaded.artifact_id, "-o", target]);
      expect(down.code, down.stderr).toBe(0);
      expect(sha256(readFileSync(target))).toBe(sha256(bytes));
      const unknown = await coord(["upload", join(dir, "missing.xyz")]);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toContain("cannot read");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

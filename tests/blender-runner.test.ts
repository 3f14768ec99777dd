import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  api,
  coordInProcess,
  createAccount,
  eventually,
  fundedClient,
  isolated,
  uploadArtifact,
} from "./fixture.ts";
import { readPng } from "./png.ts";
import { alive, coordProcess, killAllAnd } from "./processes.ts";

/*
 * The reference miner's blender runner end to end: a real `coord miner run` process renders with a STAND-IN for
 * Blender (tests/blender-stand-in.mjs: Blender's command line, log lines and output files, real PNGs; real Blender
 * cannot be installed here), against the real local stack. The client downloads the frames and the archive
 * through the result's links and checks they are the PNGs asked for.
 */

const standIn = fileURLToPath(new URL("./blender-stand-in.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "coord-blender-test-"));
/** Stand-in renders a failed test may leave behind (the miners are killAll's): killed by pid at the end. */
const leftovers = new Set<number>();
afterAll(async () => {
  await killAllAnd(leftovers);
  rmSync(dir, { recursive: true, force: true });
});

type Job = {
  id: string;
  status: string;
  error?: { code: string; message: string; retryable: boolean } | null;
};
type Uploaded = { artifact_id: string; sha256: string; bytes: number; content_type: string };

/** `coord miner run` with the blender runner on the stand-in; it logs each of its runs to `log`. */
function blenderMiner(region: string, key: string, log: string, extra: string[] = []) {
  return coordProcess(
    [
      ...["miner", "run"],
      ...["--name", `blender-${region}`, "--services", "blender.render", "--region", region],
      ...["--gpu", "RTX 4090:24576", "--cuda-version", "12.4", "--price", "blender.render=10"],
      ...["--blender-bin", standIn, "--max-jobs", "1", ...extra],
    ],
    { key, env: { BLENDER_STAND_IN_LOG: log }, timeoutMs: 80_000 },
  );
}

/** Uploads a stand-in scene: a .blend header, then the stand-in's directives (its stored render settings). */
async function uploadScene(key: string, body: string | Record<string, unknown>): Promise<string> {
  const bytes = new TextEncoder().encode(
    typeof body === "string" ? body : `BLENDER-v402${JSON.stringify(body)}`,
  );
  return uploadArtifact(key, bytes, "application/x-blender", "scene.blend");
}

async function submit(key: string, constraints: Record<string, unknown>, input: Record<string, unknown>) {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: { service: "blender.render", input, constraints, max_price: 10_000_000 },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The stand-in's runs so far: each one's pid and command line. */
function runs(log: string): { pid: number; argv: string[] }[] {
  try {
    return readFileSync(log, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { pid: number; argv: string[] });
  } catch {
    return [];
  }
}

/** A ustar archive's files (magic checked). */
function untar(bytes: Uint8Array): Map<string, Uint8Array> {
  const text = (b: Uint8Array) => new TextDecoder().decode(b).replace(/\0.*$/s, "");
  const files = new Map<string, Uint8Array>();
  for (let at = 0; at + 512 <= bytes.length; ) {
    const header = bytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    expect(text(header.subarray(257, 263))).toBe("ustar");
    const size = Number.parseInt(text(header.subarray(124, 136)), 8);
    files.set(text(header.subarray(0, 100)), bytes.slice(at + 512, at + 512 + size));
    at += 512 * (1 + Math.ceil(size / 512));
  }
  return files;
}

const download = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("the blender runner", () => {
  it("renders the frame range in a real coord miner process; the client downloads each frame and the archive, valid PNGs of the size asked", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const scene = await uploadScene(client.key, { width: 64, height: 48, samples: 8, sample_ms: 20 });
    const job = await submit(client.key, constraints, {
      scene: { artifact_id: scene },
      frame_start: 1,
      frame_end: 5,
      frame_step: 2,
      width: 40,
      height: 30,
      samples: 4,
    });
    const log = join(dir, "render.log");
    const miner = await createAccount("miner");
    const exit = await blenderMiner(region, miner.key, log, ["--blender-device", "optix"]).finished;
    expect(exit.code, exit.stderr).toBe(0);

    const result = await api<{
      status: string;
      output: {
        frames_rendered: number;
        frames: (Uploaded & { frame: number })[];
        archive: Uploaded;
        engine: string;
        device: string;
      };
      artifacts: { path: string; artifact_id: string; download_url: string }[];
    }>("GET", `/v1/jobs/${job.id}/result`, { key: client.key });
    expect(result.body.status, JSON.stringify(result.body)).toBe("completed");
    const { output } = result.body;
    expect(output).toMatchObject({ frames_rendered: 3, engine: "cycles", device: "OPTIX" });
    expect(output.frames.map((f) => f.frame)).toEqual([1, 3, 5]);

    // Each frame through its link: the bytes the output names, a PNG at the resolution the input asked for.
    const frames = new Map<number, Uint8Array>();
    for (const [i, frame] of output.frames.entries()) {
      const link = result.body.artifacts.find((a) => a.path === `output.frames.${i}`);
      expect(link?.artifact_id).toBe(frame.artifact_id);
      const bytes = await download(link?.download_url as string);
      expect(frame).toMatchObject({ content_type: "image/png", bytes: bytes.length, sha256: sha256(bytes) });
      expect(readPng(bytes)).toEqual({ width: 40, height: 30 });
      frames.set(frame.frame, bytes);
    }
    // Frames differ (the stand-in tints each by its number): three renders, not one uploaded three times.
    expect(new Set([...frames.values()].map(sha256)).size).toBe(3);
    // The archive holds the same three frames.
    const archiveLink = result.body.artifacts.find((a) => a.path === "output.archive");
    const archive = await download(archiveLink?.download_url as string);
    expect(output.archive).toMatchObject({ content_type: "application/x-tar", sha256: sha256(archive) });
    const files = untar(archive);
    expect([...files.keys()]).toEqual(["frame_00001.png", "frame_00003.png", "frame_00005.png"]);
    for (const [frame, bytes] of frames)
      expect(sha256(files.get(`frame_${String(frame).padStart(5, "0")}.png`) as Uint8Array)).toBe(
        sha256(bytes),
      );

    // Blender's progress lines became the job's progress.
    const events = await api<{ events: { type: string; data?: { progress?: number } }[] }>(
      "GET",
      `/v1/jobs/${job.id}/events`,
      { key: client.key },
    );
    const progress = events.body.events.filter((e) => e.type === "job.progress.v1");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => (e.data?.progress ?? 1) < 1)).toBe(true);

    // What Blender was asked: one run for the range, Cycles on the device named, scripts in the scene disabled.
    const render = runs(log).find((r) => r.argv.includes("-b"));
    expect(render?.argv).toEqual(expect.arrayContaining(["-Y", "-E", "CYCLES", "-F", "PNG", "-a"]));
    expect(render?.argv.slice(render.argv.indexOf("--"))).toEqual(["--", "--cycles-device", "OPTIX"]);
    expect(runs(log).filter((r) => r.argv.includes("-b"))).toHaveLength(1);
  }, 90_000);

  it("a cancelled render kills Blender; the job never completes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    // A minute a sample: this render only ends by being stopped.
    const scene = await uploadScene(client.key, { samples: 100, sample_ms: 60_000 });
    const job = await submit(client.key, constraints, {
      scene: { artifact_id: scene },
      frame_start: 1,
      frame_end: 1,
    });
    const log = join(dir, "cancel.log");
    const miner = await createAccount("miner");
    const running = blenderMiner(region, miner.key, log);
    const render = await eventually(async () => runs(log).find((r) => r.argv.includes("-b")), 30_000);
    leftovers.add(render.pid);
    expect(alive(render.pid)).toBe(true);
    await eventually(async () => {
      const res = await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key });
      return res.body.status === "running" || res.body.status === "assigned";
    }, 15_000);

    const cancel = await api<Job>("POST", `/v1/jobs/${job.id}/cancel`, { key: client.key, body: {} });
    expect(cancel.status, cancel.text).toBe(200);
    await eventually(async () => !alive(render.pid), 20_000);
    const exit = await running.finished;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain("job.abandoned");
    const events = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${job.id}/events`, {
      key: client.key,
    });
    expect(events.body.events.map((e) => e.type)).toContain("job.cancelled.v1");
    expect(events.body.events.map((e) => e.type)).not.toContain("job.completed.v1");
  }, 90_000);

  it("a scene Blender cannot read fails the job with render_failed and Blender's own message", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const scene = await uploadScene(client.key, "this is not a .blend file");
    const job = await submit(client.key, constraints, {
      scene: { artifact_id: scene },
      frame_start: 1,
      frame_end: 2,
    });
    const miner = await createAccount("miner");
    const exit = await blenderMiner(region, miner.key, join(dir, "unreadable.log")).finished;
    expect(exit.code, exit.stderr).toBe(0);
    const done = await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key });
    expect(done.body).toMatchObject({ status: "failed" });
    expect(done.body.error).toMatchObject({ code: "render_failed", retryable: false });
    expect(done.body.error?.message).toContain("File format is not supported");
  }, 90_000);

  it("coord miner run refuses to serve blender.render when Blender cannot be run", async () => {
    const account = await createAccount("miner");
    const out = await coordInProcess(
      ["miner", "run", "--services", "blender.render", "--blender-bin", join(dir, "no-blender"), "--once"],
      { COORD_API_KEY: account.key },
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("--blender-bin");
  });
});

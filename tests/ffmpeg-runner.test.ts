import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { probe } from "../cli/miner/runners/ffmpeg.ts";
import { api, createAccount, fundedClient, isolated } from "./fixture.ts";
import { coordProcess, killAll } from "./processes.ts";

/*
 * The reference miner's ffmpeg runner end to end, with this machine's real ffmpeg (.ci/run installs it from
 * Debian): a clip ffmpeg itself generates is uploaded, a real `coord miner run` process transcodes it, and the
 * output the client downloads is probed with ffprobe.
 */

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "coord-ffmpeg-test-"));
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

/** A 2 s 320x240 test pattern with a 440 Hz tone, made by ffmpeg. */
async function clip(): Promise<Uint8Array> {
  const file = join(dir, "clip.mp4");
  await run("ffmpeg", [
    ...["-hide_banner", "-v", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:duration=2"],
    ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", file],
  ]);
  return new Uint8Array(readFileSync(file));
}

/** `coord miner run` as a child process, until it exits (killed after a minute if it does not). */
const coordMiner = (args: string[], key: string) =>
  coordProcess(["miner", "run", ...args], { key, timeoutMs: 60_000 }).finished;

describe("the ffmpeg runner", () => {
  it("transcodes an uploaded clip in a real coord miner process; the client downloads an output ffprobe reads as asked", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const source = await clip();
    const up = await api<{ artifact_id: string; upload_url: string; upload_headers: Record<string, string> }>(
      "POST",
      "/v1/uploads",
      { key: client.key, body: { content_type: "video/mp4", size: source.length, filename: "clip.mp4" } },
    );
    expect(up.status, up.text).toBe(201);
    expect(
      (await fetch(up.body.upload_url, { method: "PUT", headers: up.body.upload_headers, body: source }))
        .status,
    ).toBe(200);
    const job = await api<{ id: string }>("POST", "/v1/jobs", {
      key: client.key,
      body: {
        service: "ffmpeg.transcode",
        input: {
          source: { artifact_id: up.body.artifact_id },
          container: "mp4",
          width: 160,
          audio_channels: 1,
        },
        constraints,
        max_price: 1_000_000,
      },
    });
    expect(job.status, job.text).toBe(201);

    const miner = await createAccount("miner");
    const exit = await coordMiner(
      [
        ...["--name", `ffmpeg-${region}`, "--services", "ffmpeg.transcode", "--region", region],
        ...[
          "--gpu",
          "RTX 4090:24576",
          "--cuda-version",
          "12.4",
          "--price",
          "ffmpeg.transcode=10",
          "--max-jobs",
          "1",
        ],
      ],
      miner.key,
    );
    expect(exit.code, exit.stderr).toBe(0);

    const result = await api<{
      status: string;
      output: Record<string, unknown>;
      artifacts: { download_url: string }[];
    }>("GET", `/v1/jobs/${job.body.id}/result`, { key: client.key });
    expect(result.body.status, JSON.stringify(result.body)).toBe("completed");
    expect(result.body.output).toMatchObject({
      container: "mp4",
      video: { codec: "h264", width: 160, height: 120 },
      audio: { codec: "aac", channels: 1 },
    });
    const out = join(dir, "out.mp4");
    writeFileSync(
      out,
      new Uint8Array(await (await fetch(result.body.artifacts[0]?.download_url as string)).arrayBuffer()),
    );
    const probed = await probe(out);
    expect(probed).toMatchObject({
      video: { codec: "h264", width: 160, height: 120 },
      audio: { codec: "aac", channels: 1 },
    });
    expect(probed.duration_s).toBeGreaterThan(1.8);
    expect(probed.duration_s).toBeLessThan(2.3);
  }, 90_000);
});

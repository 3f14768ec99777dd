import { describe, expect, it } from "vitest";
import { api, fundedClient, isolated, minerCall, pollJobs, registeredMiner, submitEcho } from "./fixture.ts";

type Beat = {
  stop: { job_id: string; claim_token: string; reason: string }[];
  held: { job_id: string; claim_token: string }[];
  lease_expires_at: string;
};

describe("leases are the miner's", () => {
  it("a heartbeat with an empty body renews the miner's leases and names a cancelled job's token", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, concurrency: 2 });
    const kept = await submitEcho(client, { constraints });
    const doomed = await submitEcho(client, { constraints });
    const claimed = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    expect(claimed).toHaveLength(2);
    const token = (id: string) => claimed.find((j) => j.job_id === id)?.claim_token;
    expect((await api("POST", `/v1/jobs/${doomed.body.id}/cancel`, { key: client.key })).status).toBe(200);
    const beat = await api<Beat>("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {},
    });
    expect(beat.status).toBe(200);
    expect(beat.body.stop).toEqual([
      { job_id: doomed.body.id, claim_token: token(doomed.body.id), reason: "cancelled" },
    ]);
    expect(beat.body.held).toEqual([{ job_id: kept.body.id, claim_token: token(kept.body.id) }]);
    // A stop order is given once; the next heartbeat has nothing to stop.
    const next = await api<Beat>("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {},
    });
    expect(next.body.stop).toEqual([]);
  });

  it("a miner heartbeating {} every second keeps its job well past the lease length, then completes it", async () => {
    // The test stack's lease is 3 s: hold the job for 7.
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    expect(job?.job_id).toBe(sub.body.id);
    for (let i = 0; i < 7; i++) {
      const beat = await api<Beat>("POST", "/v1/miners/heartbeat", {
        key: miner.key,
        headers: miner.headers,
        body: {},
      });
      expect(beat.body.stop).toEqual([]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const seen = await api<{ status: string; attempt: number }>("GET", `/v1/jobs/${sub.body.id}`, {
      key: client.key,
    });
    expect(seen.body).toMatchObject({ status: "assigned", attempt: 1 });
    const done = await minerCall(miner, sub.body.id, "result", {
      claim_token: job?.claim_token,
      output: { ok: 1 },
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "completed" });
  });

  it("a miner that stops heartbeating loses its job after the lease, and learns why at its next heartbeat", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints, max_attempts: 2 });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    let back: { status: string; attempt: number } | undefined;
    for (let i = 0; i < 40 && back?.status !== "queued"; i++) {
      await new Promise((r) => setTimeout(r, 250));
      back = (
        await api<{ status: string; attempt: number }>("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })
      ).body;
    }
    expect(back).toMatchObject({ status: "queued", attempt: 1 });
    const beat = await api<Beat>("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {},
    });
    expect(beat.body.stop).toEqual([
      { job_id: sub.body.id, claim_token: job?.claim_token, reason: "lease_lost" },
    ]);
    expect(beat.body.held).toEqual([]);
  });
});

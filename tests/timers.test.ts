import { describe, expect, it } from "vitest";
import { fireTimer } from "../core/jobs/timers.ts";
import { api, fundedClient, isolated, pollJobs, registeredMiner, submitEcho } from "./fixture.ts";

describe("job timers", () => {
  it("a lease timer that fires early asks to fire again at the lease's end; fired late, it requeues the job", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    const timer = { job_id: sub.body.id, phase: "lease" as const, attempt: 1 };
    // Renew the lease first, so the 3 s test lease cannot lapse (and the sweep act) before the timer fires.
    await api("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: { jobs: [{ job_id: sub.body.id, claim_token: job?.claim_token }] },
    });
    const early = await fireTimer(timer);
    expect(early).toHaveProperty("fireAgainAt");
    const late = await fireTimer(timer, new Date(Date.now() + 60_000));
    expect(late).toEqual({ done: "requeued" });
    expect((await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body).toMatchObject({
      status: "queued",
      attempt: 1,
    });
    // The chain of attempt 1 ends once the job has moved on.
    expect(await fireTimer(timer, new Date(Date.now() + 120_000))).toEqual({ done: "moved_on" });
    expect(job?.attempt).toBe(1);
  });

  it("a queue timer expires a job nobody claimed by its TTL", async () => {
    const { constraints } = isolated();
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints, ttl_seconds: 600 });
    const timer = { job_id: sub.body.id, phase: "queue" as const, attempt: 0 };
    expect(await fireTimer(timer)).toHaveProperty("fireAgainAt");
    expect(await fireTimer(timer, new Date(Date.now() + 601_000))).toEqual({ done: "expired" });
    expect((await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body).toMatchObject({
      status: "expired",
    });
  });
});

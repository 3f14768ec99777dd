import { describe, expect, it } from "vitest";
import { sweep } from "../core/jobs/lifecycle.ts";
import { getJob } from "../core/jobs/store.ts";
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

describe("the deadline index", () => {
  it("files a new job for an early look, a claim leaves the entry, and a sweep that finds nothing due re-files it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const claimed = await submitEcho(client, { constraints, ttl_seconds: 600 });
    const waiting = await submitEcho(client, { constraints, ttl_seconds: 600 });
    const claimedAtSubmit = await getJob(claimed.body.id);
    const submitted = await getJob(waiting.body.id);
    // The early look: the lease (3 s in the tests) after submit, well before the 600 s queue deadline.
    expect(Date.parse(submitted?.sweepAt ?? "")).toBeLessThanOrEqual(
      Date.parse(submitted?.createdAt ?? "") + 3000,
    );
    expect(Date.parse(submitted?.queueDeadline ?? "") - Date.parse(submitted?.createdAt ?? "")).toBe(600_000);

    const miner = await registeredMiner({ region, concurrency: 1 });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    expect(job?.job_id).toBe(claimed.body.id);
    const before = await getJob(claimed.body.id);
    expect(before?.status).toBe("assigned");
    // The claim's lease and execution deadline are later than the early look: the index entry did not move.
    expect(before?.sweepAt).toBe(claimedAtSubmit?.sweepAt);
    expect(before?.sweepAt && before.leaseExpiresAt && before.sweepAt <= before.leaseExpiresAt).toBe(true);

    // Past the early look, the sweep (this one, or the stack's own) finds the queued job with nothing due and files
    // it at its queue deadline; the job is untouched otherwise.
    await new Promise((r) =>
      setTimeout(r, Math.max(0, Date.parse(submitted?.sweepAt ?? "") - Date.now()) + 200),
    );
    await sweep();
    const after = await getJob(waiting.body.id);
    expect(after).toMatchObject({ status: "queued", version: 1, sweepAt: submitted?.queueDeadline });
  });
});

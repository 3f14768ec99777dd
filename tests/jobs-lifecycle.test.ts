import { describe, expect, it } from "vitest";
import {
  api,
  eventually,
  fundedClient,
  getItem,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  submitEcho,
} from "./fixture.ts";

describe("a job's life", () => {
  it("the happy path: submit, claim, start, progress, result, with events, result and money", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, prices: { echo: 7 } });
    const sub = await submitEcho(client, { constraints, input: { hello: "world", n: 1 } });
    expect(sub.status).toBe(201);
    expect(sub.body).toMatchObject({ status: "queued", service: "echo", attempt: 0 });

    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    expect(jobs).toHaveLength(1);
    const [job] = jobs;
    expect(job).toMatchObject({
      job_id: sub.body.id,
      service: "echo",
      input: { hello: "world", n: 1 },
      attempt: 1,
    });
    expect(job?.claim_token).toMatch(/^ct_/);

    expect((await minerCall(miner, sub.body.id, "start", { claim_token: job?.claim_token })).status).toBe(
      200,
    );
    const prog = await minerCall(miner, sub.body.id, "progress", {
      claim_token: job?.claim_token,
      progress: 0.5,
      message: "half",
    });
    expect(prog.body).toMatchObject({ status: "running", progress: 0.5 });
    expect((await api("GET", `/v1/jobs/${sub.body.id}/result`, { key: client.key })).status).toBe(425);
    const done = await minerCall(miner, sub.body.id, "result", {
      claim_token: job?.claim_token,
      output: { hello: "world", n: 1 },
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "completed", units: 1, price: 7 });

    const result = await api("GET", `/v1/jobs/${sub.body.id}/result`, { key: client.key });
    expect(result.body).toMatchObject({ status: "completed", output: { hello: "world", n: 1 }, price: 7 });
    const events = await api<{ events: { type: string; seq: number }[] }>(
      "GET",
      `/v1/jobs/${sub.body.id}/events`,
      { key: client.key },
    );
    expect(events.body.events.map((e) => e.type)).toEqual([
      "job.submitted.v1",
      "job.assigned.v1",
      "job.started.v1",
      "job.progress.v1",
      "job.completed.v1",
    ]);
    const account = await api<{ balance: { available: number; held: number } }>("GET", "/v1/account", {
      key: client.key,
    });
    expect(account.body.balance).toEqual({ available: 1_000_000_000 - 7, held: 0 });
    const earned = await api<{ balance: { available: number } }>("GET", "/v1/account", { key: miner.key });
    expect(earned.body.balance.available).toBe(7);
  });

  it("a start is one update of the job: its event is in the history at once, and filed once, under one id, by the next transition", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    const token = job?.claim_token;
    const history = async () =>
      (
        await api<{ events: { type: string; seq: number; id: string; data: Record<string, unknown> }[] }>(
          "GET",
          `/v1/jobs/${sub.body.id}/events`,
          { key: client.key },
        )
      ).body.events;

    const start = await minerCall(miner, sub.body.id, "start", { claim_token: token });
    expect(start.body).toMatchObject({ status: "running" });
    // No outbox item was written: the job item carries the event until its next transaction.
    expect(await getItem(`JOB#${sub.body.id}`, "EVT#0000000003")).toBeUndefined();
    const before = await history();
    expect(before.map((e) => [e.type, e.seq])).toEqual([
      ["job.submitted.v1", 1],
      ["job.assigned.v1", 2],
      ["job.started.v1", 3],
    ]);
    expect(before[2]?.data).toMatchObject({ job_id: sub.body.id, status: "running", miner_id: miner.id });
    // A repeated start changes nothing (same version, one started event).
    const again = await minerCall(miner, sub.body.id, "start", { claim_token: token });
    expect(again.status).toBe(200);
    expect(await history()).toHaveLength(3);

    await minerCall(miner, sub.body.id, "result", { claim_token: token, output: { ok: true } });
    const after = await history();
    expect(after.map((e) => e.type)).toEqual([
      "job.submitted.v1",
      "job.assigned.v1",
      "job.started.v1",
      "job.completed.v1",
    ]);
    expect(after[2]?.id).toBe(before[2]?.id);
    expect(await getItem(`JOB#${sub.body.id}`, "EVT#0000000003")).toMatchObject({
      type: "job.started.v1",
      eventId: before[2]?.id,
      relayed: true,
    });
    expect((await getItem(`JOB#${sub.body.id}`, "JOB"))?.startSeq).toBeUndefined();
  });

  it("a start with another miner's id, a wrong token or on a queued job changes nothing", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const other = await registeredMiner({ region });
    const queued = await submitEcho(client, { constraints: { regions: [`${region}-nobody`] } });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    const token = job?.claim_token;
    // A stranger's miner (another account) learns nothing: 404, as for a job that does not exist.
    expect((await minerCall(other, sub.body.id, "start", { claim_token: token })).status).toBe(404);
    expect((await minerCall(miner, sub.body.id, "start", { claim_token: "ct_wrong" })).body).toMatchObject({
      code: "stale_claim",
    });
    expect((await minerCall(miner, queued.body.id, "start", { claim_token: token })).status).toBe(404);
    const stored = await getItem(`JOB#${sub.body.id}`, "JOB");
    expect(stored).toMatchObject({ status: "assigned", version: 2 });
    expect(stored?.startSeq).toBeUndefined();
  });

  it("a poll with nothing to match returns 204 with a retry hint", async () => {
    const { region } = isolated();
    const miner = await registeredMiner({ region });
    const { status, res } = await pollJobs(miner);
    expect(status).toBe(204);
    expect(Number(res.headers.get("retry-after-ms"))).toBeGreaterThan(0);
  });

  it("a job submitted while a poll waits is delivered to it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const waiting = pollJobs(miner, { wait_seconds: 10 });
    await new Promise((r) => setTimeout(r, 300));
    const sub = await submitEcho(client, { constraints });
    const { jobs } = await waiting;
    expect(jobs.map((j) => j.job_id)).toEqual([sub.body.id]);
  });

  it("50 concurrent polls for one job: exactly one winner", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miners = await Promise.all(
      Array.from({ length: 10 }, () => registeredMiner({ region, concurrency: 5 })),
    );
    const sub = await submitEcho(client, { constraints });
    const polls = await Promise.all(
      Array.from({ length: 50 }, (_, i) => pollJobs(miners[i % 10] as (typeof miners)[number])),
    );
    const winners = polls.flatMap((p) => p.jobs);
    // Each attempt has exactly one winner. (On a loaded machine the 50 polls can outlast the 3 s test lease, so
    // the job may come back for attempt 2: that is a second, separate claim, never a shared one.)
    expect(winners.filter((w) => w.attempt === 1)).toHaveLength(1);
    expect(new Set(winners.map((w) => w.attempt)).size).toBe(winners.length);
    expect(new Set(winners.map((w) => w.claim_token)).size).toBe(winners.length);
    expect(winners.every((w) => w.job_id === sub.body.id)).toBe(true);
  });

  it("a miner never holds more jobs than its concurrency", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, concurrency: 2 });
    for (let i = 0; i < 4; i++) await submitEcho(client, { constraints });
    const polls = await Promise.all(Array.from({ length: 6 }, () => pollJobs(miner, { wait_seconds: 1 })));
    expect(polls.flatMap((p) => p.jobs)).toHaveLength(2);
    expect((await pollJobs(miner)).status).toBe(204);
  });

  it("higher priority is claimed first", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const low = await submitEcho(client, { constraints, priority: 1 });
    const high = await submitEcho(client, { constraints, priority: 9 });
    const miner = await registeredMiner({ region });
    const { jobs } = await pollJobs(miner, { wait_seconds: 3 });
    expect(jobs[0]?.job_id).toBe(high.body.id);
    expect(low.status).toBe(201);
  });

  it("one client's backlog does not starve another client's job", async () => {
    const { region, constraints } = isolated();
    const busy = await fundedClient();
    const other = await fundedClient();
    for (let i = 0; i < 5; i++) await submitEcho(busy, { constraints });
    const late = await submitEcho(other, { constraints });
    const miner = await registeredMiner({ region });
    const first = await pollJobs(miner, { wait_seconds: 3 });
    const second = await (async () => {
      const j = first.jobs[0];
      await minerCall(miner, j?.job_id ?? "", "result", { claim_token: j?.claim_token, output: {} });
      return pollJobs(miner, { wait_seconds: 3 });
    })();
    expect([first.jobs[0]?.job_id, second.jobs[0]?.job_id]).toContain(late.body.id);
  });
});

describe("cancelling", () => {
  it("a cancelled queued job is never delivered and its hold is released", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient(1_000_000);
    const sub = await submitEcho(client, { constraints, max_price: 500 });
    const held = await api<{ balance: { held: number } }>("GET", "/v1/account", { key: client.key });
    expect(held.body.balance.held).toBe(500);
    const cancel = await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key });
    expect(cancel.body).toMatchObject({ status: "cancelled" });
    const miner = await registeredMiner({ region });
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    const after = await api<{ balance: { available: number; held: number } }>("GET", "/v1/account", {
      key: client.key,
    });
    expect(after.body.balance).toEqual({ available: 1_000_000, held: 0 });
    expect((await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key })).status).toBe(200);
  });

  it("cancelling a running job reaches the miner's heartbeat and its late result is discarded", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    await minerCall(miner, sub.body.id, "start", { claim_token: job?.claim_token });
    expect((await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key })).body).toMatchObject({
      status: "cancelled",
    });
    const hb = await api<{ stop: { job_id: string; reason: string }[]; stop_claim_tokens: string[] }>(
      "POST",
      "/v1/miners/heartbeat",
      {
        key: miner.key,
        headers: miner.headers,
        body: { jobs: [{ job_id: sub.body.id, claim_token: job?.claim_token }] },
      },
    );
    expect(hb.body.stop).toEqual([
      { job_id: sub.body.id, claim_token: job?.claim_token, reason: "cancelled" },
    ]);
    const late = await minerCall(miner, sub.body.id, "result", { claim_token: job?.claim_token, output: {} });
    expect(late.status).toBe(409);
    expect((await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body).toMatchObject({
      status: "cancelled",
    });
    // Terminal states never change; cancelling again after completion is 409.
    expect((await api("POST", `/v1/jobs/${sub.body.id}/retry`, { key: client.key })).status).toBe(409);
  });

  it("cancelling a completed job is 409", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    await minerCall(miner, sub.body.id, "result", { claim_token: job?.claim_token, output: { ok: true } });
    const res = await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key });
    expect(res.status).toBe(409);
  });
});

describe("leases", () => {
  it("heartbeat loss requeues the job, another miner completes it, and the first miner's late result gets 409", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const first = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [lost] = (await pollJobs(first, { wait_seconds: 3 })).jobs;
    expect(lost?.attempt).toBe(1);
    // No heartbeat: the 3 s test lease lapses and the sweep puts the job back.
    await eventually(
      async () => (await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body.status === "queued",
      15_000,
    );
    const second = await registeredMiner({ region });
    const [again] = (await pollJobs(second, { wait_seconds: 5 })).jobs;
    expect(again).toMatchObject({ job_id: sub.body.id, attempt: 2 });
    const stale = await minerCall(first, sub.body.id, "result", {
      claim_token: lost?.claim_token,
      output: { late: true },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: "stale_claim" });
    const ok = await minerCall(second, sub.body.id, "result", {
      claim_token: again?.claim_token,
      output: { fresh: true },
    });
    expect(ok.body).toMatchObject({ status: "completed", attempt: 2 });
    expect((await api("GET", `/v1/jobs/${sub.body.id}/result`, { key: client.key })).body).toMatchObject({
      output: { fresh: true },
    });
  }, 30_000);

  it("heartbeats keep a lease alive past its length", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const hb = await api<{ stop: unknown[] }>("POST", "/v1/miners/heartbeat", {
        key: miner.key,
        headers: miner.headers,
        body: { jobs: [{ job_id: sub.body.id, claim_token: job?.claim_token }] },
      });
      expect(hb.body.stop).toEqual([]);
    }
    const done = await minerCall(miner, sub.body.id, "result", { claim_token: job?.claim_token, output: {} });
    expect(done.body).toMatchObject({ status: "completed", attempt: 1 });
  }, 30_000);

  it("a job that kills every miner fails with attempts_exhausted after max_attempts", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient(1_000_000);
    const sub = await submitEcho(client, { constraints, max_attempts: 2, max_price: 1000 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      // A fresh miner each time (one that stops heartbeating is soon marked offline and gets nothing).
      await eventually(
        async () =>
          (await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body.status === "queued",
        15_000,
      );
      const miner = await registeredMiner({ region });
      const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
      expect(job?.attempt).toBe(attempt);
    }
    const failed = await eventually(async () => {
      const j = await api<{ status: string; error: { code: string } }>("GET", `/v1/jobs/${sub.body.id}`, {
        key: client.key,
      });
      return j.body.status === "failed" && j.body;
    }, 20_000);
    expect(failed.error.code).toBe("attempts_exhausted");
    const acct = await api<{ balance: { available: number; held: number } }>("GET", "/v1/account", {
      key: client.key,
    });
    expect(acct.body.balance).toEqual({ available: 1_000_000, held: 0 });
  }, 60_000);

  it("an execution timeout ends the job as timed_out", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints, timeout_seconds: 2 });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    await minerCall(miner, sub.body.id, "start", { claim_token: job?.claim_token });
    const hbs = setInterval(() => {
      void api("POST", "/v1/miners/heartbeat", {
        key: miner.key,
        headers: miner.headers,
        body: { jobs: [{ job_id: sub.body.id, claim_token: job?.claim_token }] },
      });
    }, 500);
    try {
      await eventually(
        async () =>
          (await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body.status === "timed_out",
        15_000,
      );
    } finally {
      clearInterval(hbs);
    }
    const retry = await api("POST", `/v1/jobs/${sub.body.id}/retry`, { key: client.key });
    expect(retry.body).toMatchObject({ status: "queued", id: sub.body.id });
  }, 30_000);

  it("a job nobody claims before its TTL expires", async () => {
    const { constraints } = isolated();
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints, ttl_seconds: 1 });
    await eventually(
      async () =>
        (await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body.status === "expired",
      15_000,
    );
  });
});

describe("failures reported by miners", () => {
  it("a retryable failure requeues; a permanent one fails the job with the miner's code", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints, max_attempts: 3 });
    const [a] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    const r1 = await minerCall(miner, sub.body.id, "fail", {
      claim_token: a?.claim_token,
      error_code: "oom",
      retryable: true,
    });
    expect(r1.body).toMatchObject({ status: "queued" });
    const [b] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    expect(b?.attempt).toBe(2);
    const r2 = await minerCall(miner, sub.body.id, "fail", {
      claim_token: b?.claim_token,
      error_code: "bad_input",
      error_message: "nope",
    });
    expect(r2.body).toMatchObject({ status: "failed", error: { code: "bad_input", message: "nope" } });
  });
});

describe("drain", () => {
  it("a draining miner gets no new work", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    await api("POST", "/v1/miners/drain", { key: miner.key, headers: miner.headers });
    await submitEcho(client, { constraints });
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    const back = await api("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: { status: "online" },
    });
    expect(back.body).toMatchObject({ status: "online" });
    expect((await pollJobs(miner, { wait_seconds: 3 })).jobs).toHaveLength(1);
  });
});

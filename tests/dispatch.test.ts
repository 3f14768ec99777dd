import { describe, expect, it } from "vitest";
import {
  api,
  type Claimed,
  fundedClient,
  getItem,
  isolated,
  pollJobs,
  registeredMiner,
  submitEcho,
} from "./fixture.ts";

describe("dispatch", () => {
  it("200 waiting pollers and 100 jobs: every job claimed exactly once, no miner above its concurrency", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miners = await Promise.all(
      Array.from({ length: 50 }, () => registeredMiner({ region, concurrency: 2 })),
    );
    // The test stack marks a miner offline after 3 s without a heartbeat: keep them alive as a real miner would.
    let running = true;
    const heartbeats = (async () => {
      while (running) {
        await Promise.all(
          miners.map((m) =>
            api("POST", "/v1/miners/heartbeat", { key: m.key, headers: m.headers, body: {} }),
          ),
        );
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    // 200 pollers (4 per miner), each polling again after an empty answer, as a miner's poll loop does.
    const claims: (Claimed & { miner: string })[] = [];
    // Patience, not a speed target (that is bench/'s): on 2 loaded cores with the other files running, 100 claims
    // through 200 pollers have taken 25 s.
    const until = Date.now() + 40_000;
    const pollers = Array.from({ length: 200 }, async (_, i) => {
      const miner = miners[i % miners.length] as (typeof miners)[number];
      while (running && Date.now() < until) {
        const p = await pollJobs(miner, { wait_seconds: 3 });
        expect([200, 204]).toContain(p.status);
        for (const j of p.jobs) claims.push({ ...j, miner: miner.id });
        if (p.status === 204) await new Promise((r) => setTimeout(r, 100));
      }
    });
    // The polls are waiting when the jobs arrive.
    await new Promise((r) => setTimeout(r, 500));
    const submitted: string[] = [];
    for (let i = 0; i < 100; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => submitEcho(client, { constraints })));
      for (const s of batch) {
        expect(s.status).toBe(201);
        submitted.push(s.body.id);
      }
    }
    while (new Set(claims.map((c) => c.job_id)).size < submitted.length && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    running = false;
    await Promise.all([...pollers, heartbeats]);
    // Every job was handed out, and each attempt of a job to exactly one poll (a lease that lapsed on a loaded
    // machine would give the job a second, separate attempt: never a shared one).
    expect([...new Set(claims.map((c) => c.job_id))].sort()).toEqual([...submitted].sort());
    const attempts = claims.map((c) => `${c.job_id}#${c.attempt}`);
    expect(new Set(attempts).size).toBe(attempts.length);
    expect(new Set(claims.map((c) => c.claim_token)).size).toBe(claims.length);
    // No miner above its concurrency: what each holds, as the coordinator records it.
    for (const m of miners) {
      const item = await getItem(`MINER#${m.id}`, "MINER");
      expect(Number(item?.active)).toBeLessThanOrEqual(2);
      expect(Object.keys((item?.held as Record<string, string>) ?? {}).length).toBeLessThanOrEqual(2);
    }
  }, 90_000);
});

describe("a submit's direct hand-off to a waiting miner", () => {
  it("a job submitted while a miner waits with nothing to do is claimed in the submit itself: never queued, the poll gets it with its input", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, prices: { echo: 3 } });
    const waiting = pollJobs(miner, { wait_seconds: 5 });
    await new Promise((r) => setTimeout(r, 300)); // the poll has been through a round and found nothing
    const sub = await submitEcho(client, { constraints, input: { big: 2 ** 60, nested: { a: [1, "x"] } } });
    expect(sub.status).toBe(201);
    expect(sub.body).toMatchObject({ status: "assigned", attempt: 1 });
    const { jobs } = await waiting;
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({
      job_id: sub.body.id,
      attempt: 1,
      input: { big: 2 ** 60, nested: { a: [1, "x"] } },
    });
    const stored = await getItem(`JOB#${sub.body.id}`, "JOB");
    expect(stored).toMatchObject({
      status: "assigned",
      version: 2,
      minerId: miner.id,
      claimToken: jobs[0]?.claim_token,
    });
    expect(stored?.GSI1PK).toBeUndefined(); // it never entered the ready queue
    // The history is the same as a queued-then-claimed job's; the account counts nothing queued.
    const history = await api<{ events: { type: string; seq: number }[] }>(
      "GET",
      `/v1/jobs/${sub.body.id}/events`,
      {
        key: client.key,
      },
    );
    expect(history.body.events.map((e) => [e.type, e.seq])).toEqual([
      ["job.submitted.v1", 1],
      ["job.assigned.v1", 2],
    ]);
    const account = await getItem(`ACCOUNT#${client.id}`, "ACCOUNT");
    expect(account).toMatchObject({ held: (sub.body as unknown as { max_price: number }).max_price });
    expect(account?.queued ?? 0).toBe(0);
    expect(await getItem(`MINER#${miner.id}`, "MINER")).toMatchObject({ active: 1 });
    // And it runs to the end like any other.
    const token = jobs[0]?.claim_token;
    await api("POST", `/v1/miners/${sub.body.id}/start`, {
      key: miner.key,
      headers: miner.headers,
      body: { claim_token: token },
    });
    const done = await api("POST", `/v1/miners/${sub.body.id}/result`, {
      key: miner.key,
      headers: miner.headers,
      body: { claim_token: token, output: { ok: true } },
    });
    expect(done.body).toMatchObject({ status: "completed" });
  });

  it("a waiting miner that turns out to be full gets nothing, and the job queues for the next free miner", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, concurrency: 1 });
    await submitEcho(client, { constraints });
    const first = (await pollJobs(miner, { wait_seconds: 5 })).jobs[0];
    expect(first).toBeDefined();
    // A second poll of the full miner waits (its cached capabilities do not know it is full yet).
    const second = pollJobs(miner, { wait_seconds: 2 });
    await new Promise((r) => setTimeout(r, 300));
    const sub = await submitEcho(client, { constraints });
    expect(sub.status).toBe(201);
    expect(sub.body.status).toBe("queued");
    expect((await second).jobs).toHaveLength(0);
    expect(await getItem(`MINER#${miner.id}`, "MINER")).toMatchObject({ active: 1 });
    // Once the first job is done, the queued one goes to the miner's next poll.
    await api("POST", `/v1/miners/${first?.job_id}/result`, {
      key: miner.key,
      headers: miner.headers,
      body: { claim_token: first?.claim_token, output: {} },
    });
    const next = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    expect(next.map((j) => j.job_id)).toEqual([sub.body.id]);
  });

  it("a job the waiting miner cannot run (another region) is queued, not handed to it", async () => {
    const { region } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const waiting = pollJobs(miner, { wait_seconds: 1 });
    await new Promise((r) => setTimeout(r, 300));
    const sub = await submitEcho(client, { constraints: { regions: [`${region}-elsewhere`] } });
    expect(sub.body.status).toBe("queued");
    expect((await waiting).jobs).toHaveLength(0);
    await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key });
  });
});

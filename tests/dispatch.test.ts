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
    const until = Date.now() + 15_000;
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
  }, 60_000);
});

import { describe, expect, it } from "vitest";
import {
  api,
  type Claimed,
  fundedClient,
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
    let beating = true;
    const heartbeats = (async () => {
      while (beating) {
        await Promise.all(
          miners.map((m) =>
            api("POST", "/v1/miners/heartbeat", { key: m.key, headers: m.headers, body: {} }),
          ),
        );
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const polls = Array.from({ length: 200 }, (_, i) => {
      const miner = miners[i % miners.length] as (typeof miners)[number];
      return pollJobs(miner, { wait_seconds: 8 }).then((p) => ({ miner: miner.id, ...p }));
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
    const answers = await Promise.all(polls);
    beating = false;
    await heartbeats;
    expect(answers.every((a) => a.status === 200 || a.status === 204)).toBe(true);
    const claims: (Claimed & { miner: string })[] = answers.flatMap((a) =>
      a.jobs.map((j) => ({ ...j, miner: a.miner })),
    );
    // Exactly once each: no job handed to two polls, none left behind.
    expect(claims.map((c) => c.job_id).sort()).toEqual([...submitted].sort());
    expect(claims.every((c) => c.attempt === 1)).toBe(true);
    const perMiner = new Map<string, number>();
    for (const c of claims) perMiner.set(c.miner, (perMiner.get(c.miner) ?? 0) + 1);
    expect(Math.max(...perMiner.values())).toBeLessThanOrEqual(2);
    for (const id of submitted.slice(0, 10)) {
      const job = await api<{ status: string }>("GET", `/v1/jobs/${id}`, { key: client.key });
      expect(job.body.status).toBe("assigned");
    }
  }, 60_000);
});

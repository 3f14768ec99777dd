import { describe, expect, it } from "vitest";
import type { Miner } from "../miners/miners.ts";
import { type ClaimOutcome, Matcher } from "./matcher.ts";
import type { Job } from "./model.ts";

/**
 * The matcher against an in-memory queue whose claim is conditional like the real one (a job is claimed once; a
 * miner never holds more than its concurrency), so the tests count claim attempts exactly.
 */
function world(jobCount: number, opts: { regions?: (i: number) => string } = {}) {
  const far = new Date(Date.now() + 3_600_000).toISOString();
  const jobs: Job[] = Array.from(
    { length: jobCount },
    (_, i) =>
      ({
        id: `job_${i}`,
        service: "echo",
        status: "queued",
        queueDeadline: far,
        maxPrice: 100,
        priority: 5,
        constraints: opts.regions ? { regions: [opts.regions(i)] } : {},
      }) as unknown as Job,
  );
  const owner = new Map<string, string>();
  const held = new Map<string, number>();
  let attempts = 0;
  let clears = 0;
  let announce: (service: string) => void = () => {};
  const matcher = new Matcher<string>({
    candidates: async function* (_service, _shards, _contended, found) {
      let any = false;
      for (const job of jobs)
        if (!owner.has(job.id)) {
          if (!any) found(0);
          any = true;
          yield job;
        }
    },
    claim: async (job, miner): Promise<ClaimOutcome<string>> => {
      attempts++;
      await new Promise((r) => setTimeout(r, 1));
      if ((held.get(miner.id) ?? 0) >= miner.concurrency) return { full: true };
      if (owner.has(job.id)) return { lost: true };
      owner.set(job.id, miner.id);
      held.set(miner.id, (held.get(miner.id) ?? 0) + 1);
      return { claimed: job.id };
    },
    summary: async () => new Map([["echo", [{ attr: "svc:echo#0", at: "marked", shards: [0] }]]]),
    shards: () => 1,
    clear: async () => {
      clears++;
    },
    onWork: (listener) => {
      announce = listener;
    },
  });
  const miner = (id: string, concurrency = 1, region?: string) =>
    ({
      id,
      services: ["echo"],
      concurrency,
      region,
      prices: { echo: 1 },
      gpus: [],
      models: [],
    }) as unknown as Miner;
  return {
    matcher,
    miner,
    jobs,
    owner,
    held,
    attempts: () => attempts,
    clears: () => clears,
    announce: (s: string) => announce(s),
  };
}

describe("the matcher: exclusive hand-off of ready jobs to waiting polls", () => {
  it("a round that found nothing clears the service's mark; one that took jobs does not", async () => {
    const empty = world(0);
    await empty.matcher.request(empty.miner("a"), 1, 0);
    expect(empty.clears()).toBe(1);
    const busy = world(2);
    await Promise.all([
      busy.matcher.request(busy.miner("a"), 1, 50),
      busy.matcher.request(busy.miner("b"), 1, 50),
    ]);
    expect(busy.owner.size).toBe(2);
    expect(busy.clears()).toBe(0);
  });

  it("fifty waiting polls and one job: one claim attempt, one winner", async () => {
    const w = world(0);
    const polls = Array.from({ length: 50 }, (_, i) => w.matcher.request(w.miner(`m${i}`), 1, 300));
    await new Promise((r) => setTimeout(r, 20));
    w.jobs.push({ ...(world(1).jobs[0] as Job) });
    w.announce("echo");
    const results = await Promise.all(polls);
    expect(results.flatMap((r) => r.claimed)).toEqual(["job_0"]);
    expect(w.attempts()).toBe(1);
  });

  it("two hundred polls and a hundred jobs: every job claimed exactly once, with one attempt each", async () => {
    const w = world(100);
    const miners = Array.from({ length: 100 }, (_, i) => w.miner(`m${i}`, 2));
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => w.matcher.request(miners[i % 100] as Miner, 2, 50)),
    );
    const claimed = results.flatMap((r) => r.claimed);
    expect(claimed).toHaveLength(100);
    expect(new Set(claimed).size).toBe(100);
    expect(w.attempts()).toBe(100);
    for (const n of w.held.values()) expect(n).toBeLessThanOrEqual(2);
  });

  it("offers each job to the longest-waiting poll that can run it, in queue order", async () => {
    const w = world(3, { regions: (i) => (i === 0 ? "eu" : "us") });
    const us = w.matcher.request(w.miner("us-1", 1, "us"), 1, 100);
    const eu = w.matcher.request(w.miner("eu-1", 1, "eu"), 1, 100);
    const us2 = w.matcher.request(w.miner("us-2", 1, "us"), 1, 100);
    expect((await us).claimed).toEqual(["job_1"]);
    expect((await eu).claimed).toEqual(["job_0"]);
    expect((await us2).claimed).toEqual(["job_2"]);
    expect(w.attempts()).toBe(3);
  });

  it("a poll with nothing to match still looks once, then answers at its deadline", async () => {
    const w = world(2, { regions: () => "eu" });
    const started = Date.now();
    const r = await w.matcher.request(w.miner("us-1", 1, "us"), 1, 0);
    expect(r).toEqual({ claimed: [], full: false });
    expect(w.attempts()).toBe(0);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("a job a full miner's poll is refused goes to another waiting poll in the same round", async () => {
    const w = world(1);
    const full = w.miner("full", 1);
    w.held.set("full", 1);
    const first = w.matcher.request(full, 1, 100);
    const second = w.matcher.request(full, 1, 100);
    const free = w.matcher.request(w.miner("free", 1), 1, 100);
    expect(await free).toEqual({ claimed: ["job_0"], full: false });
    // Both of the full miner's polls are told so; the job was not lost to the refusals (at most one per poll here,
    // as the polls arrived in two rounds), and went to the free miner.
    expect(await first).toEqual({ claimed: [], full: true });
    expect(await second).toEqual({ claimed: [], full: true });
    expect(w.attempts()).toBeLessThanOrEqual(3);
    expect(w.owner.get("job_0")).toBe("free");
  });

  it("a full miner is told so, without a second attempt", async () => {
    const w = world(2);
    const m = w.miner("m", 1);
    w.held.set("m", 1);
    const r = await w.matcher.request(m, 1, 100);
    expect(r).toEqual({ claimed: [], full: true });
    expect(w.attempts()).toBe(1);
  });
});

import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import { keys } from "../core/db/keys.ts";
import { QuotaExceededError } from "../core/errors.ts";
import {
  assertQueuedQuota,
  consume,
  consumeLocal,
  DEFAULT_LIMITS,
  forgetHints,
  limitFor,
} from "../core/ratelimit/index.ts";
import { statusOf } from "../functions/api/problem.ts";
import { api, createAccount, stack } from "./fixture.ts";

/** A route of the `write` class that does nothing: the limiter runs before the handler answers 404. */
const WRITE_ROUTE = "/v1/keys/key_00000000000000000000000000/revoke";
const subject = () => `test-${Math.random().toString(36).slice(2)}`;

async function burst(key: string, n: number) {
  return Promise.all(Array.from({ length: n }, () => api("POST", WRITE_ROUTE, { key })));
}

describe("rate limits over HTTP", () => {
  it("a burst past the limit is answered 429 problem+json with Retry-After, and other classes still pass", async () => {
    // The test stack runs the `write` class at 100 requests of burst and 1 per second after that.
    const { key } = await createAccount("client");
    const started = Date.now();
    const answers = await burst(key, 130);
    const seconds = (Date.now() - started) / 1000;
    const limited = answers.filter((r) => r.status === 429);
    const passed = answers.filter((r) => r.status === 404);
    expect(limited.length + passed.length).toBe(130);
    // The whole burst, plus what refilled (1/s) while the requests were in flight, and no more.
    expect(passed.length).toBeGreaterThanOrEqual(100);
    expect(passed.length).toBeLessThanOrEqual(100 + Math.ceil(seconds) + 1);
    const refusal = limited[0];
    expect(refusal?.headers.get("content-type")).toContain("application/problem+json");
    expect(refusal?.body).toMatchObject({ status: 429, code: "rate_limited" });
    expect(Number(refusal?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refusal?.headers.get("ratelimit-limit")).toBe("100");
    expect(refusal?.headers.get("ratelimit-remaining")).toBe("0");
    // Limits are per route class: reads on the same key are untouched.
    expect((await api("GET", "/v1/account", { key })).status).toBe(200);
  });

  it("keys delegated from a key share its bucket, so minting keys does not multiply the allowance", async () => {
    const { key } = await createAccount("client");
    const child = await api<{ key: string }>("POST", "/v1/keys", { key, body: { name: "helper" } });
    expect(child.status).toBe(201);
    await burst(key, 30);
    // A bucket of its own would have 99 of 100 left; the shared one has spent the parent's 31 (less a few refills).
    const res = await api("POST", WRITE_ROUTE, { key: child.body.key });
    expect(res.status).toBe(404);
    expect(Number(res.headers.get("ratelimit-remaining"))).toBeLessThan(80);
  });

  it("a generous default lets a fresh key burst at least 100 requests", () => {
    for (const [cls, limit] of Object.entries(DEFAULT_LIMITS)) {
      expect(limit.burst, cls).toBeGreaterThanOrEqual(100);
      expect(limit.perSecond, cls).toBeGreaterThan(0);
    }
    // The test process has no override: what it reads is the default.
    expect(limitFor("read")).toEqual(DEFAULT_LIMITS.read);
  });
});

describe("the limiter's store", () => {
  afterEach(() => forgetHints());

  it("holds across instances: a bucket drained by one instance refuses the next request in another", async () => {
    const s = subject();
    const limit = { burst: 5, perSecond: 1 };
    for (let i = 0; i < 5; i++) expect((await consume(s, "write", limit))?.allowed).toBe(true);
    forgetHints(); // a fresh Lambda instance knows nothing of this bucket
    const refused = await consume(s, "write", limit);
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused?.retryAfterSeconds).toBe(1);
  });

  it("refills at the sustained rate after the burst", async () => {
    const s = subject();
    const limit = { burst: 2, perSecond: 10 };
    const t0 = Date.now();
    expect((await consume(s, "read", limit, t0))?.allowed).toBe(true);
    expect((await consume(s, "read", limit, t0))?.allowed).toBe(true);
    expect((await consume(s, "read", limit, t0))?.allowed).toBe(false);
    expect((await consume(s, "read", limit, t0 + 100))?.allowed).toBe(true);
    expect((await consume(s, "read", limit, t0 + 100))?.allowed).toBe(false);
  });

  it("a busy key costs at most one conditional write per 20 requests, and no reads", async () => {
    const s = subject();
    const limit = { burst: 1000, perSecond: 100 };
    const t0 = Date.now();
    const decisions = [];
    for (let i = 0; i < 200; i++) decisions.push(await consume(s, "submit", limit, t0));
    expect(decisions.every((d) => d?.allowed)).toBe(true);
    const writes = decisions.reduce((n, d) => n + (d?.writes ?? 0), 0);
    // Batches of 4, 16, 64 while the key warms up, then 100 (a tenth of the burst) at a time.
    expect(writes).toBeLessThanOrEqual(200 / 20 + 5);
    expect(decisions.map((d) => d?.reads)).toEqual(Array(200).fill(0));
    // Tokens held in memory count as spent: the remaining count falls by one per request, as without batches.
    expect(decisions.map((d) => d?.remaining)).toEqual(Array.from({ length: 200 }, (_, i) => 999 - i));
  });

  it("admits exactly the burst, then refuses; a bucket known to be empty is refused without a write", async () => {
    const s = subject();
    const limit = { burst: 10, perSecond: 1 };
    const t0 = Date.now();
    const decisions = [];
    for (let i = 0; i < 12; i++) decisions.push(await consume(s, "submit", limit, t0));
    expect(decisions.map((d) => d?.allowed)).toEqual([...Array(10).fill(true), false, false]);
    expect(decisions.map((d) => d?.remaining).slice(0, 10)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(decisions[11]).toMatchObject({ allowed: false, writes: 0, reads: 0, retryAfterSeconds: 1 });
    // Once a token has refilled (1/s), the next request passes.
    expect((await consume(s, "submit", limit, t0 + 1000))?.allowed).toBe(true);
  });

  it("tokens an instance reserved lapse after a minute: it reserves again rather than spend old ones", async () => {
    const s = subject();
    const limit = { burst: 100, perSecond: 1 };
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) await consume(s, "submit", limit, t0); // batches 4, then 16 (15 held back)
    expect((await consume(s, "submit", limit, t0 + 10))?.writes).toBe(0);
    expect((await consume(s, "submit", limit, t0 + 30_000))?.writes).toBe(0);
    const late = await consume(s, "submit", limit, t0 + 61_000);
    expect(late).toMatchObject({ allowed: true, writes: 1 });
  });

  it("concurrent requests of one key in one instance share a reservation instead of each writing", async () => {
    const s = subject();
    const limit = { burst: 1000, perSecond: 100 };
    const t0 = Date.now();
    await consume(s, "submit", limit, t0);
    const decisions = await Promise.all(Array.from({ length: 40 }, () => consume(s, "submit", limit, t0)));
    expect(decisions.every((d) => d?.allowed)).toBe(true);
    expect(decisions.reduce((n, d) => n + (d?.writes ?? 0), 0)).toBeLessThanOrEqual(6);
    // No token is handed out twice.
    expect(new Set(decisions.map((d) => d?.remaining)).size).toBe(40);
  });

  it("an instance that guesses the bucket's state wrong pays one extra write, never a read", async () => {
    const s = subject();
    const limit = { burst: 10, perSecond: 1 };
    await consume(s, "poll", limit);
    forgetHints();
    const d = await consume(s, "poll", limit);
    // Two reservations of 4 have left 2 in the bucket; this instance holds 3 more of its batch.
    expect(d).toMatchObject({ allowed: true, writes: 2, reads: 0, remaining: 5 });
  });

  it("ignores a stale bucket that TTL has not removed yet", async () => {
    const s = subject();
    const longAgo = Date.now() - 3_600_000;
    await ddb().send(
      new PutCommand({
        TableName: stack.tableName,
        Item: {
          ...keys.rateLimit(`${s}#write`),
          entity: "rateLimit",
          tat: longAgo * 1000,
          expiresAt: Math.floor(longAgo / 1000),
        },
      }),
    );
    const d = await consume(s, "write", { burst: 100, perSecond: 1 });
    expect(d).toMatchObject({ allowed: true, remaining: 99 });
  });

  it("a class set to off is not limited", async () => {
    const before = process.env.COORD_RATE_ADMIN;
    process.env.COORD_RATE_ADMIN = "off";
    try {
      expect(await consume(subject(), "admin")).toBeUndefined();
      process.env.COORD_RATE_ADMIN = "7/0.5";
      expect(limitFor("admin")).toEqual({ burst: 7, perSecond: 0.5 });
      process.env.COORD_RATE_ADMIN = "lots";
      expect(() => limitFor("admin")).toThrow(/COORD_RATE_ADMIN/);
    } finally {
      if (before === undefined) delete process.env.COORD_RATE_ADMIN;
      else process.env.COORD_RATE_ADMIN = before;
    }
  });
});

describe("the heartbeat limit, held in memory", () => {
  it("admits the burst, then refuses with Retry-After until time refills it, and never touches the table", () => {
    const s = subject();
    const limit = { burst: 5, perSecond: 1 };
    const t0 = Date.now();
    const decisions = Array.from({ length: 7 }, () => consumeLocal(s, "poll", limit, t0));
    expect(decisions.map((d) => d?.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(decisions.map((d) => d?.remaining).slice(0, 5)).toEqual([4, 3, 2, 1, 0]);
    expect(decisions[5]).toMatchObject({ retryAfterSeconds: 1, writes: 0, reads: 0 });
    expect(decisions.every((d) => d?.writes === 0 && d.reads === 0)).toBe(true);
    expect(consumeLocal(s, "poll", limit, t0 + 1000)?.allowed).toBe(true);
    // Separate from the shared bucket of the same class: the table's bucket still holds its whole burst.
    expect(consumeLocal(subject(), "poll", limit, t0)?.remaining).toBe(4);
  });

  it("a heartbeat over HTTP is limited by the poll class's numbers (not the write class's)", async () => {
    const miner = await createAccount("miner");
    const reg = await api<{ miner_id: string }>("POST", "/v1/miners/register", {
      key: miner.key,
      body: { name: "hb", services: ["echo"], concurrency: 1 },
    });
    const beat = await api("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: { "x-miner-id": reg.body.miner_id },
      body: {},
    });
    expect(beat.status).toBe(200);
    expect(beat.headers.get("ratelimit-limit")).toBe(String(DEFAULT_LIMITS.poll.burst));
  });
});

describe("the queued-jobs quota", () => {
  it("refuses a submit past COORD_MAX_QUEUED_PER_ACCOUNT with a 429 quota_exceeded that carries Retry-After", () => {
    const before = process.env.COORD_MAX_QUEUED_PER_ACCOUNT;
    process.env.COORD_MAX_QUEUED_PER_ACCOUNT = "3";
    try {
      expect(() => assertQueuedQuota("acct_x", 2)).not.toThrow();
      let caught: unknown;
      try {
        assertQueuedQuota("acct_x", 3);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(QuotaExceededError);
      const err = caught as QuotaExceededError;
      expect(err.details).toMatchObject({ limit: 3, current: 3, retry_after_seconds: 5 });
      expect(statusOf(err.code)).toBe(429);
      expect(() => assertQueuedQuota("acct_x", 0, 4)).toThrow(QuotaExceededError);
    } finally {
      if (before === undefined) delete process.env.COORD_MAX_QUEUED_PER_ACCOUNT;
      else process.env.COORD_MAX_QUEUED_PER_ACCOUNT = before;
    }
  });

  it("defaults to 10000 queued jobs per account", () => {
    expect(() => assertQueuedQuota("acct_x", 9_999)).not.toThrow();
    expect(() => assertQueuedQuota("acct_x", 10_000)).toThrow(QuotaExceededError);
  });
});

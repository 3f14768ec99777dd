import { describe, expect, it } from "vitest";
import { platformFeeAccountOf } from "../core/ledger/ledger.ts";
import {
  api,
  eventually,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  queryPk,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";
import { startReceiver } from "./webhooks-receiver.ts";

type Obj = Record<string, unknown>;

const account = async (key: string) => (await api<Obj>("GET", "/v1/account", { key })).body;
const admin = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  api<Obj>(method, path, { key: stack.adminKey, body, headers });

/** The entries a job left on its platform fee account (read from the table: other tests move that balance too). */
async function feeEntriesOf(jobId: string) {
  const items = await queryPk(`ACCOUNT#${platformFeeAccountOf(jobId)}`);
  return items.filter((i) => i.jobId === jobId).map((i) => ({ kind: i.kind, delta: i.deltaAvailable }));
}

/** A client, a miner charging `price` per echo job, and one completed job. */
async function completedJob(price: number, miner?: TestMiner, region?: string) {
  const iso = region ? { region, constraints: { regions: [region] } } : isolated();
  const client = await fundedClient(10_000_000);
  const m = miner ?? (await registeredMiner({ region: iso.region, prices: { echo: price } }));
  const sub = await submitEcho(client, { constraints: iso.constraints, max_price: price * 2 });
  expect(sub.status).toBe(201);
  const { jobs } = await pollJobs(m, { wait_seconds: 5 });
  const held = jobs.find((j) => j.job_id === sub.body.id);
  const done = await minerCall(m, sub.body.id, "result", { claim_token: held?.claim_token, output: {} });
  expect(done.status).toBe(200);
  return { client, miner: m, jobId: sub.body.id, region: iso.region };
}

describe("the platform fee", () => {
  it("takes its share of a job's price to the job's platform fee account, and the miner earns the rest", async () => {
    const { client, miner, jobId } = await completedJob(1000);
    expect(await account(client.key)).toMatchObject({ available: 10_000_000 - 1000, held: 0 });
    expect(await account(miner.key)).toMatchObject({ available: 900, earned: 900 });
    expect(await feeEntriesOf(jobId)).toEqual([{ kind: "fee", delta: 100 }]);
    const fees = await admin("GET", `/v1/admin/accounts/${platformFeeAccountOf(jobId)}`);
    expect(fees.status).toBe(200);
    expect(Number(fees.body.available)).toBeGreaterThanOrEqual(100);
  });
});

describe("operator refunds of a job's charge", () => {
  it("refunds part, then the rest, through the ledger: the client gets it back, the miner and the fee give it back in proportion", async () => {
    const { client, miner, jobId } = await completedJob(1000);
    const part = await admin("POST", `/v1/admin/jobs/${jobId}/refund`, {
      amount: 250,
      reason: "partial: slow",
    });
    expect(part.status).toBe(201);
    expect(part.body).toMatchObject({
      amount: 250,
      refunded_total: 250,
      price: 1000,
      from_fee: 25,
      from_miner: 225,
    });
    expect(await account(client.key)).toMatchObject({ available: 10_000_000 - 750 });
    expect(await account(miner.key)).toMatchObject({ available: 675, earned: 675 });

    // Too much is 422 naming the field; the rest (no amount) is the remaining 750.
    const over = await admin("POST", `/v1/admin/jobs/${jobId}/refund`, { amount: 751, reason: "too much" });
    expect(over.status).toBe(422);
    expect(JSON.stringify(over.body)).toContain("body.amount");
    const rest = await admin("POST", `/v1/admin/jobs/${jobId}/refund`, { reason: "the rest" });
    expect(rest.body).toMatchObject({ amount: 750, refunded_total: 1000, from_fee: 75, from_miner: 675 });
    expect(await account(client.key)).toMatchObject({ available: 10_000_000 });
    expect(await account(miner.key)).toMatchObject({ available: 0, earned: 0 });
    expect((await admin("POST", `/v1/admin/jobs/${jobId}/refund`, { reason: "again" })).status).toBe(409);
    expect(await feeEntriesOf(jobId)).toEqual(
      expect.arrayContaining([
        { kind: "fee", delta: 100 },
        { kind: "job_refund", delta: -25 },
        { kind: "job_refund", delta: -75 },
      ]),
    );

    // The job stays completed; its history records both refunds; the ledger explains every balance.
    const events = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${jobId}/events`, {
      key: client.key,
    });
    expect(events.body.events.map((e) => e.type).filter((t) => t === "job.refunded.v1")).toHaveLength(2);
    expect((await api<Obj>("GET", `/v1/jobs/${jobId}`, { key: client.key })).body.status).toBe("completed");
    const check = await admin("GET", "/v1/admin/ledger/check");
    const mine = new Set([client.id, miner.accountId]);
    expect((check.body.mismatches as Obj[]).filter((m) => mine.has(String(m.account_id)))).toEqual([]);
  });

  it("of refunds racing on one job, never gives back more than its price", async () => {
    const { client, jobId } = await completedJob(1000);
    const race = await Promise.all(
      Array.from({ length: 8 }, () =>
        admin("POST", `/v1/admin/jobs/${jobId}/refund`, { amount: 300, reason: "race" }),
      ),
    );
    expect(race.filter((r) => r.status === 201)).toHaveLength(3);
    expect(race.every((r) => r.status === 201 || r.status === 422)).toBe(true);
    expect(await account(client.key)).toMatchObject({ available: 10_000_000 - 1000 + 900 });
  });

  it("replays a refund sent again with the same Idempotency-Key, and refuses what cannot be refunded", async () => {
    const { client, jobId } = await completedJob(1000);
    const headers = { "idempotency-key": `refund-${jobId}` };
    const first = await admin(
      "POST",
      `/v1/admin/jobs/${jobId}/refund`,
      { amount: 100, reason: "dup" },
      headers,
    );
    const again = await admin(
      "POST",
      `/v1/admin/jobs/${jobId}/refund`,
      { amount: 100, reason: "dup" },
      headers,
    );
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await account(client.key)).toMatchObject({ available: 10_000_000 - 900 });

    const { constraints } = isolated();
    const queued = await submitEcho(client, { constraints, max_price: 100 });
    const notDone = await admin("POST", `/v1/admin/jobs/${queued.body.id}/refund`, { reason: "not done" });
    expect(notDone.status).toBe(409);
    expect((await admin("POST", "/v1/admin/jobs/job_nope/refund", { reason: "x" })).status).toBe(404);
    const noReason = await admin("POST", `/v1/admin/jobs/${jobId}/refund`, { amount: 1 });
    expect(noReason.status).toBe(422);
    expect(JSON.stringify(noReason.body)).toContain("body.reason");
    // A client key cannot refund (even its own job).
    expect(
      (await api("POST", `/v1/admin/jobs/${jobId}/refund`, { key: client.key, body: { reason: "x" } }))
        .status,
    ).toBe(403);
  });
});

describe("operator cancels", () => {
  it("cancels another account's queued job with a reason, releases its hold, and the audit trail names the operator", async () => {
    const { constraints } = isolated();
    const client = await fundedClient(1_000_000);
    const sub = await submitEcho(client, { constraints, max_price: 5000 });
    expect(await account(client.key)).toMatchObject({ held: 5000 });
    const res = await admin("POST", `/v1/admin/jobs/${sub.body.id}/cancel`, { reason: "abuse report 17" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: sub.body.id, status: "cancelled" });
    expect(await account(client.key)).toMatchObject({ available: 1_000_000, held: 0 });
    expect((await admin("POST", `/v1/admin/jobs/${sub.body.id}/cancel`, { reason: "again" })).status).toBe(
      200,
    );
    const events = await api<{ events: { type: string; data: Obj }[] }>(
      "GET",
      `/v1/jobs/${sub.body.id}/events`,
      {
        key: client.key,
      },
    );
    expect(events.body.events.at(-1)).toMatchObject({
      type: "job.cancelled.v1",
      data: { reason: "abuse report 17" },
    });
    await eventually(async () => {
      const audit = await admin("GET", "/v1/admin/audit?type=job.cancelled.v1");
      return (audit.body.items as Obj[]).some(
        (e) => e.subject === sub.body.id && (e.actor as Obj | undefined)?.account_id !== undefined,
      );
    }, 15_000);
    // A client's own cancel is not an operator action: not in the audit trail.
    const own = await submitEcho(client, { constraints, max_price: 10 });
    await api("POST", `/v1/jobs/${own.body.id}/cancel`, { key: client.key });
    const refund = await completedJob(10);
    await admin("POST", `/v1/admin/jobs/${refund.jobId}/refund`, { reason: "audited" });
    await eventually(async () => {
      const audit = await admin("GET", "/v1/admin/audit?type=job.refunded.v1");
      return (audit.body.items as Obj[]).some((e) => e.subject === refund.jobId);
    }, 15_000);
    const audit = await admin("GET", "/v1/admin/audit?type=job.cancelled.v1");
    expect((audit.body.items as Obj[]).some((e) => e.subject === own.body.id)).toBe(false);
  });

  it("cancels a leased job: the miner is told to stop and its late result is refused", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient(1_000_000);
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints, max_price: 100 });
    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    const token = jobs[0]?.claim_token;
    expect((await admin("POST", `/v1/admin/jobs/${sub.body.id}/cancel`, { reason: "operator" })).status).toBe(
      200,
    );
    const hb = await api<{ stop: Obj[] }>("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {},
    });
    expect(hb.body.stop).toEqual([expect.objectContaining({ job_id: sub.body.id, reason: "cancelled" })]);
    expect((await minerCall(miner, sub.body.id, "result", { claim_token: token, output: {} })).status).toBe(
      409,
    );
    expect(await account(client.key)).toMatchObject({ available: 1_000_000, held: 0 });
  });
});

describe("low balance", () => {
  it("emits account.low_balance.v1 once per crossing of the account's threshold, not on every job", async () => {
    const rx = await startReceiver();
    try {
      const { region, constraints } = isolated();
      const client = await fundedClient(10_000);
      const set = await api<Obj>("PATCH", "/v1/account", {
        key: client.key,
        body: { low_balance_threshold: 7000 },
      });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ low_balance_threshold: 7000 });
      const ep = await api<Obj>("POST", "/v1/webhooks/endpoints", {
        key: client.key,
        body: { url: rx.url, event_types: ["account.low_balance.v1"] },
      });
      expect(ep.status).toBe(201);
      const miner = await registeredMiner({ region, prices: { echo: 1000 } });
      const run = async () => {
        const sub = await submitEcho(client, { constraints, max_price: 1000 });
        const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
        await minerCall(miner, sub.body.id, "result", { claim_token: jobs[0]?.claim_token, output: {} });
      };
      // 10000 -> 9000 -> 8000 -> 7000 -> 6000 (crossing) -> 5000: one event.
      for (let i = 0; i < 5; i++) await run();
      await eventually(async () => rx.received.length >= 1, 15_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(rx.received).toHaveLength(1);
      const body = JSON.parse(rx.received[0]?.body ?? "{}");
      expect(body).toMatchObject({
        type: "account.low_balance.v1",
        data: { account_id: client.id, threshold: 7000 },
      });
      // Back above the threshold, then below again: a second crossing, a second event.
      await admin("POST", `/v1/admin/accounts/${client.id}/adjust`, { amount: 5000, reason: "top up" });
      for (let i = 0; i < 4; i++) await run();
      await eventually(async () => rx.received.length >= 2, 15_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(rx.received).toHaveLength(2);
    } finally {
      await rx.close();
    }
  });

  it("refuses a threshold that is not a whole non-negative number, naming the field", async () => {
    const client = await fundedClient(10);
    const bad = await api<Obj>("PATCH", "/v1/account", {
      key: client.key,
      body: { low_balance_threshold: -1 },
    });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.body)).toContain("body.low_balance_threshold");
    const cleared = await api<Obj>("PATCH", "/v1/account", {
      key: client.key,
      body: { low_balance_threshold: null },
    });
    expect(cleared.body).toMatchObject({ low_balance_threshold: 1_000_000 });
  });
});

import { QueryCommand, type QueryCommandOutput } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import { platformFeeAccountOf } from "../core/ledger/ledger.ts";
import {
  api,
  eventually,
  fundedClient,
  isolated,
  type Res,
  registeredMiner,
  stack,
  type TestMiner,
} from "./fixture.ts";
import { sessionEvent, signedStripeRequest, stripeEvent, stripeSession } from "./stripe-events.ts";

/**
 * Issue 11's acceptance: a randomized, seeded workload of money-moving operations (submits, completions, failures,
 * cancels, timeouts, lease lapses, retries, Stripe top-ups delivered twice and out of order, Stripe refunds, operator
 * refunds and cancels, payouts), run a few at a time, ends with the ledger check passing, every balance equal to its
 * entries, each paid session credited exactly once, and the money of its closed set of accounts conserved exactly.
 *
 * The seed picks the operations and their parameters; which job an operation lands on depends on timing too (the
 * operations run concurrently), so a seed reproduces the mix, not the interleaving. COORD_WORKLOAD_SEED overrides it.
 */

type Obj = Record<string, unknown>;

const SEED = (() => {
  const raw = process.env.COORD_WORKLOAD_SEED?.trim();
  const n = raw ? Number(raw) : 0x5eed11;
  if (!Number.isSafeInteger(n)) throw new Error(`COORD_WORKLOAD_SEED must be an integer, got ${raw}`);
  return n >>> 0;
})();
const OPS = 100;
const PARALLEL = 6;
/** COORD_CREDIT_RATES of the test stack (tests/global-setup.ts): micro-credits per minor unit. */
const RATES = { usd: 10_000, eur: 11_000 } as const;
/** COORD_PLATFORM_FEE_BPS's default. */
const FEE_BPS = 1000;
const LEASED = new Set(["assigned", "running"]);

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
type Rng = () => number;
/** An integer in [lo, hi]. */
const between = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pickOf = <T>(r: Rng, xs: T[]): T | undefined =>
  xs.length > 0 ? xs[Math.floor(r() * xs.length)] : undefined;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A status (or a body) the operation cannot produce: a finding, reported with the seed and the operation. */
class Unexpected extends Error {}

type Known = "live" | "failed" | "timed_out" | "completed" | "cancelled" | "expired";
const knownOf = (status: string): Known =>
  ["queued", "assigned", "running"].includes(status) ? "live" : (status as Known);

interface ClientRec {
  name: string;
  id: string;
  key: string;
  funding: number;
}
interface MinerRec {
  name: string;
  m: TestMiner;
  price: number;
  /** Approved payouts: money that left for the payout clearing account. */
  approved: number;
}
interface JobRec {
  id: string;
  client: ClientRec;
  maxPrice: number;
  short: boolean;
  expiry: boolean;
  known: Known;
  busy: boolean;
  completedBy?: MinerRec;
  price: number;
  fee: number;
  refunded: number;
  fromFee: number;
  fromMiner: number;
}
interface SessionRec {
  id: string;
  client: ClientRec;
  cents: number;
  currency: keyof typeof RATES;
  credits: number;
  plan: "paid" | "expire" | "pending";
  events: Obj[];
  outcomes: string[];
  refundedCents: number;
  busy: boolean;
}
interface PayoutRec {
  id: string;
  miner: MinerRec;
  amount: number;
  status: "requested" | "approved" | "rejected";
  busy: boolean;
}
interface Assignment {
  job_id: string;
  claim_token: string;
  attempt: number;
  unit_price: number;
  max_price: number;
}
interface JobBody {
  id: string;
  status: string;
  attempt: number;
  price: number | null;
  miner_id: string | null;
}
interface LedgerItem {
  kind: string;
  delta_available: number;
  delta_held: number;
  job_id?: string;
  reason?: string;
}

describe("the seeded money workload", () => {
  it(`seed ${SEED} (COORD_WORKLOAD_SEED): ${OPS} concurrent money operations end with every balance equal to its entries and the ledger check passing`, async () => {
    const started = Date.now();
    const rng = mulberry32(SEED);
    const problems: string[] = [];
    const tally: Record<string, number> = {};
    const count = (k: string) => {
      tally[k] = (tally[k] ?? 0) + 1;
    };
    const check = (cond: unknown, what: string) => {
      if (!cond) throw new Unexpected(what);
    };

    async function call<T = Obj>(
      what: string,
      method: string,
      path: string,
      opts: Parameters<typeof api>[2],
      allowed: number[],
    ): Promise<Res<T>> {
      for (let tries = 0; ; tries++) {
        const res = await api<T>(method, path, opts);
        // Rate limits are per key and the admin key is shared with every other test file: wait as told.
        if (res.status === 429 && tries < 8 && !allowed.includes(429)) {
          await sleep(Math.min(3000, Math.max(200, Number(res.headers.get("retry-after") ?? 1) * 1000)));
          continue;
        }
        if (!allowed.includes(res.status))
          throw new Unexpected(
            `${what}: ${method} ${path} answered ${res.status}, expected ${allowed.join("|")}: ${res.text.slice(0, 500)}`,
          );
        return res;
      }
    }
    const admin = <T = Obj>(what: string, method: string, path: string, body: unknown, allowed: number[]) =>
      call<T>(what, method, path, { key: stack.adminKey, body }, allowed);

    // The closed set of accounts: clients (one of them poor), two reliable miners and a flaky one, in one region;
    // prices not multiples of ten so that the fee and the refund splits round.
    const { region } = isolated();
    const nowhere = isolated().region; // no miner: jobs there expire
    const clients: ClientRec[] = await Promise.all(
      [3_000_000, 2_000_000, 1_000_000, 150_000].map(async (funding, i) => {
        const c = await fundedClient(funding);
        return { name: `client${i}`, id: c.id, key: c.key, funding };
      }),
    );
    const miners: MinerRec[] = await Promise.all(
      [
        { price: 80_007, concurrency: 3 },
        { price: 119_993, concurrency: 2 },
        { price: 50_011, concurrency: 1 },
      ].map(async ({ price, concurrency }, i) => ({
        name: `miner${i + 1}`,
        m: await registeredMiner({ region, prices: { echo: price }, concurrency }),
        price,
        approved: 0,
      })),
    );
    const [m1, m2, m3] = miners as [MinerRec, MinerRec, MinerRec];
    const jobs = new Map<string, JobRec>();
    const sessions: SessionRec[] = [];
    const payouts: PayoutRec[] = [];
    const late: { s: SessionRec; evt: Obj }[] = [];

    // The reliable miners heartbeat every 600 ms (the stack's heartbeat is 1 s, its lease 3 s); the flaky one only
    // when it works, so that what it abandons loses its lease.
    let beating = true;
    const beats = [m1, m2].map(async (m) => {
      while (beating) {
        try {
          await call(
            "heartbeat",
            "POST",
            "/v1/miners/heartbeat",
            { key: m.m.key, headers: m.m.headers, body: {} },
            [200],
          );
        } catch (err) {
          problems.push(`${m.name} ${String(err)}`);
        }
        await sleep(600);
      }
    });

    const getJob = async (rec: JobRec) => {
      const res = await call<JobBody>("job", "GET", `/v1/jobs/${rec.id}`, { key: rec.client.key }, [200]);
      rec.known = knownOf(res.body.status);
      return res.body;
    };
    /** Until the job is no longer held by the claim of `attempt` (lease lapse, timeout, cancel). */
    const movedOn = (rec: JobRec, attempt: number, ms = 15_000) =>
      eventually(
        async () => {
          const j = await getJob(rec);
          return !LEASED.has(j.status) || j.attempt !== attempt;
        },
        ms,
        150,
      );

    // --- Stripe, signed as Stripe signs ---------------------------------------------------------------------
    const chargeRefunded = (s: SessionRec, refundedCents: number) =>
      stripeEvent("charge.refunded", {
        id: `ch_${s.id}`,
        object: "charge",
        amount: s.cents,
        amount_refunded: refundedCents,
        currency: s.currency,
        payment_intent: `pi_${s.id}`,
        refunded: refundedCents === s.cents,
      });
    const deliver = async (evt: Obj, what: string) => {
      const res = await call<{ outcome: string }>(
        what,
        "POST",
        "/v1/webhooks/stripe",
        signedStripeRequest(evt),
        [200],
      );
      count(`stripe ${String(evt.type)} -> ${res.body.outcome}`);
      return res.body.outcome;
    };
    const PAID = new Set(["checkout.session.completed", "checkout.session.async_payment_succeeded"]);
    /** Delivers a checkout event of `s` and checks the outcome is one that event can have. */
    const deliverCheckout = async (s: SessionRec, evt: Obj, what: string) => {
      const outcome = await deliver(evt, what);
      s.outcomes.push(outcome);
      const paid =
        PAID.has(String(evt.type)) && (evt.data as { object: Obj }).object.payment_status === "paid";
      const allowed =
        evt.type === "checkout.session.expired"
          ? ["expired", "already_settled", "duplicate"]
          : paid
            ? ["credited", "already_settled", "duplicate"]
            : ["awaiting_payment", "duplicate"];
      check(allowed.includes(outcome), `${what}: ${String(evt.type)} of ${s.id} had outcome ${outcome}`);
      return outcome;
    };

    // --- the operations ------------------------------------------------------------------------------------
    type Plan = "complete" | "start_complete" | "fail_retryable" | "fail_final" | "hold" | "abandon";
    const expectedPrice = (m: MinerRec, rec: JobRec) => Math.min(m.price, rec.maxPrice);

    /** What a miner does with a job it claimed. */
    async function handle(m: MinerRec, a: Assignment, plan: Plan, ctx: string) {
      // A waiting poll may be handed the job before its submit has answered: give the submit a moment.
      const rec =
        jobs.get(a.job_id) ??
        (await eventually(async () => jobs.get(a.job_id), 5000, 20).catch(() => undefined));
      check(rec, `${ctx}: ${m.name} claimed ${a.job_id}, not a job of this workload`);
      if (!rec) return;
      check(
        a.unit_price === m.price,
        `${ctx}: ${a.job_id} claimed at unit price ${a.unit_price}, not ${m.price}`,
      );
      check(a.max_price === rec.maxPrice, `${ctx}: ${a.job_id} claimed with max_price ${a.max_price}`);
      const report = (action: string, body: Obj, allowed: number[]) =>
        call<JobBody & { code?: string }>(
          `${ctx} ${m.name} ${action} ${a.job_id}`,
          "POST",
          `/v1/miners/${a.job_id}/${action}`,
          { key: m.m.key, headers: m.m.headers, body: { claim_token: a.claim_token, ...body } },
          allowed,
        );
      const refused = async (res: Res<JobBody & { code?: string }>, action: string) => {
        check(
          res.body.code === "conflict" || res.body.code === "stale_claim",
          `${ctx}: ${action} of ${a.job_id} refused with ${res.text}`,
        );
        count(`${action} refused (${res.body.code})`);
        await getJob(rec);
      };
      count(`plan ${plan}`);
      if (plan === "abandon") {
        // Never reports: the lease lapses (requeued, or failed once the attempts are spent), or it times out.
        await movedOn(rec, a.attempt);
        count(`abandoned -> ${rec.known}`);
        return;
      }
      if (plan === "hold") {
        // Starts and sits on it past its 1 s timeout (heartbeats keep the lease): timed out, the late result refused.
        const started = await report("start", {}, [200, 409]);
        if (started.status === 409) return refused(started, "start");
        await movedOn(rec, a.attempt);
        count(`held -> ${rec.known}`);
        return refused(await report("result", { output: { late: true } }, [409]), "late result");
      }
      if (plan === "start_complete") {
        const started = await report("start", {}, [200, 409]);
        if (started.status === 409) return refused(started, "start");
      }
      if (plan === "complete" || plan === "start_complete") {
        const done = await report("result", { output: { ok: true } }, [200, 409]);
        if (done.status === 409) return refused(done, "result");
        const price = expectedPrice(m, rec);
        check(
          done.body.status === "completed" && done.body.price === price,
          `${ctx}: ${a.job_id} completed as ${done.text}, expected price ${price}`,
        );
        check(!rec.completedBy, `${ctx}: ${a.job_id} completed twice`);
        Object.assign(rec, {
          completedBy: m,
          price,
          fee: Math.floor((price * FEE_BPS) / 10_000),
          known: "completed",
        });
        return;
      }
      const retryable = plan === "fail_retryable";
      const failed = await report("fail", { error_code: "workload_failure", retryable }, [200, 409]);
      if (failed.status === 409) return refused(failed, "fail");
      const status = failed.body.status;
      check(
        retryable ? status === "queued" || status === "failed" : status === "failed",
        `${ctx}: ${retryable ? "retryable" : "final"} failure of ${a.job_id} left it ${status}`,
      );
      rec.known = knownOf(status);
      count(`${plan} -> ${status}`);
    }

    /** A miner polls once and deals with what it claimed, as `choose` says. */
    async function work(m: MinerRec, maxJobs: number, choose: (a: Assignment) => Plan, ctx: string) {
      const res = await call<{ jobs: Assignment[] }>(
        `${ctx} ${m.name} poll`,
        "POST",
        "/v1/miners/poll",
        { key: m.m.key, headers: m.m.headers, body: { wait_seconds: 0.5, max_jobs: maxJobs } },
        [200, 204],
      );
      const claimed = res.status === 200 ? res.body.jobs : [];
      count(`${m.name} claimed ${claimed.length}`);
      // The plans are drawn before any await, so that a seed draws them in the same order.
      const plans = claimed.map((a) => ({ a, plan: choose(a) }));
      await Promise.all(plans.map(({ a, plan }) => handle(m, a, plan, ctx)));
    }

    let flakyTurn: Promise<unknown> = Promise.resolve();

    const operations: Record<string, (r: Rng, ctx: string) => Promise<void>> = {
      async submit(r, ctx) {
        const client = pickOf(r, clients) as ClientRec;
        const expiry = r() < 0.12;
        const short = !expiry && r() < 0.25;
        // A miner is matched only to jobs whose max_price covers its price: most jobs suit all three miners, some
        // only the cheapest (the flaky one).
        const maxPrice = r() < 0.15 ? between(r, m3.price, m1.price - 1) : between(r, m2.price, 400_000);
        const body: Obj = {
          service: "echo",
          input: { op: ctx },
          constraints: { regions: [expiry ? nowhere : region] },
          max_price: maxPrice,
          max_attempts: between(r, 1, 3),
          ...(short ? { timeout_seconds: 1 } : {}),
          ...(expiry ? { ttl_seconds: between(r, 1, 2) } : {}),
        };
        const res = await call<JobBody & { code?: string }>(
          `${ctx} submit`,
          "POST",
          "/v1/jobs",
          { key: client.key, body },
          [201, 402],
        );
        if (res.status === 402) {
          check(res.body.code === "insufficient_funds", `${ctx}: submit 402 ${res.text}`);
          count("submit 402");
          return;
        }
        count(expiry ? "submit expiring" : short ? "submit short timeout" : "submit");
        jobs.set(res.body.id, {
          id: res.body.id,
          client,
          maxPrice,
          short,
          expiry,
          known: knownOf(res.body.status),
          busy: false,
          price: 0,
          fee: 0,
          refunded: 0,
          fromFee: 0,
          fromMiner: 0,
        });
      },

      async work(r, ctx) {
        const m = r() < 0.55 ? m1 : m2;
        await work(
          m as MinerRec,
          between(r, 1, 2),
          (a) => {
            const x = r();
            if (jobs.get(a.job_id)?.short && x < 0.6) return "hold";
            return x < 0.55
              ? "complete"
              : x < 0.72
                ? "start_complete"
                : x < 0.87
                  ? "fail_retryable"
                  : "fail_final";
          },
          ctx,
        );
      },

      async flaky(r, ctx) {
        // One turn at a time: a heartbeat (or a claim) of the flaky miner would renew what it abandoned.
        const turn = flakyTurn.then(async () => {
          const miner = m3 as MinerRec;
          await call(
            "flaky heartbeat",
            "POST",
            "/v1/miners/heartbeat",
            {
              key: miner.m.key,
              headers: miner.m.headers,
              body: {},
            },
            [200],
          );
          await work(miner, 1, () => (r() < 0.75 ? "abandon" : "complete"), ctx);
        });
        flakyTurn = turn.catch(() => undefined);
        await turn;
      },

      async cancel(r, ctx) {
        await cancelOne(r, ctx, false);
      },
      async adminCancel(r, ctx) {
        await cancelOne(r, ctx, true);
      },

      async retry(r, ctx) {
        const rec = pickOf(
          r,
          [...jobs.values()].filter((j) => !j.busy && (j.known === "failed" || j.known === "timed_out")),
        );
        if (!rec) return count("retry: nothing to retry");
        rec.busy = true;
        try {
          const res = await call<JobBody & { code?: string }>(
            `${ctx} retry ${rec.id}`,
            "POST",
            `/v1/jobs/${rec.id}/retry`,
            { key: rec.client.key },
            [200, 402],
          );
          if (res.status === 402) {
            check(res.body.code === "insufficient_funds", `${ctx}: retry 402 ${res.text}`);
            return count("retry 402");
          }
          check(res.body.status === "queued", `${ctx}: retried ${rec.id} is ${res.body.status}`);
          rec.known = "live";
          count("retry");
        } finally {
          rec.busy = false;
        }
      },

      async topUp(r, ctx) {
        const client = pickOf(r, clients) as ClientRec;
        const currency = r() < 0.3 ? "eur" : "usd";
        const cents = between(r, 50, 150);
        const roll = r();
        const plan = roll < 0.12 ? "expire" : roll < 0.2 ? "pending" : "paid";
        const variant = between(r, 0, 4);
        const redeliverLater = r() < 0.35;
        const res = await call<{ id: string; credits: number; status: string }>(
          `${ctx} checkout`,
          "POST",
          "/v1/payments/checkout",
          {
            key: client.key,
            body: {
              amount: cents,
              currency,
              success_url: "https://example.com/ok",
              cancel_url: "https://example.com/no",
            },
          },
          [201],
        );
        check(
          res.body.credits === cents * RATES[currency] && res.body.status === "pending",
          `${ctx}: checkout answered ${res.text}`,
        );
        const session = await stripeSession(res.body.id);
        const s: SessionRec = {
          id: res.body.id,
          client,
          cents,
          currency,
          credits: cents * RATES[currency],
          plan,
          events: [],
          outcomes: [],
          refundedCents: 0,
          busy: false,
        };
        sessions.push(s);
        count(`top-up ${plan}`);
        const ev = (type: string, over: Obj = {}) => {
          const e = sessionEvent(type, session, over);
          s.events.push(e);
          return e;
        };
        const now = (e: Obj) => deliverCheckout(s, e, `${ctx} top-up`);
        if (plan === "pending") return; // the payer never pays: nothing is credited
        if (plan === "expire") {
          const outcome = await now(ev("checkout.session.expired"));
          check(outcome === "expired", `${ctx}: expiry of ${s.id} had outcome ${outcome}`);
          // A paid event arriving after the expiry (out of order) credits nothing.
          if (redeliverLater) late.push({ s, evt: ev("checkout.session.completed") });
          return;
        }
        const completed = ev("checkout.session.completed");
        const succeeded = ev("checkout.session.async_payment_succeeded");
        switch (variant) {
          case 0:
            await now(completed);
            break;
          case 1: // Stripe's retry of the same event
            await now(completed);
            await now(completed);
            break;
          case 2: // both success events at once, one of them twice
            await Promise.all([succeeded, completed, succeeded].map(now));
            break;
          case 3: {
            // a delayed payment method: completed unpaid first, the async success settles it
            const unpaid = ev("checkout.session.completed", { payment_status: "unpaid" });
            const waiting = await now(unpaid);
            check(
              waiting === "awaiting_payment",
              `${ctx}: unpaid completion of ${s.id} had outcome ${waiting}`,
            );
            await now(succeeded);
            break;
          }
          default: // out of order: both arrive later, the async one first
            late.push({ s, evt: succeeded }, { s, evt: completed });
        }
        if (redeliverLater) late.push({ s, evt: pickOf(r, s.events) as Obj });
      },

      async late(r, ctx) {
        if (late.length === 0) return count("late: nothing pending");
        const [item] = late.splice(Math.floor(r() * late.length), 1);
        if (item) await deliverCheckout(item.s, item.evt, `${ctx} late delivery`);
      },

      async stripeRefund(r, ctx) {
        if (r() < 0.15) {
          // A refund of a session that was never credited is not ours to take back.
          const s = pickOf(
            r,
            sessions.filter((x) => x.plan !== "paid"),
          );
          if (!s) return;
          const outcome = await deliver(chargeRefunded(s, s.cents), `${ctx} refund of uncredited`);
          check(outcome === "not_ours", `${ctx}: refund of uncredited ${s.id} had outcome ${outcome}`);
          return;
        }
        const s = pickOf(
          r,
          sessions.filter((x) => !x.busy && x.outcomes.includes("credited") && x.refundedCents < x.cents),
        );
        if (!s) return count("stripe refund: nothing to refund");
        s.busy = true;
        try {
          const before = s.refundedCents;
          const target = between(r, before + 1, s.cents);
          const evt = chargeRefunded(s, target);
          const outcome = await deliver(evt, `${ctx} stripe refund`);
          check(outcome === "refunded", `${ctx}: refund to ${target} of ${s.id} had outcome ${outcome}`);
          s.refundedCents = target;
          if (r() < 0.3) {
            const again = await deliver(evt, `${ctx} stripe refund again`);
            check(again === "duplicate", `${ctx}: redelivered refund of ${s.id} had outcome ${again}`);
          }
          if (r() < 0.3) {
            // An older cumulative amount arriving late moves nothing.
            const old = await deliver(chargeRefunded(s, between(r, 1, target)), `${ctx} stale stripe refund`);
            check(old === "already_settled", `${ctx}: stale refund of ${s.id} had outcome ${old}`);
          }
        } finally {
          s.busy = false;
        }
      },

      async jobRefund(r, ctx) {
        const rec = pickOf(
          r,
          [...jobs.values()].filter((j) => !j.busy && j.completedBy),
        );
        if (!rec) return count("job refund: nothing completed");
        rec.busy = true;
        try {
          const left = rec.price - rec.refunded;
          const x = r();
          const mode = left === 0 ? "none left" : x < 0.35 ? "rest" : x < 0.85 ? "part" : "too much";
          const amount =
            mode === "part"
              ? between(r, 1, left)
              : mode === "too much"
                ? left + between(r, 1, 1000)
                : undefined;
          const res = await admin<Obj>(
            `${ctx} job refund (${mode}) ${rec.id}`,
            "POST",
            `/v1/admin/jobs/${rec.id}/refund`,
            { reason: `workload ${ctx}`, ...(amount === undefined ? {} : { amount }) },
            [mode === "none left" ? 409 : mode === "too much" ? 422 : 201],
          );
          count(`job refund ${mode}`);
          if (res.status !== 201) return;
          const given = amount ?? left;
          const feeBack = (total: number) => Math.floor((total * rec.fee) / rec.price);
          const fromFee = feeBack(rec.refunded + given) - feeBack(rec.refunded);
          check(
            res.body.amount === given &&
              res.body.price === rec.price &&
              res.body.refunded_total === rec.refunded + given &&
              res.body.from_fee === fromFee &&
              res.body.from_miner === given - fromFee,
            `${ctx}: refund of ${given} on ${rec.id} (price ${rec.price}, fee ${rec.fee}, refunded ${rec.refunded}) answered ${JSON.stringify(res.body)}`,
          );
          rec.refunded += given;
          rec.fromFee += fromFee;
          rec.fromMiner += given - fromFee;
        } finally {
          rec.busy = false;
        }
      },

      async payout(r, ctx) {
        const miner = pickOf(r, miners) as MinerRec;
        const acct = await call<{ available: number }>(
          `${ctx} account`,
          "GET",
          "/v1/account",
          { key: miner.m.key },
          [200],
        );
        const available = acct.body.available;
        // Earnings move meanwhile (completions, refunds), so a request may find less than was read: 402 then.
        const amount = available > 0 ? between(r, 1, available) : between(r, 1, 1000);
        const res = await call<{ id: string; amount: number; status: string }>(
          `${ctx} payout`,
          "POST",
          "/v1/payouts",
          { key: miner.m.key, body: { amount } },
          [201, 402],
        );
        count(`payout ${res.status}`);
        if (res.status !== 201) return;
        check(res.body.amount === amount && res.body.status === "requested", `${ctx}: payout ${res.text}`);
        payouts.push({ id: res.body.id, miner, amount, status: "requested", busy: false });
      },

      async decide(r, ctx) {
        await decideOne(
          r,
          ctx,
          pickOf(
            r,
            payouts.filter((p) => p.status === "requested" && !p.busy),
          ),
        );
      },
    };

    async function cancelOne(r: Rng, ctx: string, byOperator: boolean) {
      const rec = pickOf(
        r,
        [...jobs.values()].filter((j) => !j.busy && j.known === "live"),
      );
      if (!rec) return count("cancel: nothing live");
      rec.busy = true;
      try {
        const what = `${ctx} ${byOperator ? "operator" : "client"} cancel ${rec.id}`;
        const res = byOperator
          ? await admin<JobBody & { code?: string }>(
              what,
              "POST",
              `/v1/admin/jobs/${rec.id}/cancel`,
              { reason: what },
              [200, 409],
            )
          : await call<JobBody & { code?: string }>(
              what,
              "POST",
              `/v1/jobs/${rec.id}/cancel`,
              { key: rec.client.key },
              [200, 409],
            );
        if (res.status === 200) {
          check(res.body.status === "cancelled", `${what}: answered ${res.text}`);
          rec.known = "cancelled";
        } else {
          // It ended meanwhile (completed, failed, timed out): the job says so.
          const j = await getJob(rec);
          check(rec.known !== "live", `${what}: 409 on a ${j.status} job`);
        }
        count(`${byOperator ? "operator" : "client"} cancel ${res.status}`);
      } finally {
        rec.busy = false;
      }
    }

    async function decideOne(r: Rng, ctx: string, p: PayoutRec | undefined) {
      if (!p) return count("decide: nothing requested");
      p.busy = true;
      const how = r() < 0.6 ? "approve" : "reject";
      const res = await admin<{ status: string }>(
        `${ctx} payout ${how} ${p.id}`,
        "POST",
        `/v1/admin/payouts/${p.id}/${how}`,
        how === "reject" ? { reason: "workload" } : {},
        [200],
      );
      p.status = how === "approve" ? "approved" : "rejected";
      if (p.status === "approved") p.miner.approved += p.amount;
      check(res.body.status === p.status, `${ctx}: payout ${how} answered ${JSON.stringify(res.body)}`);
      count(`payout ${p.status}`);
      if (r() < 0.25) {
        // A second decision is refused and moves nothing.
        await admin(`${ctx} payout decided again`, "POST", `/v1/admin/payouts/${p.id}/approve`, {}, [409]);
      }
    }

    // --- the seeded plan, run PARALLEL at a time --------------------------------------------------------------
    const weights: [string, number][] = [
      ["submit", 24],
      ["work", 25],
      ["flaky", 4],
      ["cancel", 4],
      ["adminCancel", 3],
      ["retry", 5],
      ["topUp", 9],
      ["late", 3],
      ["stripeRefund", 5],
      ["jobRefund", 7],
      ["payout", 4],
      ["decide", 4],
    ];
    const total = weights.reduce((s, [, w]) => s + w, 0);
    const plan = Array.from({ length: OPS }, (_, i) => {
      let x = rng() * total;
      let kind = weights[0]?.[0] as string;
      for (const [k, w] of weights) {
        kind = k;
        x -= w;
        if (x < 0) break;
      }
      // The first few submit and top up, so that the others have something to work on.
      return { i, kind: i < 6 ? (i % 3 === 2 ? "topUp" : "submit") : kind, seed: (rng() * 2 ** 32) >>> 0 };
    });
    const durations: [string, number][] = [];
    const run = async (ctx: string, fn: () => Promise<void>) => {
      const t0 = Date.now();
      try {
        await fn();
      } catch (err) {
        problems.push(`seed ${SEED}, ${ctx}: ${err instanceof Error ? err.message : String(err)}`);
      }
      durations.push([ctx, Date.now() - t0]);
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < plan.length) {
          const op = plan[next++] as (typeof plan)[number];
          const ctx = `op ${op.i} ${op.kind}`;
          await run(ctx, () =>
            (operations[op.kind] as (r: Rng, ctx: string) => Promise<void>)(mulberry32(op.seed), ctx),
          );
        }
      }),
    );
    const workloadMs = Date.now() - started;

    // --- quiesce: every event delivered, every job terminal, every payout decided ----------------------------
    const drainRng = mulberry32(SEED ^ 0xd1a1);
    await run("flush late deliveries", async () => {
      while (late.length > 0) {
        const item = late.shift();
        if (item) await deliverCheckout(item.s, item.evt, "late delivery (flush)");
      }
    });
    await run("drain", async () => {
      const deadline = Date.now() + 40_000;
      for (;;) {
        const live = [...jobs.values()].filter((j) => j.known === "live");
        if (live.length === 0) return;
        if (Date.now() > deadline)
          throw new Unexpected(`jobs not terminal after the drain: ${live.map((j) => j.id).join(", ")}`);
        // The flaky miner too (it is the only one cheap enough for some jobs), heartbeating first to be online.
        await call(
          "drain heartbeat",
          "POST",
          "/v1/miners/heartbeat",
          { key: m3.m.key, headers: m3.m.headers, body: {} },
          [200],
        );
        await Promise.all(miners.map((m) => work(m, 3, () => "complete", "drain")));
        await Promise.all(live.map(getJob));
      }
    });
    await run("decide the rest", async () => {
      for (const p of payouts.filter((x) => x.status === "requested")) await decideOne(drainRng, "drain", p);
    });
    beating = false;
    await Promise.all(beats);
    const quiescedMs = Date.now() - started;
    const summary = `seed ${SEED}: ${JSON.stringify(tally)}`;
    expect(problems, summary).toEqual([]);

    // --- what every job ended as, against what the workload saw --------------------------------------------------
    const jobList = [...jobs.values()];
    for (const rec of jobList) {
      const j = await getJob(rec);
      expect(["completed", "failed", "cancelled", "expired", "timed_out"], `${summary} ${rec.id}`).toContain(
        j.status,
      );
      if (rec.completedBy) {
        expect(j, `${summary} ${rec.id}`).toMatchObject({
          status: "completed",
          price: rec.price,
          miner_id: rec.completedBy.m.id,
        });
      } else
        expect(j.status, `${summary} ${rec.id}: completed, but no result was accepted`).not.toBe("completed");
    }

    // --- every balance equal to its entries; each entry explained ----------------------------------------------
    const ledgerOf = async (key: string) => {
      const items: LedgerItem[] = [];
      let cursor: string | null = null;
      do {
        const page: Res<{ items: LedgerItem[]; next_cursor: string | null }> = await call(
          "ledger",
          "GET",
          `/v1/account/ledger?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
          { key },
          [200],
        );
        items.push(...page.body.items);
        cursor = page.body.next_cursor;
      } while (cursor);
      return items;
    };
    const accountOf = async (key: string) =>
      (
        await call<{ available: number; held: number; earned?: number }>(
          "account",
          "GET",
          "/v1/account",
          { key },
          [200],
        )
      ).body;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const balances = new Map<string, { available: number; held: number; earned?: number }>();

    let clientsIn = 0;
    let clientsNow = 0;
    for (const c of clients) {
      const [bal, entries] = await Promise.all([accountOf(c.key), ledgerOf(c.key)]);
      balances.set(c.id, bal);
      const label = `${summary} ${c.name} ${c.id}`;
      expect(bal.available, label).toBe(sum(entries.map((e) => e.delta_available)));
      expect(bal.held, label).toBe(sum(entries.map((e) => e.delta_held)));
      expect(bal.held, `${label}: every job ended, nothing is held`).toBe(0);
      const mine = jobList.filter((j) => j.client === c);
      const mySessions = sessions.filter((s) => s.client === c);
      // Each entry is the workload's: the funding, its sessions, its jobs.
      const sessionIds = new Set(mySessions.map((s) => s.id));
      const jobIds = new Set(mine.map((j) => j.id));
      for (const e of entries) {
        const ok =
          (e.kind === "adjustment" && e.reason === "test funding") ||
          (e.kind === "payment" && sessionIds.has(String(e.reason).replace("Stripe Checkout ", ""))) ||
          (e.kind === "refund" && sessionIds.has(String(e.reason).replace("Stripe refund of ", ""))) ||
          (["hold", "release", "charge", "job_refund"].includes(e.kind) && jobIds.has(String(e.job_id)));
        expect(ok, `${label}: entry not explained by the workload: ${JSON.stringify(e)}`).toBe(true);
      }
      expect(
        entries.filter((e) => e.kind === "adjustment").map((e) => e.delta_available),
        label,
      ).toEqual([c.funding]);
      // Each session credited exactly once if paid, never otherwise; each refund taken back exactly once.
      for (const s of mySessions) {
        const credited = s.plan === "paid";
        const payments = entries.filter(
          (e) => e.kind === "payment" && e.reason === `Stripe Checkout ${s.id}`,
        );
        const slabel = `${label} session ${s.id} (${s.plan}; outcomes ${s.outcomes.join(",")})`;
        expect(
          payments.map((e) => [e.delta_available, e.delta_held]),
          slabel,
        ).toEqual(credited ? [[s.credits, 0]] : []);
        expect(s.outcomes.filter((o) => o === "credited").length, slabel).toBe(credited ? 1 : 0);
        const refunds = entries.filter((e) => e.kind === "refund" && e.reason === `Stripe refund of ${s.id}`);
        expect(sum(refunds.map((e) => e.delta_available)), slabel).toBe(
          0 - s.refundedCents * RATES[s.currency],
        );
      }
      // Each job: whatever was held came back or was charged; the charge is its price, less what was refunded.
      for (const j of mine) {
        const of = entries.filter((e) => e.job_id === j.id);
        expect(sum(of.map((e) => e.delta_held)), `${label} job ${j.id}`).toBe(0);
        expect(sum(of.map((e) => e.delta_available)), `${label} job ${j.id}`).toBe(-j.price + j.refunded);
        expect(of.filter((e) => e.kind === "charge").length, `${label} job ${j.id}`).toBe(
          j.completedBy ? 1 : 0,
        );
      }
      const topUps = sum(mySessions.filter((s) => s.plan === "paid").map((s) => s.credits));
      const takenBack = sum(mySessions.map((s) => s.refundedCents * RATES[s.currency]));
      const spent = sum(mine.map((j) => j.price - j.refunded));
      expect(bal.available, label).toBe(c.funding + topUps - takenBack - spent);
      clientsIn += c.funding + topUps - takenBack;
      clientsNow += bal.available + bal.held;
    }

    let minersNow = 0;
    for (const m of miners) {
      const [bal, entries] = await Promise.all([accountOf(m.m.key), ledgerOf(m.m.key)]);
      balances.set(m.m.accountId, bal);
      const label = `${summary} ${m.name} ${m.m.accountId}`;
      expect(bal.available, label).toBe(sum(entries.map((e) => e.delta_available)));
      expect(bal.held, label).toBe(sum(entries.map((e) => e.delta_held)));
      expect(bal.held, `${label}: every payout decided, nothing is held`).toBe(0);
      const done = jobList.filter((j) => j.completedBy === m);
      const netEarned = sum(done.map((j) => j.price - j.fee - j.fromMiner));
      expect(bal.earned ?? 0, label).toBe(netEarned);
      expect(bal.available, label).toBe(netEarned - m.approved);
      const doneIds = new Set(done.map((j) => j.id));
      const payoutIds = new Set(payouts.filter((p) => p.miner === m).map((p) => p.id));
      for (const e of entries) {
        const ok =
          (["earning", "job_refund"].includes(e.kind) && doneIds.has(String(e.job_id))) ||
          (e.kind === "payout" && payoutIds.has(String(e.reason)));
        expect(ok, `${label}: entry not explained by the workload: ${JSON.stringify(e)}`).toBe(true);
      }
      for (const j of done) {
        const of = entries.filter((e) => e.job_id === j.id);
        expect(
          of.filter((e) => e.kind === "earning").map((e) => e.delta_available),
          `${label} job ${j.id}`,
        ).toEqual([j.price - j.fee]);
        expect(sum(of.map((e) => e.delta_available)), `${label} job ${j.id}`).toBe(
          j.price - j.fee - j.fromMiner,
        );
      }
      for (const p of payouts.filter((x) => x.miner === m)) {
        const of = entries.filter((e) => e.kind === "payout" && e.reason === p.id);
        expect(
          [sum(of.map((e) => e.delta_available)), sum(of.map((e) => e.delta_held))],
          `${label} payout ${p.id} (${p.status})`,
        ).toEqual(p.status === "approved" ? [-p.amount, 0] : [0, 0]);
      }
      minersNow += bal.available + bal.held + m.approved;
    }

    // The fees of the workload's jobs, on the platform fee accounts (shared with every test: read by job id).
    const feeAccounts = [...new Set(jobList.map((j) => platformFeeAccountOf(j.id)))];
    const feeItems: Record<string, unknown>[] = [];
    for (const acct of feeAccounts) {
      let start: Record<string, unknown> | undefined;
      do {
        const page: QueryCommandOutput = await ddb().send(
          new QueryCommand({
            TableName: stack.tableName,
            KeyConditionExpression: "PK = :pk AND begins_with(SK, :led)",
            ExpressionAttributeValues: { ":pk": `ACCOUNT#${acct}`, ":led": "LEDGER#" },
            ExclusiveStartKey: start,
            ConsistentRead: true,
          }),
        );
        feeItems.push(...(page.Items ?? []).filter((i) => jobs.has(String(i.jobId))));
        start = page.LastEvaluatedKey;
      } while (start);
    }
    for (const j of jobList) {
      const of = feeItems.filter((i) => i.jobId === j.id);
      expect(
        of.every((i) => i.accountId === platformFeeAccountOf(j.id)),
        `${summary} fee of ${j.id}`,
      ).toBe(true);
      expect(
        of.filter((i) => i.kind === "fee").map((i) => i.deltaAvailable),
        `${summary} fee of ${j.id}`,
      ).toEqual(j.completedBy ? [j.fee] : []);
      expect(sum(of.map((i) => Number(i.deltaAvailable))), `${summary} fee of ${j.id}`).toBe(
        j.fee - j.fromFee,
      );
    }
    const feesNow = sum(feeItems.map((i) => Number(i.deltaAvailable)));

    // Conservation over the closed set: what came in (funding, top-ups, less Stripe refunds) and is no longer with
    // the clients is exactly what the jobs charged net of operator refunds, and exactly what the miners hold or were
    // paid out plus the platform's fees.
    const charged = sum(jobList.map((j) => j.price - j.refunded));
    expect(clientsIn - clientsNow, summary).toBe(charged);
    expect(minersNow + feesNow, summary).toBe(charged);

    // The ledger check: all entries sum to zero and none of the workload's accounts is off (or still moving).
    const ledgerCheck = await admin<{
      sum_of_entries: number;
      mismatches: { account_id: string }[];
      unstable: string[];
    }>("ledger check", "GET", "/v1/admin/ledger/check", undefined, [200]);
    const ours = new Set([...clients.map((c) => c.id), ...miners.map((m) => m.m.accountId)]);
    expect(ledgerCheck.body.sum_of_entries, summary).toBe(0);
    expect(
      ledgerCheck.body.mismatches.filter((m) => ours.has(m.account_id)),
      summary,
    ).toEqual([]);
    expect(
      ledgerCheck.body.unstable.filter((id) => ours.has(id)),
      summary,
    ).toEqual([]);

    const slowest = durations
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([op, ms]) => `${op} ${ms} ms`);
    console.info(
      `money workload ${summary}; ${jobList.length} jobs, ${sessions.length} sessions, ${payouts.length} payouts; charged ${charged}; workload ${workloadMs} ms (slowest: ${slowest.join(", ")}), quiesced at ${quiescedMs} ms, checked at ${Date.now() - started} ms`,
    );
  }, 120_000);
});

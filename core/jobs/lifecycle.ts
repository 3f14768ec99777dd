import * as v from "valibot";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import type { Actor } from "../db/outbox.ts";
import { deadlineItems } from "../db/sharded-pages.ts";
import { ConflictError, CoordError } from "../errors.ts";
import { findMiner, markOffline, silentMiners, touchMiner } from "../miners/miners.ts";
import { releaseSlot } from "../miners/store.ts";
import { poolAccessForJob, poolRefused } from "../pools/pools.ts";
import { assertQueuedQuota } from "../ratelimit/index.ts";
import { parse } from "../validate.ts";
import { deadlineShards } from "./item.ts";
import { type Job, jobView } from "./model.ts";
import { getOwnJob, loadJob } from "./read.ts";
import { releaseHold, requeue } from "./report.ts";
import { LEASED } from "./statuses.ts";
import { extendLease, refile } from "./store.ts";
import { holdItems } from "./submit.ts";
import { applyTransition, TransactionRefused } from "./transition.ts";

/**
 * Cancels a queued or leased job. A miner holding it learns at its next heartbeat; its late result gets 409. An
 * operator cancelling another account's job (`operator`) gives a reason, and the event names the operator (audited).
 */
export async function cancelJob(
  principal: Principal,
  id: string,
  correlationId?: string,
  operator?: { reason: string; actor?: Actor },
) {
  for (let i = 0; ; i++) {
    const job = await getOwnJob(principal, id);
    if (job.status === "cancelled") return jobView(job);
    if (!["queued", "assigned", "running"].includes(job.status)) {
      throw new ConflictError(`job is already ${job.status}`, { job_status: job.status });
    }
    const now = new Date();
    try {
      const next = await applyTransition(job, "cancel", {
        changes: { finishedAt: now.toISOString(), cancelRequested: true },
        with: {
          slot: job.status === "queued" ? undefined : releaseSlot(job, "cancelled"),
          hold: releaseHold(job, "cancelled", now, { leavesQueue: job.status === "queued" }),
        },
        event: operator ? { reason: operator.reason } : {},
        correlationId,
        actor: operator?.actor,
        at: now,
      });
      return jobView(next);
    } catch (err) {
      if (!(err instanceof TransactionRefused) || !err.jobChanged || i >= 5) throw err;
    }
  }
}

/** A client retries a failed or timed-out job: same id, a fresh attempt budget, held again. */
export async function retryJob(principal: Principal, id: string, correlationId?: string) {
  const job = await getOwnJob(principal, id);
  if (job.status !== "failed" && job.status !== "timed_out") {
    throw new ConflictError(`only failed or timed-out jobs can be retried; this one is ${job.status}`, {
      job_status: job.status,
    });
  }
  const now = new Date();
  const ttlMs = job.ttlSeconds * 1000;
  // A pool job goes back to its pool only while the account still belongs to it (as at submit).
  const poolCheck = job.constraints.pool
    ? await poolAccessForJob(job.accountId, job.constraints.pool)
    : undefined;
  try {
    const next = await applyTransition(job, "retry", {
      changes: {
        maxAttempts: job.attempt + (job.attemptBudget ?? job.maxAttempts),
        error: undefined,
        finishedAt: undefined,
        units: undefined,
        price: undefined,
        claimToken: undefined,
        minerId: undefined,
        minerAccountId: undefined,
        queueDeadline: new Date(now.getTime() + ttlMs).toISOString(),
        readyAt: now.toISOString(),
      },
      with: { hold: holdItems(job, now), pool: poolCheck },
      event: { priority: job.priority, max_price: job.maxPrice },
      correlationId,
      at: now,
    });
    return jobView(next);
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("hold")) {
      // The account refused the hold: its balance, or its queued quota (the old image says which).
      const account = err.oldImage("hold");
      if (Number(account?.available ?? 0) >= job.maxPrice)
        assertQueuedQuota(job.accountId, Number(account?.queued ?? 0));
      throw new CoordError("insufficient_funds", `the balance cannot hold max_price ${job.maxPrice}`);
    }
    if (err instanceof TransactionRefused && err.refusedBy("pool")) throw poolRefused();
    throw err;
  }
}

/** What a heartbeat says (the HTTP body, and the doorbell's heartbeat frame beside its `type`). */
export const HeartbeatFields = {
  status: v.optional(v.picklist(["online", "draining"] as const)),
  jobs: v.optional(
    v.pipe(
      v.array(
        v.object({
          job_id: v.pipe(v.string(), v.maxLength(100)),
          claim_token: v.pipe(v.string(), v.maxLength(100)),
        }),
      ),
      v.maxLength(64),
    ),
    [],
  ),
  metrics: v.optional(v.record(v.string(), v.number())),
};

export const HeartbeatInput = v.optional(v.object(HeartbeatFields), {});

export interface StopOrder {
  job_id: string;
  claim_token: string;
  reason: string;
}

/**
 * A miner's heartbeat, one write whatever the miner holds: marks it online (or draining) and moves its liveness
 * lease, which keeps every job it holds alive (leases are tied to the miner; each job's claim token still fences
 * it). The answer names every claim token the miner must stop, with the reason: those the coordinator ended since
 * the last heartbeat (cancelled, timed out, lease lost...), and any the body lists that the miner does not hold
 * (`not_found`). Listing jobs is optional.
 */
export async function heartbeat(
  principal: Principal,
  minerId: string | undefined,
  raw: unknown,
  opts: { intervalSeconds?: number } = {},
) {
  const body = parse(HeartbeatInput, raw, "body");
  const { before, status, leaseUntil } = await touchMiner(principal, minerId, body.status, opts);
  const stop: StopOrder[] = Object.entries(before.stops).map(([token, s]) => ({
    job_id: s.job_id,
    claim_token: token,
    reason: s.reason,
  }));
  const named = new Set(stop.map((s) => s.claim_token));
  for (const r of body.jobs) {
    if (named.has(r.claim_token) || before.held[r.job_id] === r.claim_token) continue;
    named.add(r.claim_token);
    stop.push({ job_id: r.job_id, claim_token: r.claim_token, reason: "not_found" });
  }
  return {
    miner_id: before.id,
    status,
    /** The jobs the miner holds, alive until `lease_expires_at` unless a heartbeat moves it again. */
    held: Object.entries(before.held).map(([job_id, claim_token]) => ({ job_id, claim_token })),
    lease_expires_at: leaseUntil,
    stop,
    stop_claim_tokens: stop.map((s) => s.claim_token),
    heartbeat_interval_seconds: opts.intervalSeconds ?? config.heartbeatSeconds,
    lease_seconds: config.leaseSeconds,
  };
}

/** Drain: the miner finishes what it holds and is given nothing new. */
export async function drainMiner(principal: Principal, minerId: string | undefined) {
  const { before } = await touchMiner(principal, minerId, "draining", { takeStops: false });
  return { miner_id: before.id, status: "draining" as const, active_jobs: before.active };
}

/**
 * A job's lease is the miner's: while the miner that holds it (same claim token in its `held` map) keeps its
 * liveness lease, the job is alive. Moves the job's own lease (and so its deadline-index entry) up to the miner's, so
 * that the sweep and the timer look again only then: one read and one write per job per lease length, whatever the
 * heartbeat rate. False when the miner no longer holds the job or its lease has passed too.
 */
async function extendFromMiner(job: Job, now: Date): Promise<boolean> {
  if (!job.minerId || !job.claimToken) return false;
  const miner = await findMiner(job.minerId);
  const until = miner?.leaseUntil;
  if (!miner || miner.held[job.id] !== job.claimToken || !until || until <= now.toISOString()) return false;
  // Refused only if the job moved on meanwhile, which the caller's next look sees: renewed either way.
  await extendLease(job, until);
  return true;
}

/** Applies whichever deadline of the job has passed: queue TTL, execution timeout, or lease lapse. */
export async function enforceDeadline(job: Job, now = new Date()): Promise<string | undefined> {
  const iso = now.toISOString();
  try {
    if (job.status === "queued" && job.queueDeadline <= iso) {
      await applyTransition(job, "expire", {
        changes: { finishedAt: iso },
        with: { hold: releaseHold(job, "expired", now, { leavesQueue: true }) },
        event: {},
        at: now,
      });
      return "expired";
    }
    if (!LEASED.has(job.status)) return undefined;
    if (job.timeoutAt && job.timeoutAt <= iso) {
      await applyTransition(job, "time_out", {
        changes: {
          finishedAt: iso,
          error: { code: "timed_out", message: `no result within ${job.timeoutSeconds} s` },
        },
        with: { slot: releaseSlot(job, "timed_out"), hold: releaseHold(job, "timed_out", now) },
        event: {},
        at: now,
      });
      return "timed_out";
    }
    if (job.leaseExpiresAt && job.leaseExpiresAt <= iso) {
      // The job's own lease has passed; the miner's liveness lease may still hold it (heartbeats move only that).
      if (await extendFromMiner(job, now)) return "renewed";
      // Conditional on the lease we saw, so a progress report that renewed it meanwhile wins.
      const condition = { expression: "leaseExpiresAt = :seen", values: { ":seen": job.leaseExpiresAt } };
      if (job.attempt < job.maxAttempts) {
        await requeue(job, "lease_expired", now, { condition, stop: "lease_lost" });
        return "requeued";
      }
      await applyTransition(job, "exhaust", {
        changes: {
          finishedAt: iso,
          error: {
            code: "attempts_exhausted",
            message: `the lease lapsed on all ${job.maxAttempts} attempts`,
          },
        },
        condition,
        with: { slot: releaseSlot(job, "lease_lost"), hold: releaseHold(job, "attempts_exhausted", now) },
        event: { error_code: "attempts_exhausted" },
        at: now,
      });
      return "failed";
    }
  } catch (err) {
    if (err instanceof TransactionRefused) return undefined; // it changed meanwhile; the next sweep looks again
    throw err;
  }
  return undefined;
}

/**
 * The deadline sweep (cron): every job whose next deadline has passed, through the sparse deadline index, plus
 * miners whose heartbeats stopped. Safe to run concurrently and repeatedly: every change is conditional.
 */
export async function sweep(now = new Date()): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const iso = now.toISOString();
  for await (const item of deadlineItems(deadlineShards(), { before: iso })) {
    const fresh = await loadJob(String(item.id));
    if (!fresh) continue;
    const outcome = await enforceDeadline(fresh, now);
    if (outcome) counts[outcome] = (counts[outcome] ?? 0) + 1;
    // An early look (the index entry is a lower bound of the next deadline): file the job at that deadline.
    else if (await refile(fresh)) counts.refiled = (counts.refiled ?? 0) + 1;
  }
  // The status index sorts online and draining miners by when they go silent (core/miners/miners.ts, `silentAt`).
  for (const status of ["online", "draining"] as const) {
    for (const miner of await silentMiners(status, iso)) {
      if (await markOffline(miner)) counts.miners_offline = (counts.miners_offline ?? 0) + 1;
    }
  }
  return counts;
}

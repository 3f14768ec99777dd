import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { batchGetAll } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { deadlineItems } from "../db/sharded-pages.ts";
import { ConflictError, CoordError } from "../errors.ts";
import { isId } from "../ids.ts";
import { getMiner, type MinerStatus, markOffline, silentMiners, touchMiner } from "../miners/miners.ts";
import { poolAccessForJob, poolRefused } from "../pools/pools.ts";
import { parse } from "../validate.ts";
import { releaseSlot } from "./claim.ts";
import { deadlineShards, jobItem } from "./item.ts";
import { type Job, JobItem, jobView } from "./model.ts";
import { getOwnJob, loadJob } from "./read.ts";
import { everHeldBy, releaseHold, requeue } from "./report.ts";
import { LEASED } from "./statuses.ts";
import { holdItems } from "./submit.ts";
import { applyTransition, TransactionRefused } from "./transition.ts";

/** Cancels a queued or leased job. A miner holding it learns at its next heartbeat; its late result gets 409. */
export async function cancelJob(principal: Principal, id: string, correlationId?: string) {
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
        with: [
          ...(job.status === "queued" ? [] : [releaseSlot(job.minerId as string)]),
          ...releaseHold(job, "cancelled", now, { leavesQueue: job.status === "queued" }),
        ],
        event: {},
        correlationId,
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
  const poolCheck = job.constraints.pool ? [await poolAccessForJob(job.accountId, job.constraints.pool)] : [];
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
      with: [...holdItems(job, now), ...poolCheck],
      event: { priority: job.priority, max_price: job.maxPrice },
      correlationId,
      at: now,
    });
    return jobView(next);
  } catch (err) {
    if (err instanceof TransactionRefused && err.failedAt(1)) {
      throw new CoordError("insufficient_funds", `the balance cannot hold max_price ${job.maxPrice}`);
    }
    if (
      err instanceof TransactionRefused &&
      poolCheck.length &&
      err.reasons.at(-2) === "ConditionalCheckFailed"
    ) {
      throw poolRefused();
    }
    throw err;
  }
}

export const HeartbeatInput = v.optional(
  v.object({
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
  }),
  {},
);

export interface StopOrder {
  job_id: string;
  claim_token: string;
  reason: string;
}

/**
 * A miner's heartbeat: marks it online (or draining), renews the lease of every job it reports holding with a
 * current claim token, and names the claim tokens it must stop (cancelled, expired, timed out, or moved on).
 */
export async function heartbeat(principal: Principal, minerId: string | undefined, raw: unknown) {
  const body = parse(HeartbeatInput, raw, "body");
  const miner = await getMiner(principal, minerId);
  const status: MinerStatus = body.status ?? (miner.status === "draining" ? "draining" : "online");
  await touchMiner(miner, status);
  const stop: StopOrder[] = [];
  // A job named twice (same token) is renewed once.
  const reported = [...new Map(body.jobs.map((r) => [`${r.job_id}\n${r.claim_token}`, r])).values()];
  const now = new Date();
  const lease = new Date(now.getTime() + config.leaseSeconds * 1000).toISOString();
  const jobs = new Map<string, Job>();
  // Ids that are no job's (malformed, any length) are not looked up: they are simply not found.
  const lookups = reported.filter((r) => isId(r.job_id, "job")).map((r) => keys.job(r.job_id));
  for (const item of await batchGetAll(lookups)) {
    if (item.expiresAt && Number(item.expiresAt) < now.getTime() / 1000) continue; // TTL-expired: gone
    jobs.set(String(item.id), v.parse(JobItem, item));
  }
  for (const r of reported) {
    const job = jobs.get(r.job_id);
    if (!job || job.claimToken !== r.claim_token || job.minerId !== miner.id || !LEASED.has(job.status)) {
      stop.push({
        job_id: r.job_id,
        claim_token: r.claim_token,
        // A job no miner of this account ever held is "not_found", as one that does not exist (no probing).
        reason:
          !job || !everHeldBy(job, miner.accountId)
            ? "not_found"
            : LEASED.has(job.status) || job.status === "queued"
              ? "lease_lost"
              : job.status,
      });
      continue;
    }
    const renewed = { ...job, leaseExpiresAt: lease };
    const item = jobItem(renewed);
    try {
      // A renewal is not a transition: no version bump, no event. It is conditional on the token still holding.
      await ddb().send(
        new UpdateCommand({
          TableName: config.tableName,
          Key: keys.job(job.id),
          UpdateExpression: "SET leaseExpiresAt = :lease, GSI3PK = :g3pk, GSI3SK = :g3sk",
          ConditionExpression: "claimToken = :token AND #s IN (:a, :r)",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: {
            ":lease": lease,
            ":g3pk": item.GSI3PK,
            ":g3sk": item.GSI3SK,
            ":token": r.claim_token,
            ":a": "assigned",
            ":r": "running",
          },
        }),
      );
    } catch (err) {
      if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
      const now2 = await loadJob(job.id);
      stop.push({
        job_id: r.job_id,
        claim_token: r.claim_token,
        reason: now2 && !LEASED.has(now2.status) ? now2.status : "lease_lost",
      });
    }
  }
  return {
    miner_id: miner.id,
    status,
    stop,
    stop_claim_tokens: stop.map((s) => s.claim_token),
    heartbeat_interval_seconds: config.heartbeatSeconds,
    lease_seconds: config.leaseSeconds,
  };
}

/** Drain: the miner finishes what it holds and is given nothing new. */
export async function drainMiner(principal: Principal, minerId: string | undefined) {
  const miner = await getMiner(principal, minerId);
  await touchMiner(miner, "draining");
  return { miner_id: miner.id, status: "draining" as const, active_jobs: miner.active };
}

/** Applies whichever deadline of the job has passed: queue TTL, execution timeout, or lease lapse. */
export async function enforceDeadline(job: Job, now = new Date()): Promise<string | undefined> {
  const iso = now.toISOString();
  try {
    if (job.status === "queued" && job.queueDeadline <= iso) {
      await applyTransition(job, "expire", {
        changes: { finishedAt: iso },
        with: releaseHold(job, "expired", now, { leavesQueue: true }),
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
        with: [releaseSlot(job.minerId as string), ...releaseHold(job, "timed_out", now)],
        event: {},
        at: now,
      });
      return "timed_out";
    }
    if (job.leaseExpiresAt && job.leaseExpiresAt <= iso) {
      // Conditional on the lease we saw, so a heartbeat that renewed it meanwhile wins.
      const condition = { expression: "leaseExpiresAt = :seen", values: { ":seen": job.leaseExpiresAt } };
      if (job.attempt < job.maxAttempts) {
        await requeue(job, "lease_expired", now, { condition });
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
        with: [releaseSlot(job.minerId as string), ...releaseHold(job, "attempts_exhausted", now)],
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
    const outcome = fresh && (await enforceDeadline(fresh, now));
    if (outcome) counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  const silentBefore = new Date(now.getTime() - 3 * config.heartbeatSeconds * 1000).toISOString();
  for (const status of ["online", "draining"] as const) {
    for (const miner of await silentMiners(status, silentBefore)) {
      if (await markOffline(miner)) counts.miners_offline = (counts.miners_offline ?? 0) + 1;
    }
  }
  return counts;
}

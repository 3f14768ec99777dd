import * as v from "valibot";
import { queuedCounter } from "../accounts/store.ts";
import {
  ArtifactDigests,
  type ClaimArtifacts,
  claimArtifacts,
  measureOutputs,
} from "../artifacts/references.ts";
import { artifactPut } from "../artifacts/store.ts";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import type { TransactItem } from "../db/outbox.ts";
import { ConflictError, CoordError, NotFoundError, ValidationError } from "../errors.ts";
import { isId } from "../ids.ts";
import { assertStorableJson } from "../json.ts";
import { type Posting, platformFee, platformFeeAccountOf, postingItems } from "../ledger/ledger.ts";
import { cachedMiner } from "../miners/cache.ts";
import { getMiner } from "../miners/miners.ts";
import { releaseSlot } from "../miners/store.ts";
import { issueReceipt, jsonSha256, verifyCosign } from "../receipts/receipt.ts";
import { findService } from "../services/registry.ts";
import { unbatchedListing } from "../settlement/store.ts";
import { parse } from "../validate.ts";
import { startInPlace } from "./in-place.ts";
import type { Job } from "./model.ts";
import { payloadText } from "./payload.ts";
import { loadJob } from "./read.ts";
import { isTerminal, LEASED } from "./statuses.ts";
import { getInput, getJobAndInputHash, resultPut } from "./store.ts";
import { applyTransition, TransactionRefused } from "./transition.ts";

const ClaimToken = v.pipe(
  v.string("claim_token is required"),
  v.minLength(1, "claim_token is required"),
  v.maxLength(100),
);

export const StartInput = v.object({ claim_token: ClaimToken });
export const ProgressInput = v.object({
  claim_token: ClaimToken,
  progress: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  message: v.optional(v.pipe(v.string(), v.maxLength(1000))),
});
export const ResultInput = v.object({
  claim_token: ClaimToken,
  output: v.unknown(),
  /** Self-reported usage: recorded (as JSON text, like the output), never used for billing. */
  usage: v.optional(
    v.pipe(
      v.record(
        v.pipe(v.string(), v.minLength(1, "usage keys must not be empty"), v.maxLength(64)),
        v.pipe(v.number(), v.finite("usage values must be finite numbers")),
      ),
      v.check((u) => Object.keys(u).length <= 50, "at most 50 usage entries"),
    ),
  ),
  output_sha256: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "hex SHA-256"))),
  signature: v.optional(v.pipe(v.string(), v.maxLength(200))),
});
export const FailInput = v.object({
  claim_token: ClaimToken,
  error_code: v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(100),
    v.regex(/^[a-z0-9_.-]+$/i, "letters, digits, '_', '.', '-'"),
  ),
  error_message: v.optional(v.pipe(v.string(), v.maxLength(4000))),
  retryable: v.optional(v.boolean(), false),
});

/**
 * The job a miner reports on, if that miner holds it with this claim token. A stale token (the lease lapsed and
 * the job moved on, or another attempt holds it) is 409 `stale_claim`; a job that already ended is 409 `conflict`.
 * A job that no miner of this miner's account ever held is 404, exactly as a job that does not exist: a guessed
 * job id and token learn nothing about other accounts' jobs.
 */
/**
 * The caller's miner as a report needs it (id and account), without a read when it can be had: from the capability
 * cache, or from the job itself when the job names the caller's miner and account as its holder. Otherwise it is
 * read (404 for a miner that is not the caller's).
 */
async function reportingMiner(
  principal: Principal,
  minerId: string | undefined,
  job: Job | undefined,
): Promise<{ id: string; accountId: string }> {
  const cached = minerId ? cachedMiner(minerId) : undefined;
  if (cached && cached.accountId === principal.accountId) return cached;
  if (minerId && job?.minerId === minerId && job.minerAccountId === principal.accountId) {
    return { id: minerId, accountId: principal.accountId };
  }
  return getMiner(principal, minerId);
}

async function heldJob(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  token: string,
  withInputHash = false,
): Promise<{ job: Job } & Submitted> {
  if (!withInputHash) return { job: await assertHeld(principal, minerId, await loadJob(jobId), token) };
  const read = isId(jobId, "job") ? await getJobAndInputHash(jobId) : {};
  return {
    job: await assertHeld(principal, minerId, read.job, token),
    inputSha256: read.inputSha256,
    inputArtifacts: read.inputArtifacts,
  };
}

/** What the submit recorded of the input, for the receipt. */
interface Submitted {
  inputSha256?: string;
  inputArtifacts?: unknown[];
}

/** `job` if the caller's miner holds it under `token`; otherwise the error that says why (see heldJob). */
async function assertHeld(
  principal: Principal,
  minerId: string | undefined,
  job: Job | undefined,
  token: string,
): Promise<Job> {
  const miner = await reportingMiner(principal, minerId, job);
  if (!job) throw new NotFoundError("job");
  if (job.claimToken !== token || job.minerId !== miner.id) {
    if (!everHeldBy(job, miner.accountId)) throw new NotFoundError("job");
    // How the job moved on is told only to accounts whose miners held it.
    throw new CoordError("stale_claim", "this claim token no longer holds the job", {
      job_status: job.status,
      attempt: job.attempt,
    });
  }
  if (isTerminal(job.status))
    throw new ConflictError(`job is already ${job.status}`, { job_status: job.status });
  if (!LEASED.has(job.status))
    throw new CoordError("stale_claim", "the job is no longer leased", { job_status: job.status });
  return job;
}

/** Whether a miner of `accountId` holds the job or ever held it (a claim records the account in `heldBy`). */
export function everHeldBy(job: Job, accountId: string): boolean {
  return job.minerAccountId === accountId || (job.heldBy?.includes(accountId) ?? false);
}

/**
 * Runs a miner report against a fresh read, once more if the job changed underneath. Not against the copy this
 * instance last wrote: the report's transaction replaces the whole item under a version condition, and some writes
 * leave the version alone (a lease moved up to the miner's), so a cached copy could put back what they changed.
 */
async function onHeld<T>(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  token: string,
  fn: (job: Job, submitted: Submitted) => Promise<T>,
  opts: { withInputHash?: boolean } = {},
): Promise<T> {
  for (let i = 0; ; i++) {
    const { job, ...submitted } = await heldJob(principal, minerId, jobId, token, opts.withInputHash);
    try {
      return await fn(job, submitted);
    } catch (err) {
      if (!(err instanceof TransactionRefused) || !err.jobChanged || i >= 3) throw err;
    }
  }
}

const tokenCondition = (token: string) => ({
  expression: "claimToken = :token",
  values: { ":token": token },
});

function leaseFrom(now: Date) {
  return new Date(now.getTime() + config.leaseSeconds * 1000).toISOString();
}

export async function startJob(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  raw: unknown,
) {
  const { claim_token } = parse(StartInput, raw, "body");
  // No read first: the update's condition names the miner (the header's id, of the caller's account) and the token.
  if (!isId(jobId, "job") || !isId(minerId, "mnr"))
    return assertHeld(principal, minerId, undefined, claim_token);
  const miner = { id: minerId, accountId: principal.accountId };
  const outcome = await startInPlace(jobId, claim_token, miner, new Date());
  if ("started" in outcome) return outcome.started;
  // Refused: a repeated start changes nothing; anything else is told as a report on a job not held would be.
  const job = await assertHeld(principal, minerId, outcome.refused, claim_token);
  if (job.status === "running") return job;
  throw new ConflictError(`a ${job.status} job cannot start`, { job_status: job.status });
}

/**
 * Fresh presigned links for a job the caller's miner holds (its input's artifacts, its output slots), valid until
 * the lease ends: after a heartbeat moved the lease, or when the claim's expired. A stale claim gets none (409).
 */
export async function artifactLinks(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  raw: unknown,
): Promise<ClaimArtifacts> {
  const { claim_token } = parse(StartInput, raw, "body");
  const { job } = await heldJob(principal, minerId, jobId, claim_token);
  const now = Date.now();
  return (
    (await claimArtifacts(job, await getInput(job.id), now)) ?? {
      inputs: [],
      outputs: [],
      expires_at: job.leaseExpiresAt ?? new Date(now).toISOString(),
    }
  );
}

export async function reportProgress(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  raw: unknown,
) {
  const body = parse(ProgressInput, raw, "body");
  return onHeld(principal, minerId, jobId, body.claim_token, async (job) => {
    const now = new Date();
    return applyTransition(job, "progress", {
      changes: {
        progress: body.progress,
        progressMessage: body.message,
        startedAt: job.startedAt ?? now.toISOString(),
        leaseExpiresAt: leaseFrom(now),
      },
      condition: tokenCondition(body.claim_token),
      event: { progress: body.progress, ...(body.message ? { message: body.message } : {}) },
      at: now,
    });
  });
}

/**
 * Releases the client's hold (everything back to available). A job leaving the queue also moves the account's
 * queued counter, in the same update: a transaction may touch the account item only once.
 */
export function releaseHold(
  job: Job,
  reason: string,
  at: Date,
  opts: { leavesQueue?: boolean } = {},
): TransactItem[] {
  if (job.maxPrice === 0) return opts.leavesQueue ? [queuedCounter(job.accountId, -1)] : [];
  return postingItems(
    [
      {
        accountId: job.accountId,
        kind: "release",
        deltaAvailable: job.maxPrice,
        deltaHeld: -job.maxPrice,
        jobId: job.id,
        reason,
        ...(opts.leavesQueue ? { alsoAdd: { queued: -1 } } : {}),
      },
    ],
    at,
  );
}

export async function completeJob(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  raw: unknown,
) {
  const body = parse(ResultInput, raw, "body");
  // Refused before the job is touched: the job stays with the miner, which may send a result it can store.
  assertStorableJson(body.output, "body.output");
  const { json: outputJson } = payloadText(body.output, "output", "body.output");
  return onHeld(
    principal,
    minerId,
    jobId,
    body.claim_token,
    async (job, submitted) => {
      const now = new Date();
      const def = findService(job.service);
      // Only a meter that prices by the input (frames, GPUs) needs it read back.
      const input = def?.meterReadsInput ? await getInput(job.id) : undefined;
      const readInput = async () => input ?? (await getInput(job.id));
      // Output artifacts the result names are measured from their objects (422, nothing written, if one is not
      // this attempt's, not uploaded, or not what the result says).
      const outputs = await measureOutputs(job, def, body.output, readInput, now);
      // Metering is the coordinator's: from its own clock, from start (or assignment) to this result.
      const observedMs = now.getTime() - Date.parse(job.startedAt ?? job.assignedAt ?? job.createdAt);
      const units = Math.max(0, def?.meter(input, observedMs) ?? 0);
      const price = Math.min((job.unitPrice ?? 0) * units, job.maxPrice);
      const fee = platformFee(price);
      const money = price === 0 && job.maxPrice === 0 ? [] : chargeItems(job, price, fee, now);
      const outputSha256 = jsonSha256(body.output);
      if (body.output_sha256 !== undefined && body.output_sha256 !== outputSha256) {
        throw new ValidationError([
          {
            path: "body.output_sha256",
            message: `is not the SHA-256 of the output's canonical JSON (RFC 8785): ${outputSha256}`,
          },
        ]);
      }
      // Refused (422) before anything is written when a miner with a key did not sign this output.
      const cosign = await verifyCosign(job, body.claim_token, outputSha256, body.signature);
      const receipt = await issueReceipt(job, {
        finishedAt: now,
        units,
        price,
        fee,
        outputSha256,
        // Recorded by the submit; a job older than its event's retention has its input read and hashed.
        inputSha256: submitted.inputSha256 ?? jsonSha256(await readInput()),
        artifacts: [...v.parse(ArtifactDigests, submitted.inputArtifacts ?? []), ...outputs.digests],
        cosign,
      });
      return applyTransition(job, "complete", {
        changes: {
          finishedAt: now.toISOString(),
          units,
          price,
          fee,
          progress: 1,
          claimToken: job.claimToken,
        },
        condition: tokenCondition(body.claim_token),
        with: {
          slot: releaseSlot(job),
          // JSON text, not maps: stored and read back exactly (core/jobs/payload.ts).
          result: resultPut(
            job.id,
            {
              outputJson,
              usageJson: body.usage ? JSON.stringify(body.usage) : undefined,
              // The output's hash and the miner's co-signature are in the receipt: not stored twice.
              receiptJson: JSON.stringify(receipt),
            },
            // The receipt waits on this item for a settlement batch: no request of settlement's own.
            unbatchedListing(job.id, now),
          ),
          money,
          artifacts: outputs.artifacts.map(artifactPut),
        },
        event: {
          miner_id: job.minerId as string,
          units,
          price,
          receipt_id: String(receipt.receipt.receipt_id),
          receipt_sha256: jsonSha256(receipt),
        },
        at: now,
      });
    },
    { withInputHash: true },
  );
}

/**
 * A completion's money, in its own transaction: the client's hold becomes the charge (the unused part back to
 * available), the miner earns the price less the platform fee, and the fee goes to the job's platform fee account.
 */
function chargeItems(job: Job, price: number, fee: number, at: Date): TransactItem[] {
  const postings: Posting[] = [
    {
      accountId: job.accountId,
      kind: "charge",
      deltaAvailable: job.maxPrice - price,
      deltaHeld: -job.maxPrice,
      jobId: job.id,
    },
    {
      accountId: job.minerAccountId as string,
      kind: "earning",
      deltaAvailable: price - fee,
      deltaHeld: 0,
      jobId: job.id,
      alsoAdd: { earned: price - fee },
    },
    {
      accountId: platformFeeAccountOf(job.id),
      kind: "fee",
      deltaAvailable: fee,
      deltaHeld: 0,
      jobId: job.id,
    },
  ];
  return postingItems(
    postings.filter((p) => p.deltaAvailable !== 0 || p.deltaHeld !== 0),
    at,
  );
}

/** A miner's failure report: retryable failures with attempts left go back to the queue, others fail the job. */
export async function failJob(
  principal: Principal,
  minerId: string | undefined,
  jobId: string,
  raw: unknown,
) {
  const body = parse(FailInput, raw, "body");
  return onHeld(principal, minerId, jobId, body.claim_token, async (job) => {
    const now = new Date();
    const error = { code: body.error_code, message: body.error_message, retryable: body.retryable };
    if (body.retryable && job.attempt < job.maxAttempts) {
      return requeue(job, `miner_failed:${body.error_code}`, now, {
        error,
        condition: tokenCondition(body.claim_token),
      });
    }
    return applyTransition(job, "fail", {
      changes: { finishedAt: now.toISOString(), error },
      condition: tokenCondition(body.claim_token),
      with: { slot: releaseSlot(job), hold: releaseHold(job, "failed", now) },
      event: {
        error_code: body.error_code,
        ...(body.error_message ? { error_message: body.error_message } : {}),
      },
      at: now,
    });
  });
}

/** Back to the queue for the next attempt; the old claim token dies with the lease. */
export function requeue(
  job: Job,
  reason: string,
  now: Date,
  opts: {
    error?: Job["error"];
    condition?: { expression: string; values: Record<string, unknown> };
    /** The coordinator took the job back (lease lapse): why, for the miner's next heartbeat. */
    stop?: string;
  } = {},
) {
  return applyTransition(job, "requeue", {
    changes: {
      claimToken: undefined,
      minerId: undefined,
      minerAccountId: undefined,
      unitPrice: undefined,
      assignedAt: undefined,
      startedAt: undefined,
      leaseExpiresAt: undefined,
      timeoutAt: undefined,
      progress: undefined,
      progressMessage: undefined,
      error: opts.error,
    },
    condition: opts.condition,
    with: { slot: releaseSlot(job, opts.stop), queued: queuedCounter(job.accountId, 1) },
    event: { reason, queue_deadline: job.queueDeadline },
    at: now,
  });
}

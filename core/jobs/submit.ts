import * as v from "valibot";
import { accountStanding, forgetStanding, noteHeld } from "../accounts/standing.ts";
import { checkInputArtifacts } from "../artifacts/references.ts";
import type { Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import { outboxPut, type TransactItem } from "../db/outbox.ts";
import { shardOf } from "../db/shard.ts";
import { CoordError, ValidationError } from "../errors.ts";
import {
  findReplay,
  idempotencyRecord,
  parseIdempotencyKey,
  requestHash,
} from "../idempotency/idempotency.ts";
import { newId } from "../ids.ts";
import { assertStorableJson } from "../json.ts";
import { postingItems } from "../ledger/ledger.ts";
import { ConstraintsSchema, mergeConstraints } from "../matching/constraints.ts";
import { poolAccessForJob, poolRefused } from "../pools/pools.ts";
import { assertQueuedQuota, maxQueuedPerAccount } from "../ratelimit/index.ts";
import { jsonSha256 } from "../receipts/receipt.ts";
import { defaultConstraints, findService, maxUnits, validateInput } from "../services/registry.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { webhookUrlProblems } from "../webhooks/address.ts";
import { publishJob, rememberInput } from "./changes.ts";
import { type Claimed, claimChanges, waitingPollFor } from "./claim.ts";
import { firstSweep, queueShards } from "./item.ts";
import type { HandOff } from "./matcher.ts";
import { type Job, type JobView, jobRef, jobView } from "./model.ts";
import { payloadText } from "./payload.ts";
import { inputPut, jobPut } from "./store.ts";
import { TransactionRefused, transact } from "./transition.ts";
import { notifyWork } from "./wakeup.ts";

export { MAX_INLINE_BYTES } from "./payload.ts";
export const LIMITS = {
  ttl: { min: 1, max: 7 * 86_400 },
  timeout: { min: 1, max: 86_400 },
  attempts: { min: 1, max: 10 },
  priority: { min: 0, max: 9, default: 5 },
};

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

export const SubmitInput = v.object({
  service: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  input: v.unknown(),
  constraints: v.optional(ConstraintsSchema),
  priority: v.optional(int(LIMITS.priority.min, LIMITS.priority.max)),
  max_price: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
  ttl_seconds: v.optional(int(LIMITS.ttl.min, LIMITS.ttl.max)),
  timeout_seconds: v.optional(int(LIMITS.timeout.min, LIMITS.timeout.max)),
  max_attempts: v.optional(int(LIMITS.attempts.min, LIMITS.attempts.max)),
  // Refused hosts (private, loopback, link-local, metadata) fail here; delivery checks resolved addresses again.
  webhook_url: v.optional(
    v.pipe(
      v.string(),
      v.url("webhook_url must be an absolute URL"),
      v.maxLength(2048),
      v.check(
        (u) => webhookUrlProblems(u).length === 0,
        (i) => webhookUrlProblems(String(i.input)).join("; "),
      ),
    ),
  ),
  // Stored as a map on the job item: keys are 1..64 characters (DynamoDB refuses an empty map key).
  metadata: v.optional(
    v.pipe(
      v.record(v.pipe(v.string(), v.maxLength(64)), v.pipe(v.string(), v.maxLength(512))),
      v.check((m) => !Object.hasOwn(m, ""), "metadata keys must not be empty (1 to 64 characters)"),
      v.check((m) => Object.keys(m).length <= 20, "at most 20 metadata keys"),
    ),
  ),
});
export type SubmitInput = v.InferOutput<typeof SubmitInput>;

/** How far each queued job of an account pushes its next job back, for fair share within a priority. */
const fairQuantumMs = () => setting("COORD_FAIR_QUANTUM_MS");

export interface SubmitResult {
  status: 201;
  job: JobView;
  replayed: boolean;
}

/**
 * Submits a job: validates the request and the service input, holds `max_price` from the balance (402 if it cannot
 * be held), and writes the job, its input, the hold and the `job.submitted.v1` event in one transaction. With an
 * Idempotency-Key the idempotency record is part of that same transaction, so concurrent duplicates create one job
 * and every replay returns the first response.
 */
export async function submitJob(
  principal: Principal,
  raw: unknown,
  opts: {
    idempotencyKey?: string;
    correlationId?: string;
    /** What an Idempotency-Key binds to: the route and the body as sent (default `POST /v1/jobs` and `raw`). */
    request?: { route: string; body: unknown };
  } = {},
): Promise<SubmitResult> {
  const body = parse(SubmitInput, raw, "body");
  // Before anything walks the input (the request hash, the service schema): what JSON text cannot carry is 422.
  assertStorableJson(body.input, "body.input");
  const idemKey = parseIdempotencyKey(opts.idempotencyKey);
  const hash = idemKey
    ? requestHash(opts.request?.route ?? "POST /v1/jobs", opts.request ? opts.request.body : raw)
    : undefined;
  if (idemKey) {
    const replay = await findReplay<JobView>(principal.accountId, idemKey, hash as string);
    if (replay) return { status: 201, job: replay, replayed: true };
  }

  const def = findService(body.service);
  if (!def)
    throw new ValidationError([{ path: "body.service", message: `unknown service '${body.service}'` }]);
  const input = validateInput(def, body.input);
  // Every artifact the input references is the caller's, arrived and within the service's limits (422 otherwise).
  const inputArtifacts = await checkInputArtifacts(principal.accountId, def, input);
  const { json: inputJson, bytes: inputBytes } = payloadText(input, "input", "input");
  const inputSha256 = jsonSha256(input);
  const timeoutSeconds = body.timeout_seconds ?? def.defaults.timeout_seconds;
  const ttlSeconds = body.ttl_seconds ?? def.defaults.ttl_seconds;
  const maxPrice =
    body.max_price ?? def.pricing.default_unit_price * Math.max(1, maxUnits(def, input, timeoutSeconds));
  const constraints = mergeConstraints(defaultConstraints(def, input), body.constraints);
  // A job may target a private pool only if its account owns or belongs to it (422 on body.constraints.pool).
  const poolCheck = constraints.pool
    ? await poolAccessForJob(principal.accountId, constraints.pool)
    : undefined;

  // Fair share: an account's queued backlog pushes its new jobs back, so one client cannot starve the others. The
  // standing is cached (core/accounts/standing.ts); the transaction checks the balance and the quota exactly.
  let standing = await accountStanding(principal.accountId);
  if (standing.available < maxPrice) standing = await accountStanding(principal.accountId, true);
  const queued = standing.queued;
  assertQueuedQuota(principal.accountId, queued);
  if (standing.available < maxPrice) throw insufficientFunds(maxPrice, standing.available);
  const now = new Date();
  const job: Job = {
    id: newId("job", now.getTime()),
    accountId: principal.accountId,
    service: def.id,
    status: "queued",
    version: 1,
    attempt: 0,
    maxAttempts: body.max_attempts ?? def.defaults.max_attempts,
    attemptBudget: body.max_attempts ?? def.defaults.max_attempts,
    priority: body.priority ?? LIMITS.priority.default,
    maxPrice,
    ttlSeconds,
    timeoutSeconds,
    constraints,
    inputBytes,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    queueDeadline: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    readyAt: new Date(now.getTime() + queued * fairQuantumMs()).toISOString(),
    webhookUrl: body.webhook_url,
    metadata: body.metadata,
    correlationId: opts.correlationId,
  };
  job.sweepAt = firstSweep(job);
  // A poll of this instance waiting with nothing to do that can run the job takes it in this very transaction: no
  // ready-queue entry, no claim transaction, no queue read (the waiting miner is answered at once).
  const commit = async (handOff?: HandOff<Claimed>): Promise<SubmitResult> => {
    const claim = handOff ? claimChanges(job, handOff.miner, now) : undefined;
    const stored: Job = claim ? { ...job, ...claim.changes, status: "assigned", version: 2 } : job;
    const view = jobView(stored);
    const submitted = outboxPut({
      type: "job.submitted.v1",
      subjectPk: keys.job(job.id).PK,
      subject: job.id,
      seq: 1,
      accountId: job.accountId,
      correlationId: opts.correlationId,
      data: {
        ...jobRef(job),
        priority: job.priority,
        max_price: maxPrice,
        queue_deadline: job.queueDeadline,
        // The receipt names the input by this hash; kept here (the completion reads it with the job, one request)
        // rather than on the job item, which every transition rewrites.
        input_sha256: inputSha256,
        ...(inputArtifacts.length > 0
          ? { input_artifacts: inputArtifacts.map((a) => ({ ...a, role: "input" as const })) }
          : {}),
      },
      at: now,
    });
    const assigned =
      claim &&
      outboxPut({
        type: "job.assigned.v1",
        subjectPk: keys.job(job.id).PK,
        subject: job.id,
        seq: 2,
        accountId: job.accountId,
        correlationId: opts.correlationId,
        data: { ...jobRef(stored), ...claim.event },
        at: now,
      });
    try {
      await transact({
        job: jobPut(stored, { expression: "attribute_not_exists(PK)" }),
        input: inputPut(job.id, inputJson),
        hold: holdItems(job, now, { queued: !claim }),
        submitted,
        slot: claim?.slot,
        assigned,
        pool: poolCheck,
        idempotency: idemKey
          ? idempotencyRecord(principal.accountId, idemKey, hash as string, view, now)
          : undefined,
      });
    } catch (err) {
      if (err instanceof TransactionRefused && handOff && err.refusedBy("slot")) {
        // The waiting miner is full (or gone) after all: the job queues as any other.
        handOff.done({ full: true });
        return commit();
      }
      handOff?.done("released");
      if (err instanceof TransactionRefused) {
        if (idemKey && err.refusedBy("idempotency")) {
          const replay = await findReplay<JobView>(principal.accountId, idemKey, hash as string);
          if (replay) return { status: 201, job: replay, replayed: true };
        }
        if (err.refusedBy("pool")) throw poolRefused();
        if (err.refusedBy("hold")) {
          // The account item refused: the balance, or the queued quota. Its old image says which.
          forgetStanding(principal.accountId);
          const account = err.oldImage("hold");
          const available = Number(account?.available ?? 0);
          if (available < maxPrice) throw insufficientFunds(maxPrice, available);
          assertQueuedQuota(principal.accountId, Number(account?.queued ?? 0));
        }
      }
      throw err;
    }
    noteHeld(principal.accountId, maxPrice, { queued: !claim });
    publishJob(stored);
    rememberInput(job.id, inputJson);
    // The input as a read of it would give it (its stored JSON text), so the miner sees the same either way.
    if (claim && handOff)
      handOff.done({ claimed: { job: stored, token: claim.token, input: { value: JSON.parse(inputJson) } } });
    else notifyWork(job.service, shardOf(job.id, queueShards()));
    return { status: 201, job: view, replayed: false };
  };
  return commit(waitingPollFor(job));
}

function insufficientFunds(maxPrice: number, available: number): CoordError {
  return new CoordError("insufficient_funds", `the balance cannot hold max_price ${maxPrice}`, {
    max_price: maxPrice,
    available,
  });
}

/**
 * Holds max_price (available -> held) and counts the job as queued (unless it is handed to a miner at once), in the
 * account's one update; refused if the balance cannot hold it or the account would pass its queued quota.
 */
export function holdItems(job: Job, at: Date, opts: { queued?: boolean } = {}): TransactItem[] {
  const queued = opts.queued ?? true;
  return postingItems(
    [
      {
        accountId: job.accountId,
        kind: "hold",
        deltaAvailable: -job.maxPrice,
        deltaHeld: job.maxPrice,
        jobId: job.id,
        ...(queued ? { alsoAdd: { queued: 1 }, atMost: { queued: maxQueuedPerAccount() } } : {}),
      },
    ],
    at,
  );
}

import * as v from "valibot";
import { ConstraintsSchema } from "../matching/constraints.ts";
import { JOB_STATUSES } from "./statuses.ts";

export const JobError = v.object({
  code: v.string(),
  message: v.optional(v.string()),
  retryable: v.optional(v.boolean()),
});

/**
 * The stored job item (`JOB#<id>` / `JOB`). Input and output live in their own items, as JSON text, to keep this one
 * small (core/jobs/payload.ts).
 */
export const JobItem = v.object({
  id: v.string(),
  accountId: v.string(),
  service: v.string(),
  status: v.picklist(JOB_STATUSES),
  version: v.number(),
  attempt: v.number(),
  maxAttempts: v.number(),
  /** The attempts a submit (or a client retry) grants; maxAttempts = attempts used before + this. */
  attemptBudget: v.optional(v.number()),
  priority: v.number(),
  maxPrice: v.number(),
  ttlSeconds: v.number(),
  timeoutSeconds: v.number(),
  constraints: ConstraintsSchema,
  inputBytes: v.number(),
  createdAt: v.string(),
  updatedAt: v.string(),
  queueDeadline: v.string(),
  readyAt: v.optional(v.string()),
  minerId: v.optional(v.string()),
  minerAccountId: v.optional(v.string()),
  /** Every account whose miner ever claimed the job (for telling a stale claim from a stranger's guess). */
  heldBy: v.optional(v.array(v.string())),
  unitPrice: v.optional(v.number()),
  claimToken: v.optional(v.string()),
  assignedAt: v.optional(v.string()),
  startedAt: v.optional(v.string()),
  /** Set by an in-place start (core/jobs/in-place.ts): the version it made, whose event is not yet in the history. */
  startSeq: v.optional(v.number()),
  leaseExpiresAt: v.optional(v.string()),
  timeoutAt: v.optional(v.string()),
  /**
   * When the deadline sweep looks at the job next (its deadline-index key): never after its next deadline, often
   * before it, so that a claim need not move the index entry (core/jobs/item.ts, `sweepTime`).
   */
  sweepAt: v.optional(v.string()),
  finishedAt: v.optional(v.string()),
  progress: v.optional(v.number()),
  progressMessage: v.optional(v.string()),
  cancelRequested: v.optional(v.boolean()),
  error: v.optional(JobError),
  units: v.optional(v.number()),
  price: v.optional(v.number()),
  /** The platform's share of `price`, fixed at completion (a later fee change does not move refunds' split). */
  fee: v.optional(v.number()),
  /** Of `price`, what operators have refunded to the client so far (core/jobs/refund.ts). */
  refunded: v.optional(v.number()),
  webhookUrl: v.optional(v.string()),
  metadata: v.optional(v.record(v.string(), v.string())),
  correlationId: v.optional(v.string()),
});
export type Job = v.InferOutput<typeof JobItem>;

/** The public job view (HTTP contract): snake_case, no internal fields, never the claim token. */
export function jobView(j: Job) {
  return {
    id: j.id,
    status: j.status,
    service: j.service,
    attempt: j.attempt,
    max_attempts: j.maxAttempts,
    priority: j.priority,
    max_price: j.maxPrice,
    ttl_seconds: j.ttlSeconds,
    timeout_seconds: j.timeoutSeconds,
    constraints: j.constraints,
    created_at: j.createdAt,
    updated_at: j.updatedAt,
    queue_deadline: j.queueDeadline,
    assigned_at: j.assignedAt ?? null,
    started_at: j.startedAt ?? null,
    finished_at: j.finishedAt ?? null,
    miner_id: j.minerId ?? null,
    progress: j.progress ?? null,
    progress_message: j.progressMessage ?? null,
    units: j.units ?? null,
    price: j.price ?? null,
    webhook_url: j.webhookUrl ?? null,
    metadata: j.metadata ?? {},
    error: j.error ?? null,
  };
}
export type JobView = ReturnType<typeof jobView>;

/** Common event fields for a job. */
export function jobRef(job: Job) {
  return {
    job_id: job.id,
    service: job.service,
    status: job.status,
    attempt: job.attempt,
    ...(job.webhookUrl ? { webhook_url: job.webhookUrl } : {}),
  };
}

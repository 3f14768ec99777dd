import type { EventType } from "../../events/catalog.ts";

export const JOB_STATUSES = [
  "queued",
  "assigned",
  "running",
  "completed",
  "failed",
  "cancelled",
  "expired",
  "timed_out",
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL: ReadonlySet<JobStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
  "expired",
  "timed_out",
]);
/** A miner holds the job (it counts against the miner's concurrency and carries a claim token). */
export const LEASED: ReadonlySet<JobStatus> = new Set(["assigned", "running"]);

export function isTerminal(s: JobStatus): boolean {
  return TERMINAL.has(s);
}

/**
 * Every transition a job can make, in one table. Each is carried out as one conditional TransactWriteItems that
 * checks `status` is in `from` and `version` is unchanged, writes the new state and the outbox event (`event`).
 */
export const TRANSITIONS = {
  claim: { from: ["queued"], to: "assigned", event: "job.assigned.v1" },
  /** Carried out in place (core/jobs/in-place.ts): one conditional update of the job item, no transaction. */
  start: { from: ["assigned"], to: "running", event: "job.started.v1" },
  progress: { from: ["assigned", "running"], to: "running", event: "job.progress.v1" },
  complete: { from: ["assigned", "running"], to: "completed", event: "job.completed.v1" },
  fail: { from: ["assigned", "running"], to: "failed", event: "job.failed.v1" },
  /** A retryable failure or a lapsed lease with attempts left: back to the queue for attempt + 1. */
  requeue: { from: ["assigned", "running"], to: "queued", event: "job.requeued.v1" },
  /** A lapsed lease with no attempts left. */
  exhaust: { from: ["assigned", "running"], to: "failed", event: "job.failed.v1" },
  cancel: { from: ["queued", "assigned", "running"], to: "cancelled", event: "job.cancelled.v1" },
  expire: { from: ["queued"], to: "expired", event: "job.expired.v1" },
  time_out: { from: ["assigned", "running"], to: "timed_out", event: "job.timed_out.v1" },
  /** A client retries a failed or timed-out job: same id, a fresh attempt budget. */
  retry: { from: ["failed", "timed_out"], to: "queued", event: "job.submitted.v1" },
  /** An operator refunds (part of) a completed job's charge: the job stays completed; its history records it. */
  refund: { from: ["completed"], to: "completed", event: "job.refunded.v1" },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: JobStatus; event: EventType }>;

export type TransitionName = keyof typeof TRANSITIONS;

export function canTransition(name: TransitionName, from: JobStatus): boolean {
  return (TRANSITIONS[name].from as readonly JobStatus[]).includes(from);
}

import * as v from "valibot";
import { config } from "../config.ts";
import { nextDeadline } from "./item.ts";
import { enforceDeadline } from "./lifecycle.ts";
import { loadJob } from "./read.ts";
import { LEASED } from "./statuses.ts";

/**
 * Job timers: precise deadlines as delayed SQS messages (the cron sweep stays as the backstop). A chain follows one
 * phase of one attempt: `queue` (waiting for a miner until the queue TTL) or `lease` (held by a miner until the lease
 * lapses or the execution timeout passes). Each firing either applies the deadline, stops (the job moved on: other
 * phase or attempt), or asks to fire again at the job's current deadline (a heartbeat renewed the lease).
 */
export const Timer = v.object({
  job_id: v.string(),
  phase: v.picklist(["queue", "lease"]),
  attempt: v.number(),
  due_at: v.string(),
});
export type Timer = v.InferOutput<typeof Timer>;

/**
 * The chain a job event starts, if any, and when it is first due: the event carries the deadline (queue TTL, lease,
 * execution timeout), so the chain starts without reading the job. An event without one (older events) is due now.
 */
export function timerFor(
  eventType: string,
  data: {
    job_id: string;
    attempt: number;
    queue_deadline?: string;
    lease_expires_at?: string;
    timeout_at?: string;
  },
  now = new Date(),
): Timer | undefined {
  const at = (...times: (string | undefined)[]) =>
    times.filter((t): t is string => typeof t === "string").sort()[0] ?? now.toISOString();
  if (eventType === "job.submitted.v1" || eventType === "job.requeued.v1")
    return { job_id: data.job_id, phase: "queue", attempt: data.attempt, due_at: at(data.queue_deadline) };
  if (eventType === "job.assigned.v1")
    return {
      job_id: data.job_id,
      phase: "lease",
      attempt: data.attempt,
      due_at: at(data.lease_expires_at, data.timeout_at),
    };
  return undefined;
}

export type TimerOutcome = { fireAgainAt: string } | { done: string };

/** Fires a timer: applies the job's deadline if it has passed, or says when to look again. */
export async function fireTimer(timer: Omit<Timer, "due_at">, now = new Date()): Promise<TimerOutcome> {
  const job = await loadJob(timer.job_id);
  if (!job || job.attempt !== timer.attempt) return { done: "moved_on" };
  const inPhase = timer.phase === "queue" ? job.status === "queued" : LEASED.has(job.status);
  if (!inPhase) return { done: "moved_on" };
  const due = nextDeadline(job);
  if (!due) return { done: "no_deadline" };
  if (due > now.toISOString()) return { fireAgainAt: due };
  const outcome = await enforceDeadline(job, now);
  // The miner's liveness lease still holds the job: look again when that lease could next lapse.
  if (outcome === "renewed")
    return { fireAgainAt: new Date(now.getTime() + config.leaseSeconds * 1000).toISOString() };
  return { done: outcome ?? "changed_meanwhile" };
}

import { config } from "../config.ts";
import { keys } from "../db/keys.ts";
import { shardOf } from "../db/shard.ts";
import { setting } from "../settings.ts";
import type { Job } from "./model.ts";
import { isTerminal, LEASED } from "./statuses.ts";

export const queueShards = () => setting("COORD_QUEUE_SHARDS");
export const deadlineShards = () => setting("COORD_DEADLINE_SHARDS");

/** When the sweep must look at this job next: queue TTL while queued, lease or execution deadline while leased. */
export function nextDeadline(job: Job): string | undefined {
  if (job.status === "queued") return job.queueDeadline;
  if (LEASED.has(job.status)) {
    const lease = job.leaseExpiresAt ?? job.queueDeadline;
    return job.timeoutAt && job.timeoutAt < lease ? job.timeoutAt : lease;
  }
  return undefined;
}

/**
 * When the sweep looks at the job next: its filed time while that is no later than the next deadline, else the
 * deadline. The deadline-index entry is a lower bound, not the deadline itself: a transition that leaves the next
 * deadline later than the filed time (a claim's lease, after a submit that filed an early look) writes no index
 * entry, and a sweep that finds nothing due re-files the job (`refile`, off the job's path).
 */
export function sweepTime(job: Job): string | undefined {
  if (isTerminal(job.status)) return undefined;
  const due = nextDeadline(job);
  if (!due) return undefined;
  return job.sweepAt && job.sweepAt <= due ? job.sweepAt : due;
}

/**
 * The early look a new job files: no later than any deadline a claim soon after submit could give it (lease and
 * execution timeout both start at the claim), so that the claim leaves the index entry where it is. A job still
 * queued then is re-filed at its queue deadline by the sweep, once.
 */
export function firstSweep(job: Pick<Job, "createdAt" | "queueDeadline" | "timeoutSeconds">): string {
  const seconds = Math.min(config.leaseSeconds, job.timeoutSeconds);
  const early = Date.parse(job.createdAt) + seconds * 1000;
  return new Date(Math.min(early, Date.parse(job.queueDeadline))).toISOString();
}

/**
 * The stored item for a job. Index keys are derived from the state, never set by hand: the ready-queue keys exist
 * only while queued, the deadline keys only while not terminal.
 */
export function jobItem(job: Job): Record<string, unknown> {
  const deadline = sweepTime(job);
  return {
    ...keys.job(job.id),
    entity: "job",
    ...job,
    sweepAt: deadline,
    ...keys.jobsByAccount(job.accountId, job.createdAt, job.id),
    ...(job.status === "queued"
      ? keys.readyQueue(
          job.service,
          shardOf(job.id, queueShards()),
          job.priority,
          job.readyAt ?? job.createdAt,
          job.id,
        )
      : {}),
    ...(deadline ? keys.deadline(shardOf(job.id, deadlineShards()), deadline, job.id) : {}),
    // Terminal jobs (and their input/result/events) are kept for the retention period, then TTL removes them.
    ...(isTerminal(job.status)
      ? { expiresAt: Math.floor(Date.now() / 1000) + config.eventRetentionDays * 86400 }
      : {}),
  };
}

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
 * The stored item for a job. Index keys are derived from the state, never set by hand: the ready-queue keys exist
 * only while queued, the deadline keys only while not terminal.
 */
export function jobItem(job: Job): Record<string, unknown> {
  const deadline = nextDeadline(job);
  return {
    ...keys.job(job.id),
    entity: "job",
    ...job,
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
    ...(deadline && !isTerminal(job.status)
      ? keys.deadline(shardOf(job.id, deadlineShards()), deadline, job.id)
      : {}),
    // Terminal jobs (and their input/result/events) are kept for the retention period, then TTL removes them.
    ...(isTerminal(job.status)
      ? { expiresAt: Math.floor(Date.now() / 1000) + config.eventRetentionDays * 86400 }
      : {}),
  };
}

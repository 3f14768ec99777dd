import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { countPartition } from "../db/count.ts";
import { deadlineItems } from "../db/sharded-pages.ts";
import { deadlineShards, queueShards } from "../jobs/item.ts";
import { readSummary } from "../jobs/queue-summary.ts";
import { recentCounts } from "../metrics/metrics.ts";
import { MINER_STATUSES, minerShards } from "../miners/miners.ts";
import { SERVICES } from "../services/registry.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** One ready-queue shard: how many jobs wait there and when the longest-waiting one became ready. */
async function readyShard(service: string, shard: number): Promise<{ depth: number; oldest?: string }> {
  let depth = 0;
  let oldest: string | undefined;
  let start: Record<string, unknown> | undefined;
  do {
    // Reading the sort keys costs what a COUNT costs (a COUNT reads every entry too); they carry each job's readyAt.
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        IndexName: "GSI1",
        KeyConditionExpression: "GSI1PK = :pk",
        ExpressionAttributeValues: { ":pk": `QUEUE#${service}#${shard}` },
        ProjectionExpression: "GSI1SK",
        ExclusiveStartKey: start,
      }),
    );
    for (const i of out.Items ?? []) {
      depth++;
      const readyAt = String(i.GSI1SK).split("#")[1];
      if (readyAt && (oldest === undefined || readyAt < oldest)) oldest = readyAt;
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return oldest === undefined ? { depth } : { depth, oldest };
}

export interface ReadyQueue {
  depth: number;
  /** When the job waiting longest became ready (ISO), absent for an empty queue. */
  oldest_ready_at?: string;
}

/**
 * Every service's ready queue: its depth and its longest-waiting job. Only the shards the queue summary marks are
 * read (an unmarked shard holds no claimable job).
 */
export async function readyQueues(): Promise<Record<string, ReadyQueue>> {
  const summary = await readSummary({ fresh: true });
  const queues: Record<string, ReadyQueue> = {};
  await Promise.all(
    SERVICES.map(async (s) => {
      const shards = summary.has(s.id)
        ? await Promise.all(range(queueShards()).map((sh) => readyShard(s.id, sh)))
        : [];
      const oldest = shards
        .map((x) => x.oldest)
        .filter((x): x is string => x !== undefined)
        .sort()[0];
      queues[s.id] = {
        depth: shards.reduce((a, x) => a + x.depth, 0),
        ...(oldest === undefined ? {} : { oldest_ready_at: oldest }),
      };
    }),
  );
  return queues;
}

/** Live jobs (queued, assigned, running) by status, and by status within each service. */
export async function liveJobs(): Promise<{
  byStatus: Record<string, number>;
  byService: Record<string, Record<string, number>>;
}> {
  // The deadline index holds every live job but not its status (a status change would rewrite the entry on every
  // transition): read the statuses of what it lists, 100 at a time.
  const byStatus: Record<string, number> = { queued: 0, assigned: 0, running: 0 };
  const byService: Record<string, Record<string, number>> = {};
  const countStatuses = async (entries: Record<string, unknown>[]) => {
    for (const i of await hydrate(entries, ["status", "service"])) {
      const status = String(i.status);
      const service = String(i.service);
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      const forService = byService[service] ?? { queued: 0, assigned: 0, running: 0 };
      forService[status] = (forService[status] ?? 0) + 1;
      byService[service] = forService;
    }
  };
  let chunk: Record<string, unknown>[] = [];
  for await (const i of deadlineItems(deadlineShards())) {
    chunk.push(i);
    if (chunk.length === 100) {
      await countStatuses(chunk);
      chunk = [];
    }
  }
  await countStatuses(chunk);
  return { byStatus, byService };
}

/** Miners by status. */
export async function minerCounts(): Promise<Record<string, number>> {
  const miners: Record<string, number> = {};
  for (const status of MINER_STATUSES) {
    miners[status] = (
      await Promise.all(
        range(minerShards()).map((sh) => countPartition("GSI2", "GSI2PK", `MINERS#${status}#${sh}`)),
      )
    ).reduce((a, b) => a + b, 0);
  }
  return miners;
}

const ageSeconds = (iso: string, now: number) => Math.max(0, Math.round((now - Date.parse(iso)) / 1000));

/**
 * Operator view: queue depth and the longest wait per service (ready-queue index), live jobs by status and by
 * service (deadline index), miners by status, and throughput and failure rate over the last minutes (per-minute
 * event counters from the stream). Cost grows with queue depth and fleet size, so it is an admin call or a scrape
 * every 15-60 s, not a per-second poll loop.
 */
export async function adminStats(minutes = 5) {
  const [queues, live, miners, recent] = await Promise.all([
    readyQueues(),
    liveJobs(),
    minerCounts(),
    recentCounts(minutes),
  ]);
  const now = Date.now();
  const completed = recent["job.completed.v1"] ?? 0;
  const failed = (recent["job.failed.v1"] ?? 0) + (recent["job.timed_out.v1"] ?? 0);
  return {
    queue_depth: Object.fromEntries(Object.entries(queues).map(([s, q]) => [s, q.depth])),
    oldest_ready_seconds: Object.fromEntries(
      Object.entries(queues).map(([s, q]) => [
        s,
        q.oldest_ready_at ? ageSeconds(q.oldest_ready_at, now) : null,
      ]),
    ),
    jobs: live.byStatus,
    jobs_by_service: live.byService,
    miners,
    last_minutes: {
      minutes,
      submitted: recent["job.submitted.v1"] ?? 0,
      completed,
      failed,
      expired: recent["job.expired.v1"] ?? 0,
      cancelled: recent["job.cancelled.v1"] ?? 0,
      throughput_per_minute: Math.round((completed / minutes) * 100) / 100,
      failure_rate: completed + failed === 0 ? 0 : Math.round((failed / (completed + failed)) * 1000) / 1000,
    },
    time: new Date(now).toISOString(),
  };
}

import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { deadlineItems } from "../db/sharded-pages.ts";
import { deadlineShards, queueShards } from "../jobs/item.ts";
import { readSummary } from "../jobs/queue-summary.ts";
import { recentCounts } from "../metrics/metrics.ts";
import { MINER_STATUSES, minerShards } from "../miners/miners.ts";
import { SERVICES } from "../services/registry.ts";

async function count(index: string, pkName: string, pk: string): Promise<number> {
  let total = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        IndexName: index,
        KeyConditionExpression: `${pkName} = :pk`,
        ExpressionAttributeValues: { ":pk": pk },
        Select: "COUNT",
        ExclusiveStartKey: start,
      }),
    );
    total += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return total;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Operator view: queue depth per service (ready-queue index), live jobs by status (deadline index), miners by
 * status, and throughput and failure rate over the last minutes (per-minute event counters from the stream).
 * Cost grows with queue depth and fleet size (COUNT queries), so it is an admin call, not a dashboard poll loop.
 */
export async function adminStats(minutes = 5) {
  const summary = await readSummary({ fresh: true });
  const depth: Record<string, number> = {};
  await Promise.all(
    SERVICES.map(async (s) => {
      depth[s.id] = summary.has(s.id)
        ? (
            await Promise.all(
              range(queueShards()).map((sh) => count("GSI1", "GSI1PK", `QUEUE#${s.id}#${sh}`)),
            )
          ).reduce((a, b) => a + b, 0)
        : 0;
    }),
  );
  // The deadline index holds every live job but not its status (a status change would rewrite the entry on every
  // transition): read the statuses of what it lists, 100 at a time.
  const live: Record<string, number> = { queued: 0, assigned: 0, running: 0 };
  const countStatuses = async (entries: Record<string, unknown>[]) => {
    for (const i of await hydrate(entries, ["status"]))
      live[String(i.status)] = (live[String(i.status)] ?? 0) + 1;
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
  const miners: Record<string, number> = {};
  for (const status of MINER_STATUSES) {
    miners[status] = (
      await Promise.all(range(minerShards()).map((sh) => count("GSI2", "GSI2PK", `MINERS#${status}#${sh}`)))
    ).reduce((a, b) => a + b, 0);
  }
  const recent = await recentCounts(minutes);
  const completed = recent["job.completed.v1"] ?? 0;
  const failed = (recent["job.failed.v1"] ?? 0) + (recent["job.timed_out.v1"] ?? 0);
  return {
    queue_depth: depth,
    jobs: live,
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
    time: new Date().toISOString(),
  };
}

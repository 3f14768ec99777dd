import { BatchGetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { setting } from "../settings.ts";

/**
 * Per-minute event counters (`METRICS#<yyyy-mm-ddThh:mm>`), counted by the stream handler from the outbox events it
 * sees. They feed the admin stats (throughput and failure rate over the last minutes) without scanning jobs.
 *
 * Counts gather in memory and are written at most once per COORD_METRICS_FLUSH_SECONDS (one UpdateItem per minute
 * touched), not once per stream batch: a busy stream costs a write every few seconds, not several per job. Approximate
 * by design: a retried stream batch counts twice, and an instance retired with counts not yet written loses them (at
 * most one flush period's worth). This instance's unwritten counts are added to what it reads back.
 */
const minuteKey = (iso: string) => ({ PK: `METRICS#${iso.slice(0, 16)}`, SK: "METRICS" });
const flushMs = () => setting("COORD_METRICS_FLUSH_SECONDS") * 1000;

/** Unwritten counts: minute (`yyyy-mm-ddThh:mm`) -> event type -> count. */
let pending = new Map<string, Map<string, number>>();
let lastFlush = Date.now();

/** Adds events to the counters; writes them out when the flush period has passed. */
export async function countEvents(events: { type: string; occurredAt: string }[]): Promise<void> {
  for (const e of events) {
    const minute = e.occurredAt.slice(0, 16);
    const counts = pending.get(minute) ?? new Map<string, number>();
    counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    pending.set(minute, counts);
  }
  if (pending.size > 0 && Date.now() - lastFlush >= flushMs()) await flushMetrics();
}

/** Writes every unwritten count now (the flush period, and a stack's shutdown). */
export async function flushMetrics(): Promise<void> {
  const batch = pending;
  pending = new Map();
  lastFlush = Date.now();
  try {
    for (const [minute, counts] of batch) {
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = { ":ttl": Math.floor(Date.now() / 1000) + 7 * 86400 };
      const adds = [...counts].map(([type, n], i) => {
        names[`#t${i}`] = type;
        values[`:n${i}`] = n;
        return `#t${i} :n${i}`;
      });
      await ddb().send(
        new UpdateCommand({
          TableName: config.tableName,
          Key: minuteKey(`${minute}:00`),
          UpdateExpression: `ADD ${adds.join(", ")} SET expiresAt = :ttl`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      batch.delete(minute);
    }
  } finally {
    // What could not be written waits for the next flush.
    for (const [minute, counts] of batch) {
      const into = pending.get(minute) ?? new Map<string, number>();
      for (const [type, n] of counts) into.set(type, (into.get(type) ?? 0) + n);
      pending.set(minute, into);
    }
  }
}

/** Summed event counts over the last `minutes` minutes (including the current one), unwritten ones included. */
export async function recentCounts(minutes: number, now = new Date()): Promise<Record<string, number>> {
  const minuteIds = Array.from({ length: minutes }, (_, i) =>
    new Date(now.getTime() - i * 60_000).toISOString().slice(0, 16),
  );
  const out = await ddb().send(
    new BatchGetCommand({
      RequestItems: { [config.tableName]: { Keys: minuteIds.map((m) => minuteKey(`${m}:00`)) } },
    }),
  );
  const totals: Record<string, number> = {};
  const add = (k: string, n: number) => {
    totals[k] = (totals[k] ?? 0) + n;
  };
  for (const item of out.Responses?.[config.tableName] ?? []) {
    for (const [k, v] of Object.entries(item)) if (typeof v === "number" && k.includes(".v")) add(k, v);
  }
  for (const m of minuteIds) for (const [k, n] of pending.get(m) ?? []) add(k, n);
  return totals;
}

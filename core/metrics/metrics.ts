import { BatchGetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";

/**
 * Per-minute event counters (`METRICS#<yyyy-mm-ddThh:mm>`), added to by the stream handler once per batch from the
 * outbox events it sees. Approximate by design: a retried stream batch counts twice. They feed the admin stats
 * (throughput and failure rate over the last minutes) without scanning jobs.
 */
const minuteKey = (iso: string) => ({ PK: `METRICS#${iso.slice(0, 16)}`, SK: "METRICS" });

export async function countEvents(events: { type: string; occurredAt: string }[]): Promise<void> {
  const byMinute = new Map<string, Map<string, number>>();
  for (const e of events) {
    const minute = e.occurredAt.slice(0, 16);
    const counts = byMinute.get(minute) ?? new Map<string, number>();
    counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    byMinute.set(minute, counts);
  }
  for (const [minute, counts] of byMinute) {
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
  }
}

/** Summed event counts over the last `minutes` minutes (including the current one). */
export async function recentCounts(minutes: number, now = new Date()): Promise<Record<string, number>> {
  const keys = Array.from({ length: minutes }, (_, i) =>
    minuteKey(new Date(now.getTime() - i * 60_000).toISOString()),
  );
  const out = await ddb().send(new BatchGetCommand({ RequestItems: { [config.tableName]: { Keys: keys } } }));
  const totals: Record<string, number> = {};
  for (const item of out.Responses?.[config.tableName] ?? []) {
    for (const [k, v] of Object.entries(item)) {
      if (typeof v === "number" && k.includes(".v")) totals[k] = (totals[k] ?? 0) + v;
    }
  }
  return totals;
}

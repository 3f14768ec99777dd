import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { setting } from "../settings.ts";
import { notifyWork } from "./wakeup.ts";

/**
 * Which service queues may hold claimable jobs: one small item, `svc:<service>` -> when a job last became ready.
 * It is set from the stream (a job item gaining ready-queue keys) and cleared by a poll that finds the queue empty,
 * conditionally on the mark being unchanged, so a job that arrives meanwhile keeps it set. Each instance caches it
 * for a fraction of a second, so an empty poll usually reads nothing.
 */
const cacheMs = () => setting("COORD_SUMMARY_CACHE_MS");
let cached: { at: number; marks: Map<string, string> } | undefined;

export async function readSummary(fresh = false): Promise<Map<string, string>> {
  if (!fresh && cached && Date.now() - cached.at < cacheMs()) return cached.marks;
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.queueSummary() }));
  const marks = new Map<string, string>();
  for (const [k, val] of Object.entries(out.Item ?? {}))
    if (k.startsWith("svc:")) marks.set(k.slice(4), String(val));
  cached = { at: Date.now(), marks };
  return marks;
}

export async function markReady(services: string[]): Promise<void> {
  if (services.length === 0) return;
  const now = new Date().toISOString();
  const names: Record<string, string> = {};
  const sets = services.map((s, i) => {
    names[`#s${i}`] = `svc:${s}`;
    return `#s${i} = :now`;
  });
  await ddb().send(
    new UpdateCommand({
      TableName: config.tableName,
      Key: keys.queueSummary(),
      UpdateExpression: `SET ${sets.join(", ")}`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ":now": now },
    }),
  );
  for (const s of services) {
    cached?.marks.set(s, now);
    notifyWork(s);
  }
}

/** Clears a service's mark if nobody re-marked it since `seen` (a poll found its queue empty). */
export async function clearIfUnchanged(service: string, seen: string): Promise<void> {
  await ddb()
    .send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.queueSummary(),
        UpdateExpression: "REMOVE #s",
        ConditionExpression: "#s = :seen",
        ExpressionAttributeNames: { "#s": `svc:${service}` },
        ExpressionAttributeValues: { ":seen": seen },
      }),
    )
    .then(() => cached?.marks.delete(service))
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

/** From stream images: the services of jobs that just became claimable. */
export function servicesBecomingReady(
  changes: { oldImage?: Record<string, unknown>; newImage?: Record<string, unknown> }[],
): string[] {
  const services = new Set<string>();
  for (const { oldImage, newImage } of changes) {
    const now = newImage?.GSI1PK;
    if (newImage?.entity !== "job" || typeof now !== "string" || !now.startsWith("QUEUE#")) continue;
    if (oldImage?.GSI1PK === now) continue;
    services.add(String(newImage.service));
  }
  return [...services];
}

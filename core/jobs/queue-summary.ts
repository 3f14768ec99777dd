import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { setting } from "../settings.ts";
import { queueShards } from "./item.ts";
import { notifyWork } from "./wakeup.ts";

/**
 * Which ready-queue shards may hold claimable jobs: one small item, `svc:<service>#<shard>` -> when a job last became
 * ready there. It is set from the stream (a job item gaining ready-queue keys) and cleared by a match round that
 * finds the shard empty, conditionally on the mark being unchanged, so a job that arrives meanwhile keeps it set.
 * A round reads only the marked shards of a service (a serial job costs one queue query, not one per shard). Each
 * instance caches the item for a fraction of a second (COORD_SUMMARY_CACHE_MS), so an empty poll usually reads
 * nothing. A mark written by an earlier version (`svc:<service>`, no shard) stands for every shard.
 */
export interface Mark {
  /** The summary item's attribute holding it (what a clear removes). */
  attr: string;
  /** When a job last became ready under it. */
  at: string;
  shards: number[];
}
/** Marks by service. */
export type Summary = Map<string, Mark[]>;

const cacheMs = () => setting("COORD_SUMMARY_CACHE_MS");
let cached: { at: number; marks: Summary } | undefined;

const attrOf = (service: string, shard: number) => `svc:${service}#${shard}`;
const allShards = () => Array.from({ length: queueShards() }, (_, i) => i);

function parseAttr(attr: string): { service: string; shards: number[] } | undefined {
  if (!attr.startsWith("svc:")) return undefined;
  const m = /^svc:(.+)#(\d+)$/.exec(attr);
  return m
    ? { service: m[1] as string, shards: [Number(m[2])] }
    : { service: attr.slice(4), shards: allShards() };
}

function addMark(marks: Summary, service: string, mark: Mark): void {
  const list = (marks.get(service) ?? []).filter((x) => x.attr !== mark.attr);
  list.push(mark);
  marks.set(service, list);
}

/**
 * The summary: read when the cached copy is older than the cache period (or `fresh`); with `cachedOnly`, whatever
 * this instance last read, without a read.
 */
export async function readSummary(opts: { fresh?: boolean; cachedOnly?: boolean } = {}): Promise<Summary> {
  if (opts.cachedOnly) return cached?.marks ?? new Map();
  if (!opts.fresh && cached && Date.now() - cached.at < cacheMs()) return cached.marks;
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.queueSummary() }));
  const marks: Summary = new Map();
  for (const [attr, val] of Object.entries(out.Item ?? {})) {
    const parsed = parseAttr(attr);
    if (parsed) addMark(marks, parsed.service, { attr, at: String(val), shards: parsed.shards });
  }
  cached = { at: Date.now(), marks };
  return marks;
}

export interface QueueRef {
  service: string;
  shard: number;
}

export async function markReady(queues: QueueRef[]): Promise<void> {
  if (queues.length === 0) return;
  const now = new Date().toISOString();
  const names: Record<string, string> = {};
  const sets = queues.map((q, i) => {
    names[`#s${i}`] = attrOf(q.service, q.shard);
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
  for (const q of queues) {
    if (cached)
      addMark(cached.marks, q.service, { attr: attrOf(q.service, q.shard), at: now, shards: [q.shard] });
    notifyWork(q.service, q.shard);
  }
}

/** Clears a mark if nobody re-marked it since it was read (a round found its shards empty). */
export async function clearIfUnchanged(service: string, mark: Mark): Promise<void> {
  await ddb()
    .send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.queueSummary(),
        UpdateExpression: "REMOVE #s",
        ConditionExpression: "#s = :seen",
        ExpressionAttributeNames: { "#s": mark.attr },
        ExpressionAttributeValues: { ":seen": mark.at },
      }),
    )
    .then(() => {
      const list = cached?.marks.get(service)?.filter((x) => x.attr !== mark.attr);
      if (list?.length) cached?.marks.set(service, list);
      else cached?.marks.delete(service);
    })
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

/** From stream images: the queue shards that just gained a claimable job. */
export function queuesBecomingReady(
  changes: { oldImage?: Record<string, unknown>; newImage?: Record<string, unknown> }[],
): QueueRef[] {
  const queues = new Map<string, QueueRef>();
  for (const { oldImage, newImage } of changes) {
    const now = newImage?.GSI1PK;
    if (newImage?.entity !== "job" || typeof now !== "string" || !now.startsWith("QUEUE#")) continue;
    if (oldImage?.GSI1PK === now) continue;
    const m = /#(\d+)$/.exec(now);
    if (m) queues.set(now, { service: String(newImage.service), shard: Number(m[1]) });
  }
  return [...queues.values()];
}

/**
 * Which table stream records reach the stream handler (functions/stream/handler.ts): Lambda event filter patterns,
 * applied by the event source mapping before any invocation. Most writes (heartbeats, idempotency records, reads'
 * bookkeeping) are of no interest to the handler, and an idle fleet of heartbeating miners must not keep a Lambda
 * busy, so only these records get through (patterns are ORed; at most 5):
 * - outbox items (`entity = "event"`, core/db/outbox.ts) as they are inserted: the relay publishes them;
 * - jobs that carry ready-queue keys (`GSI1PK = QUEUE#...`, core/db/keys.ts): the queue summary marks them;
 * - jobs changed while they carry an in-place transition's event (`startSeq`, core/jobs/in-place.ts): the relay
 *   publishes it (once per new `startSeq`: it compares the old image);
 * - held jobs cancelled or timed out: the doorbell pushes the stop order to the holder (core/doorbell/ring.ts);
 * - client and miner account items as they change: a balance falling below its low-balance threshold is an event
 *   (core/accounts/low-balance.ts). This is the fifth pattern, Lambda's limit: a sixth kind must merge into one.
 *
 * Plain data plus a matcher with Lambda's semantics for the subset used here, so that the local stream poller can
 * apply the very same filter and the behaviour tests see what Lambda would deliver. Whoever makes the handler
 * react to another kind of record adds a pattern here.
 */
import type { DynamoDBRecord } from "aws-lambda";

type Leaf = string | { prefix: string } | { exists: true };
interface Pattern {
  [field: string]: Leaf[] | Pattern;
}

export const STREAM_FILTERS: readonly Pattern[] = [
  { eventName: ["INSERT"], dynamodb: { NewImage: { entity: { S: ["event"] } } } },
  {
    eventName: ["INSERT", "MODIFY"],
    dynamodb: { NewImage: { entity: { S: ["job"] }, GSI1PK: { S: [{ prefix: "QUEUE#" }] } } },
  },
  {
    eventName: ["MODIFY"],
    dynamodb: { NewImage: { entity: { S: ["job"] }, startSeq: { N: [{ exists: true }] } } },
  },
  {
    eventName: ["MODIFY"],
    dynamodb: {
      OldImage: { entity: { S: ["job"] }, status: { S: ["assigned", "running"] } },
      NewImage: { status: { S: ["cancelled", "timed_out"] } },
    },
  },
  {
    eventName: ["MODIFY"],
    dynamodb: { NewImage: { entity: { S: ["account"] }, kind: { S: ["client", "miner"] } } },
  },
];

function matchesLeaf(value: unknown, leaf: Leaf): boolean {
  if (typeof leaf === "object" && "exists" in leaf) return value !== undefined;
  if (typeof value !== "string") return false;
  return typeof leaf === "string" ? value === leaf : value.startsWith(leaf.prefix);
}

function matchesPattern(value: unknown, pattern: Pattern): boolean {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return Object.entries(pattern).every(([field, expected]) =>
    Array.isArray(expected)
      ? expected.some((leaf) => matchesLeaf(record[field], leaf))
      : matchesPattern(record[field], expected),
  );
}

/** Whether Lambda would deliver this stream record to the handler. */
export function matchesStreamFilters(record: DynamoDBRecord): boolean {
  return STREAM_FILTERS.some((pattern) => matchesPattern(record, pattern));
}

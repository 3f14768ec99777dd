import { createHash } from "node:crypto";
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import type { Envelope } from "../../events/catalog.ts";
import { signatureHeader } from "../../sdk/webhooks.ts";
import { cursorWithin, nextCursor, pageQuery } from "../accounts/page.ts";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { series } from "../observability/metrics.ts";
import { parse } from "../validate.ts";
import { retryDelaySeconds, webhookConfig } from "./config.ts";
import { loadEndpoint, recordEndpointFailure, recordEndpointSuccess } from "./endpoints.ts";
import { postWebhook, type SendResult } from "./http.ts";
import { activeSecrets, ensureAccountSecret } from "./secrets.ts";

/**
 * Deliveries: one item per (target, message), created when an event is fanned out. The item's key makes a duplicate
 * event (the bus and the queues deliver at least once) the same delivery, and each attempt is claimed with a
 * conditional update (`attemptNo` n-1 -> n, with a lease), so that duplicate tasks or consumers make one HTTP
 * request per attempt. An attempt that crashed mid-way (lease expired, no outcome) may be claimed again by the
 * redelivered task: the receiver then sees the same `webhook-id` twice, which is what the id is for.
 */

/** An account endpoint, or a job's own `webhook_url`. */
export interface Target {
  kind: "endpoint" | "job";
  /** Endpoint id (`we_...`) or job id. */
  id: string;
  accountId: string;
  url: string;
}

/** A scheduled attempt, as the retry queue carries it. */
export const DeliveryTask = v.object({
  target_id: v.string(),
  message_id: v.string(),
  attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** When the attempt is due (ms since epoch): SQS delays stop at 900 s, so longer waits hop. */
  due_at: v.number(),
});
export type DeliveryTask = v.InferOutput<typeof DeliveryTask>;

/** Where delivery tasks go: the `webhook-retries` queue on AWS and locally (functions/queues/webhooks-tasks.ts). */
export interface TaskQueue {
  send(task: DeliveryTask): Promise<void>;
}

/** An attempt holds its delivery this long; a crashed attempt can be retried after it. */
const LEASE_MS = 60_000;
const KEEP_ATTEMPTS = 30;

const AttemptLog = v.object({
  attempt: v.number(),
  at: v.string(),
  status_code: v.optional(v.number()),
  error: v.optional(v.string()),
  duration_ms: v.number(),
  response: v.optional(v.string()),
});
type AttemptLog = v.InferOutput<typeof AttemptLog>;

export const DeliveryItem = v.object({
  id: v.string(),
  targetKind: v.picklist(["endpoint", "job"]),
  targetId: v.string(),
  accountId: v.string(),
  url: v.string(),
  eventId: v.string(),
  eventType: v.string(),
  subject: v.string(),
  seq: v.optional(v.number()),
  payload: v.string(),
  status: v.picklist(["pending", "succeeded", "failed"]),
  attemptNo: v.number(),
  /** The last attempt this delivery will make unless redelivered (schedule length + 1 at creation). */
  finalAttempt: v.number(),
  leaseUntil: v.optional(v.number()),
  nextAttemptAt: v.optional(v.string()),
  attempts: v.array(AttemptLog),
  lastStatusCode: v.optional(v.number()),
  lastError: v.optional(v.string()),
  deliveredAt: v.optional(v.string()),
  createdAt: v.string(),
  updatedAt: v.string(),
  expiresAt: v.number(),
});
export type Delivery = v.InferOutput<typeof DeliveryItem>;

/**
 * The message id (`webhook-id`) of an event: `msg_` + the event's ULID, so it is the same for every target and
 * every retry, and sorts by time. Ids that are not ULIDs (hand-made test events) are hashed into the same shape.
 */
export function messageIdFor(eventId: string): string {
  const m = /^[a-z]+_([0-9a-z]{26})$/.exec(eventId);
  if (m) return `msg_${m[1]}`;
  const hash = createHash("sha256").update(eventId).digest("hex").slice(0, 26);
  return `msg_${hash}`;
}

/** The body every attempt sends (Standard Webhooks layout: type, timestamp, data; plus our envelope fields). */
export function payloadOf(env: Envelope): string {
  return JSON.stringify({
    type: env.type,
    timestamp: env.occurred_at,
    id: env.id,
    subject: env.subject,
    ...(env.seq === undefined ? {} : { seq: env.seq }),
    ...(env.correlation_id ? { correlation_id: env.correlation_id } : {}),
    data: env.data,
  });
}

async function readDelivery(targetId: string, messageId: string): Promise<Delivery | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.webhookDelivery(targetId, messageId),
      ConsistentRead: true,
    }),
  );
  if (!out.Item || Number(out.Item.expiresAt) < Date.now() / 1000) return undefined;
  return v.parse(DeliveryItem, out.Item);
}

/** Creates the delivery of `env` to `target`, or returns the one a duplicate of the event already created. */
export async function createDelivery(
  target: Target,
  env: Envelope,
  now = new Date(),
): Promise<{ created: boolean; delivery: Delivery }> {
  const delivery: Delivery = {
    id: messageIdFor(env.id),
    targetKind: target.kind,
    targetId: target.id,
    accountId: target.accountId,
    url: target.url,
    eventId: env.id,
    eventType: env.type,
    subject: env.subject,
    seq: env.seq,
    payload: payloadOf(env),
    status: "pending",
    attemptNo: 0,
    finalAttempt: webhookConfig.retrySchedule.length + 1,
    attempts: [],
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    expiresAt: Math.floor(now.getTime() / 1000) + config.eventRetentionDays * 86_400,
  };
  try {
    await ddb().send(
      new PutCommand({
        TableName: config.tableName,
        Item: { ...keys.webhookDelivery(target.id, delivery.id), entity: "webhookDelivery", ...delivery },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    );
    return { created: true, delivery };
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    const existing = await readDelivery(target.id, delivery.id);
    if (!existing) throw new Error(`delivery ${target.id}/${delivery.id} exists but cannot be read`);
    return { created: false, delivery: existing };
  }
}

/** Takes attempt `n` of a pending delivery, or returns undefined when another worker has (or had) it. */
async function claim(
  targetId: string,
  messageId: string,
  n: number,
  now: number,
): Promise<Delivery | undefined> {
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookDelivery(targetId, messageId),
        UpdateExpression: "SET attemptNo = :n, leaseUntil = :lease, updatedAt = :at",
        ConditionExpression:
          "#status = :pending AND (attemptNo = :prev OR (attemptNo = :n AND leaseUntil < :now))",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":n": n,
          ":prev": n - 1,
          ":lease": now + LEASE_MS,
          ":now": now,
          ":at": new Date(now).toISOString(),
          ":pending": "pending",
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    return v.parse(DeliveryItem, out.Attributes);
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return undefined;
    throw err;
  }
}

export interface AttemptOutcome {
  delivery: Delivery;
  result: SendResult;
  /** This attempt's failure disabled the endpoint. */
  endpointDisabled: boolean;
}

/**
 * Makes attempt `n` of a delivery if it is still due: claims it, signs the stored payload with the target's valid
 * secrets and a fresh timestamp, POSTs it, and records the outcome. A failure with attempts left schedules the next
 * attempt (`queue`, delayed by the retry schedule with jitter) before recording, so a crash in between costs at
 * most a repeated attempt, never a lost one. Returns undefined when the attempt was not this worker's to make.
 */
export async function runAttempt(
  targetId: string,
  messageId: string,
  n: number,
  queue: TaskQueue,
): Promise<AttemptOutcome | undefined> {
  const started = new Date();
  const d = await claim(targetId, messageId, n, started.getTime());
  if (!d) return undefined;

  let url = d.url;
  let secrets: string[];
  let endpoint: Awaited<ReturnType<typeof loadEndpoint>>;
  let refused: string | undefined;
  if (d.targetKind === "endpoint") {
    endpoint = await loadEndpoint(d.accountId, d.targetId);
    if (!endpoint) refused = "endpoint deleted";
    else if (endpoint.status !== "enabled") refused = "endpoint disabled";
    url = endpoint?.url ?? url;
    secrets = endpoint ? activeSecrets(endpoint.secrets, started) : [];
  } else {
    secrets = activeSecrets((await ensureAccountSecret(d.accountId)).secrets, started);
  }

  let result: SendResult;
  if (refused) {
    result = { ok: false, retryable: false, error: refused, durationMs: 0 };
  } else {
    const timestamp = Math.floor(Date.now() / 1000);
    result = await postWebhook(
      url,
      {
        "content-type": "application/json",
        "user-agent": "Coordinator-Webhooks/1.0",
        "webhook-id": d.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signatureHeader(secrets, d.id, timestamp, d.payload),
      },
      d.payload,
    );
    series.webhookDeliveries.inc({ outcome: result.ok ? "ok" : "failed" });
    series.webhookLatency.observe(result.durationMs / 1000);
  }

  const at = new Date();
  const entry: AttemptLog = {
    attempt: n,
    at: at.toISOString(),
    ...(result.status === undefined ? {} : { status_code: result.status }),
    ...(result.error ? { error: result.error } : {}),
    duration_ms: result.durationMs,
    ...(result.response ? { response: result.response } : {}),
  };
  const delay = result.ok || !result.retryable || n >= d.finalAttempt ? undefined : retryDelaySeconds(n + 1);
  const status: Delivery["status"] = result.ok ? "succeeded" : delay === undefined ? "failed" : "pending";
  const nextAt = delay === undefined ? undefined : new Date(at.getTime() + delay * 1000);
  if (nextAt) {
    await queue.send({ target_id: d.targetId, message_id: d.id, attempt: n + 1, due_at: nextAt.getTime() });
  }
  const attempts = [...d.attempts, entry].slice(-KEEP_ATTEMPTS);
  const values: Record<string, unknown> = {
    ":status": status,
    ":attempts": attempts,
    ":url": url,
    ":at": at.toISOString(),
    ":n": n,
  };
  const sets = ["#status = :status", "attempts = :attempts", "#url = :url", "updatedAt = :at"];
  const removes = ["leaseUntil"];
  if (result.status !== undefined) {
    sets.push("lastStatusCode = :code");
    values[":code"] = result.status;
  } else removes.push("lastStatusCode");
  if (result.error) {
    sets.push("lastError = :err");
    values[":err"] = result.error;
  } else removes.push("lastError");
  if (nextAt) {
    sets.push("nextAttemptAt = :next");
    values[":next"] = nextAt.toISOString();
  } else removes.push("nextAttemptAt");
  if (result.ok) sets.push("deliveredAt = :at");
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookDelivery(d.targetId, d.id),
        UpdateExpression: `SET ${sets.join(", ")} REMOVE ${removes.join(", ")}`,
        ConditionExpression: "attemptNo = :n",
        ExpressionAttributeNames: { "#status": "status", "#url": "url" },
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
      }),
    );
    const delivery = v.parse(DeliveryItem, out.Attributes);
    let endpointDisabled = false;
    if (endpoint) {
      if (result.ok) await recordEndpointSuccess(endpoint, at);
      else if (status === "failed" && !refused) {
        endpointDisabled = (await recordEndpointFailure(endpoint, at)).disabled;
      }
    }
    return { delivery, result, endpointDisabled };
  } catch (err) {
    // Our lease outlived (a redelivery took the next attempt): that attempt's outcome is the one to keep.
    if ((err as Error).name === "ConditionalCheckFailedException") return undefined;
    throw err;
  }
}

/** Fans one event out to one target: creates the delivery (once) and makes its first attempt. */
export async function deliver(target: Target, env: Envelope, queue: TaskQueue): Promise<void> {
  const { created, delivery } = await createDelivery(target, env);
  // A duplicate event finds the delivery: it only steps in if the first attempt never happened (or crashed).
  if (created || (delivery.status === "pending" && delivery.attemptNo <= 1)) {
    await runAttempt(target.id, delivery.id, 1, queue);
  }
}

/** Runs a task from the retry queue: hops again while the attempt is not yet due, else makes the attempt. */
export async function runTask(task: DeliveryTask, queue: TaskQueue): Promise<void> {
  if (task.due_at - Date.now() > 1000) {
    await queue.send(task);
    return;
  }
  await runAttempt(task.target_id, task.message_id, task.attempt, queue);
}

export function deliveryView(d: Delivery, opts: { full?: boolean } = {}) {
  let payload: unknown = d.payload;
  try {
    payload = JSON.parse(d.payload);
  } catch {
    // stored as sent
  }
  return {
    id: d.id,
    event_id: d.eventId,
    event_type: d.eventType,
    subject: d.subject,
    seq: d.seq ?? null,
    target: { kind: d.targetKind, id: d.targetId },
    url: d.url,
    status: d.status,
    attempt_count: d.attempts.length,
    response_status: d.lastStatusCode ?? null,
    last_error: d.lastError ?? null,
    next_attempt_at: d.status === "pending" ? (d.nextAttemptAt ?? null) : null,
    delivered_at: d.deliveredAt ?? null,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    attempts: d.attempts,
    ...(opts.full ? { payload } : {}),
  };
}

export const ListDeliveriesQuery = v.object({
  ...pageQuery(100),
  status: v.optional(v.picklist(["pending", "succeeded", "failed"])),
  event_type: v.optional(v.pipe(v.string(), v.maxLength(100))),
});

/** A target's deliveries, newest first. The caller has checked the target is the caller's. */
export async function listDeliveries(targetId: string, query: unknown) {
  const q = parse(ListDeliveriesQuery, query, "query");
  const limit = q.limit ?? 50;
  const pk = keys.webhookDelivery(targetId, "").PK;
  let start = cursorWithin(q.cursor, { PK: pk });
  const filters = ["expiresAt >= :nowS"];
  const values: Record<string, unknown> = { ":pk": pk, ":nowS": Math.floor(Date.now() / 1000) };
  const names: Record<string, string> = {};
  if (q.status) {
    filters.push("#status = :status");
    names["#status"] = "status";
    values[":status"] = q.status;
  }
  if (q.event_type) {
    filters.push("eventType = :type");
    values[":type"] = q.event_type;
  }
  const items: Delivery[] = [];
  let reads = 0;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: "PK = :pk",
        FilterExpression: filters.join(" AND "),
        ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
        Limit: limit - items.length,
        ExclusiveStartKey: start,
      }),
    );
    for (const i of out.Items ?? []) items.push(v.parse(DeliveryItem, i));
    start = out.LastEvaluatedKey;
    reads++;
  } while (start && items.length < limit && reads < 10);
  return { items: items.map((d) => deliveryView(d)), next_cursor: nextCursor(start) };
}

export async function getDelivery(targetId: string, messageId: string) {
  const d = /^msg_[0-9a-z]{26}$/.test(messageId) ? await readDelivery(targetId, messageId) : undefined;
  if (!d) throw new NotFoundError("delivery");
  return deliveryView(d, { full: true });
}

/**
 * Sends a delivery again (same `webhook-id`, fresh timestamp and signature), whatever its status, unless an attempt
 * is in flight. A delivery still in its retry schedule keeps its remaining retries; a finished one gets this one
 * attempt. 202: the attempt is queued.
 */
export async function redeliver(targetId: string, messageId: string, queue: TaskQueue) {
  const d = /^msg_[0-9a-z]{26}$/.test(messageId) ? await readDelivery(targetId, messageId) : undefined;
  if (!d) throw new NotFoundError("delivery");
  if (d.targetKind === "endpoint") {
    const e = await loadEndpoint(d.accountId, d.targetId);
    if (!e) throw new NotFoundError("webhook endpoint");
    if (e.status !== "enabled") {
      throw new ConflictError("the endpoint is disabled; enable it (PATCH enabled: true) to redeliver");
    }
  }
  const now = Date.now();
  const n = d.attemptNo + 1;
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookDelivery(targetId, messageId),
        UpdateExpression:
          "SET #status = :pending, finalAttempt = :final, nextAttemptAt = :next, updatedAt = :at",
        ConditionExpression: "attemptNo = :known AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":pending": "pending",
          ":final": Math.max(d.status === "pending" ? d.finalAttempt : 0, n),
          ":next": new Date(now).toISOString(),
          ":at": new Date(now).toISOString(),
          ":known": d.attemptNo,
          ":now": now,
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    await queue.send({ target_id: targetId, message_id: messageId, attempt: n, due_at: now });
    return deliveryView(v.parse(DeliveryItem, out.Attributes));
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") {
      throw new ConflictError("an attempt of this delivery is in progress; try again shortly");
    }
    throw err;
  }
}

import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Envelope } from "../../events/catalog.ts";
import { WEBHOOK_EVENT_TYPES } from "../../events/rules.ts";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { webhookConfig } from "./config.ts";
import { deliver, type Target, type TaskQueue } from "./deliveries.ts";
import { cachedAccountEndpoints, wants } from "./endpoints.ts";

const WEBHOOK_TYPES: ReadonlySet<string> = new Set(WEBHOOK_EVENT_TYPES);

/**
 * Progress throttle: at most one `job.progress.v1` per job per interval, by the events' own times (so the decision
 * does not depend on how late or out of order the events arrive). The same event seen again passes, so a retried
 * fan-out is not mistaken for a second progress event; the delivery's key then makes it one delivery.
 */
export async function passesProgressThrottle(env: Envelope): Promise<boolean> {
  const interval = webhookConfig.progressIntervalMs;
  if (interval <= 0) return true;
  const at = Date.parse(env.occurred_at);
  try {
    await ddb().send(
      new PutCommand({
        TableName: config.tableName,
        Item: {
          ...keys.webhookThrottle(env.subject),
          entity: "webhookThrottle",
          lastAt: at,
          lastEventId: env.id,
          expiresAt: Math.floor(at / 1000) + 86_400,
        },
        ConditionExpression: "attribute_not_exists(PK) OR lastAt <= :cutoff OR lastEventId = :id",
        ExpressionAttributeValues: { ":cutoff": at - interval, ":id": env.id },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

/** Who receives `env`: the account's enabled endpoints that want its type, and its job's `webhook_url`. */
export async function targetsFor(env: Envelope): Promise<Target[]> {
  const accountId = env.account_id;
  if (!accountId) return [];
  // What the event carries is enough: the job's own webhook_url rides in job events; endpoints are cached.
  const endpoints = await cachedAccountEndpoints(accountId);
  const targets: Target[] = endpoints
    .filter((e) => wants(e, env.type))
    .map((e) => ({ kind: "endpoint", id: e.id, accountId, url: e.url }));
  const jobUrl = env.type.startsWith("job.")
    ? (env.data as { webhook_url?: unknown }).webhook_url
    : undefined;
  if (typeof jobUrl === "string") targets.push({ kind: "job", id: env.subject, accountId, url: jobUrl });
  return targets;
}

/**
 * The `webhooks` queue's work for one event: throttle progress, find the targets, and deliver to each (first
 * attempt inline, retries through `queue`). Targets are independent: every one is tried before a failure is
 * reported, and a retried event skips the targets already done (their deliveries exist).
 */
export async function fanOut(env: Envelope, queue: TaskQueue): Promise<{ targets: number }> {
  if (!WEBHOOK_TYPES.has(env.type) || !env.account_id) return { targets: 0 };
  if (env.type === "job.progress.v1" && !(await passesProgressThrottle(env))) return { targets: 0 };
  const targets = await targetsFor(env);
  const results = await Promise.allSettled(targets.map((t) => deliver(t, env, queue)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return { targets: targets.length };
}

import * as v from "valibot";
import { WEBHOOK_EVENT_TYPES } from "../../events/rules.ts";
import { generateSecret } from "../../sdk/webhooks.ts";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { CoordError, NotFoundError, QuotaExceededError } from "../errors.ts";
import {
  findReplay,
  idempotencyRecord,
  parseIdempotencyKey,
  requestHash,
} from "../idempotency/idempotency.ts";
import { newId } from "../ids.ts";
import { TtlCache } from "../ttl-cache.ts";
import { parse } from "../validate.ts";
import { assertWebhookUrl } from "./address.ts";
import { webhookConfig } from "./config.ts";
import {
  addEndpointFailure,
  deleteEndpointItem,
  markEndpointHealthy,
  readAccountEndpoints,
  readEndpoint,
} from "./endpoint-store.ts";
import { RotateSecretInput, rotateSecrets, StoredSecret, secretsInfo } from "./secrets.ts";

const Url = v.pipe(v.string(), v.maxLength(2048, "url is at most 2048 characters"));
const EventTypes = v.pipe(
  v.array(
    v.picklist(WEBHOOK_EVENT_TYPES, `each event type must be one of ${WEBHOOK_EVENT_TYPES.join(", ")}`),
  ),
  v.maxLength(WEBHOOK_EVENT_TYPES.length),
  v.transform((list) => [...new Set(list)]),
);
const Description = v.pipe(v.string(), v.maxLength(500));

export const CreateEndpointInput = v.object({
  url: Url,
  description: v.optional(Description),
  /** The event types to receive; omitted or empty = every webhook event type. */
  event_types: v.optional(EventTypes),
});

export const UpdateEndpointInput = v.object({
  url: v.optional(Url),
  description: v.optional(Description),
  event_types: v.optional(EventTypes),
  /** `true` re-enables a disabled endpoint (and clears its failure count); `false` disables it. */
  enabled: v.optional(v.boolean()),
});

export const EndpointItem = v.object({
  id: v.string(),
  accountId: v.string(),
  url: v.string(),
  description: v.optional(v.string()),
  eventTypes: v.array(v.string()),
  status: v.picklist(["enabled", "disabled"]),
  disabledReason: v.optional(v.string()),
  disabledAt: v.optional(v.string()),
  secrets: v.array(StoredSecret),
  consecutiveFailures: v.number(),
  failingSince: v.optional(v.string()),
  lastFailureAt: v.optional(v.string()),
  lastSuccessAt: v.optional(v.string()),
  version: v.number(),
  createdAt: v.string(),
  updatedAt: v.string(),
});
export type Endpoint = v.InferOutput<typeof EndpointItem>;

/** The public view: never a secret. */
export function endpointView(e: Endpoint) {
  return {
    id: e.id,
    url: e.url,
    description: e.description ?? null,
    event_types: e.eventTypes,
    status: e.status,
    disabled_reason: e.disabledReason ?? null,
    disabled_at: e.disabledAt ?? null,
    consecutive_failures: e.consecutiveFailures,
    failing_since: e.failingSince ?? null,
    last_success_at: e.lastSuccessAt ?? null,
    secret_info: secretsInfo(e.secrets),
    created_at: e.createdAt,
    updated_at: e.updatedAt,
  };
}
export type EndpointView = ReturnType<typeof endpointView>;

/** Whether the endpoint wants this event type (an empty filter wants every webhook event type). */
export function wants(e: Endpoint, type: string): boolean {
  return e.status === "enabled" && (e.eventTypes.length === 0 || e.eventTypes.includes(type));
}

export async function loadEndpoint(accountId: string, id: string): Promise<Endpoint | undefined> {
  if (!/^we_[0-9a-z]{26}$/.test(id)) return undefined;
  const item = await readEndpoint(accountId, id);
  return item ? v.parse(EndpointItem, item) : undefined;
}

async function ownEndpoint(principal: Principal, id: string): Promise<Endpoint> {
  const e = await loadEndpoint(principal.accountId, id);
  if (!e) throw new NotFoundError("webhook endpoint");
  return e;
}

/**
 * The fan-out's view of an account's endpoints, per instance, so that an event of an account reads nothing when the
 * account's endpoints were looked at in the last few seconds (most accounts have none: that is cached too). A change
 * in this instance (create, update, delete, rotate, disable) evicts at once; another instance's change is seen
 * within ENDPOINT_CACHE_MS. A delivery reads its endpoint again (secret, enabled), so a stale entry can delay a new
 * endpoint's first events by at most that bound, never send to a deleted or disabled one.
 */
const ENDPOINT_CACHE_MS = 5000;
const endpointCache = new TtlCache<Endpoint[]>(() => ENDPOINT_CACHE_MS);

export async function cachedAccountEndpoints(accountId: string): Promise<Endpoint[]> {
  const hit = endpointCache.get(accountId);
  if (hit) return hit;
  const endpoints = await accountEndpoints(accountId);
  endpointCache.set(accountId, endpoints);
  return endpoints;
}

function forgetEndpoints(accountId: string): void {
  endpointCache.delete(accountId);
}

/** Every endpoint of an account (at most `maxEndpoints`, so one query page). */
export async function accountEndpoints(accountId: string): Promise<Endpoint[]> {
  return (await readAccountEndpoints(accountId)).map((i) => v.parse(EndpointItem, i));
}

export async function listEndpoints(principal: Principal) {
  return { items: (await accountEndpoints(principal.accountId)).map(endpointView) };
}

export async function getEndpoint(principal: Principal, id: string) {
  return endpointView(await ownEndpoint(principal, id));
}

/** An endpoint as creation answers it: with its secret, or, replayed, with `secret: null, secret_redacted: true`. */
export type CreatedEndpoint = EndpointView & { secret: string | null; secret_redacted?: true };

/**
 * Registers an endpoint: the URL is checked (syntax, then its host against the address policy, DNS included) and
 * a `whsec_` secret is generated and returned this once (`secret`). With an Idempotency-Key, a repeat of the
 * same request replays the first answer with the secret redacted: the replay record never holds it
 * (core/idempotency `withoutSecret`); `POST /v1/webhooks/endpoints/{id}/secret/rotate` gives a new one.
 */
export async function createEndpoint(
  principal: Principal,
  raw: unknown,
  opts: { idempotencyKey?: string } = {},
): Promise<{ endpoint: CreatedEndpoint; replayed: boolean }> {
  const body = parse(CreateEndpointInput, raw, "body");
  const idemKey = parseIdempotencyKey(opts.idempotencyKey);
  const hash = idemKey ? requestHash("POST /v1/webhooks/endpoints", raw) : undefined;
  if (idemKey) {
    const replay = await findReplay<CreatedEndpoint>(principal.accountId, idemKey, hash as string);
    if (replay) return { endpoint: replay, replayed: true };
  }
  await assertWebhookUrl(body.url, "body.url");
  const existing = await accountEndpoints(principal.accountId);
  const max = webhookConfig.maxEndpoints;
  if (existing.length >= max) {
    throw new QuotaExceededError(`an account has at most ${max} webhook endpoints`, {
      limit: max,
      current: existing.length,
      retry_after_seconds: 0,
    });
  }
  const now = new Date();
  const secret = generateSecret();
  const endpoint: Endpoint = {
    id: newId("we", now.getTime()),
    accountId: principal.accountId,
    url: body.url,
    description: body.description,
    eventTypes: body.event_types ?? [],
    status: "enabled",
    secrets: [{ secret, createdAt: now.toISOString() }],
    consecutiveFailures: 0,
    version: 1,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  const view = { ...endpointView(endpoint), secret };
  try {
    await transact({
      endpoint: {
        Put: {
          TableName: config.tableName,
          Item: {
            ...keys.webhookEndpoint(principal.accountId, endpoint.id),
            entity: "webhookEndpoint",
            ...endpoint,
          },
          ConditionExpression: "attribute_not_exists(PK)",
        },
      },
      idempotency: idemKey
        ? idempotencyRecord(principal.accountId, idemKey, hash as string, view, now)
        : undefined,
    });
  } catch (err) {
    if (idemKey && err instanceof TransactionRefused && err.refusedBy("idempotency")) {
      const replay = await findReplay<CreatedEndpoint>(principal.accountId, idemKey, hash as string);
      if (replay) return { endpoint: replay, replayed: true };
    }
    throw err;
  }
  forgetEndpoints(principal.accountId);
  return { endpoint: view, replayed: false };
}

/** Changes url, description, filter or enabled state (re-enabling clears the failure count). */
export async function updateEndpoint(principal: Principal, id: string, raw: unknown) {
  const body = parse(UpdateEndpointInput, raw ?? {}, "body");
  const current = await ownEndpoint(principal, id);
  if (body.url !== undefined) await assertWebhookUrl(body.url, "body.url");
  const now = new Date().toISOString();
  const next: Endpoint = {
    ...current,
    url: body.url ?? current.url,
    description: body.description ?? current.description,
    eventTypes: body.event_types ?? current.eventTypes,
    version: current.version + 1,
    updatedAt: now,
  };
  if (body.enabled === true && current.status === "disabled") {
    Object.assign(next, {
      status: "enabled",
      consecutiveFailures: 0,
      failingSince: undefined,
      disabledAt: undefined,
      disabledReason: undefined,
    });
  } else if (body.enabled === false && current.status === "enabled") {
    Object.assign(next, { status: "disabled", disabledAt: now, disabledReason: "disabled by the account" });
  }
  await putVersioned(next, current.version);
  return endpointView(next);
}

async function putVersioned(next: Endpoint, expectedVersion: number): Promise<void> {
  try {
    await transact({
      endpoint: {
        Put: {
          TableName: config.tableName,
          Item: { ...keys.webhookEndpoint(next.accountId, next.id), entity: "webhookEndpoint", ...next },
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        },
      },
    });
  } catch (err) {
    if (err instanceof TransactionRefused) {
      throw new CoordError("conflict", "the endpoint changed concurrently; read it again and retry");
    }
    throw err;
  } finally {
    forgetEndpoints(next.accountId);
  }
}

/** Removes an endpoint; its pending deliveries end as failed (`endpoint deleted`), its log expires with them. */
export async function deleteEndpoint(principal: Principal, id: string): Promise<void> {
  if (!/^we_[0-9a-z]{26}$/.test(id)) throw new NotFoundError("webhook endpoint");
  try {
    if (!(await deleteEndpointItem(principal.accountId, id))) throw new NotFoundError("webhook endpoint");
  } finally {
    forgetEndpoints(principal.accountId);
  }
}

/** A new secret (returned once as `secret`); the previous one keeps signing for `overlap_seconds`. */
export async function rotateEndpointSecret(principal: Principal, id: string, raw: unknown) {
  const body = parse(RotateSecretInput, raw, "body");
  const current = await ownEndpoint(principal, id);
  const now = new Date();
  const { secret, secrets } = rotateSecrets(
    current.secrets,
    body?.overlap_seconds ?? webhookConfig.rotationOverlapSeconds,
    now,
  );
  const next: Endpoint = { ...current, secrets, version: current.version + 1, updatedAt: now.toISOString() };
  await putVersioned(next, current.version);
  return { ...endpointView(next), secret };
}

/** A 2xx: the endpoint is healthy again (written only when it was failing). */
export async function recordEndpointSuccess(e: Endpoint, at: Date): Promise<void> {
  if (e.consecutiveFailures === 0 && !e.failingSince) return;
  await markEndpointHealthy(e.accountId, e.id, at);
}

/**
 * A message failed every attempt. After `disableAfter` such messages in a row the endpoint is disabled, with a
 * `webhook_endpoint.disabled.v1` event in the same transaction.
 */
export async function recordEndpointFailure(e: Endpoint, at: Date): Promise<{ disabled: boolean }> {
  const item = await addEndpointFailure(e.accountId, e.id, at);
  if (!item) return { disabled: false };
  const updated = v.parse(EndpointItem, item);
  const limit = webhookConfig.disableAfter;
  if (updated.status !== "enabled" || updated.consecutiveFailures < limit) return { disabled: false };
  const reason = `${updated.consecutiveFailures} consecutive messages failed every delivery attempt`;
  try {
    await transact({
      endpoint: {
        Update: {
          TableName: config.tableName,
          Key: keys.webhookEndpoint(e.accountId, e.id),
          UpdateExpression:
            "SET #status = :disabled, disabledAt = :at, disabledReason = :reason, version = version + :one, updatedAt = :at",
          ConditionExpression: "#status = :enabled",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":disabled": "disabled",
            ":enabled": "enabled",
            ":at": at.toISOString(),
            ":reason": reason,
            ":one": 1,
          },
        },
      },
      event: outboxPut({
        type: "webhook_endpoint.disabled.v1",
        subjectPk: keys.account(e.accountId).PK,
        subject: e.id,
        accountId: e.accountId,
        data: { account_id: e.accountId, endpoint_id: e.id, url: updated.url, reason },
        at,
      }),
    });
  } catch (err) {
    if (err instanceof TransactionRefused) return { disabled: false };
    throw err;
  }
  forgetEndpoints(e.accountId);
  return { disabled: true };
}

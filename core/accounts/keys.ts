import * as v from "valibot";
import { config } from "../config.ts";
import type { Ctx, Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut } from "../db/outbox.ts";
import { type NamedItems, TransactionRefused, transact } from "../db/transaction.ts";
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
} from "../errors.ts";
import { knownId, newId } from "../ids.ts";
import { parse } from "../validate.ts";
import { type AccountKind, generateApiKey, hashApiKey, inspectApiKey } from "./api-key.ts";
import { cachedPrincipal, feedItem, forgetKey, rememberKey } from "./key-cache.ts";
import { accountKeysPage, readKeyItem, readKeyItems, readKeyRef } from "./key-store.ts";
import { type Page, pageQuery } from "./page.ts";
import { DEFAULT_SCOPES, ScopeListSchema, scopesBeyond } from "./scopes.ts";

/**
 * API keys.
 *
 * Storage (single table): the key item `KEY#<sha256(key)>` holds everything authentication needs, so a root key
 * authenticates with one strongly consistent GetItem; `KEYID#<key_id>` maps the public key id to the hash so a key can
 * be revoked or rotated by id; GSI1 `ACCOUNT#<id>#KEYS` lists an account's keys. The raw key is never stored, logged
 * or put in an event: it exists only in the one response that mints it.
 *
 * Delegation: a key can mint a key with a subset of its scopes, expiring no later than itself. The child records its
 * ancestors (key id + hash, root first), and authentication reads every ancestor (one strongly consistent BatchGetItem,
 * one read unit per ancestor) so that revoking or expiring any ancestor kills the whole subtree at once, with nothing
 * cached anywhere that could keep a dead key alive.
 */

/** A delegated key may sit at most this many levels below a root key (bounds the reads of authentication). */
export const MAX_DELEGATION_DEPTH = 4;
/** Longest key lifetime and longest rotation overlap a caller may ask for. */
const MAX_LIFETIME_SECONDS = 10 * 365 * 86400;
export const MAX_GRACE_SECONDS = 30 * 86400;
/** Dead (revoked or expired) key records stay listable this long, then TTL removes them. */
const DEAD_KEY_RETENTION_SECONDS = 90 * 86400;

const Kind = v.picklist(["client", "miner", "admin"] as const);

const KeyRecord = v.object({
  PK: v.string(),
  keyId: v.string(),
  accountId: v.string(),
  kind: Kind,
  scopes: v.array(v.string()),
  name: v.optional(v.string()),
  createdAt: v.string(),
  revokedAt: v.optional(v.string()),
  keyExpiresAt: v.optional(v.string()),
  parentKeyId: v.optional(v.string()),
  ancestors: v.optional(v.array(v.object({ keyId: v.string(), hash: v.string() })), []),
  lineageId: v.optional(v.string()),
  rotatedFrom: v.optional(v.string()),
  rotatedTo: v.optional(v.string()),
});
type KeyRecord = v.InferOutput<typeof KeyRecord>;

const KeyRef = v.object({ keyId: v.string(), hash: v.string(), accountId: v.string() });

function hashOf(record: KeyRecord): string {
  return record.PK.slice("KEY#".length);
}

export type KeyStatus = "active" | "revoked" | "expired" | "parent_inactive";

function ownStatus(record: KeyRecord, now: number): "active" | "revoked" | "expired" {
  if (record.revokedAt) return "revoked";
  if (record.keyExpiresAt && Date.parse(record.keyExpiresAt) <= now) return "expired";
  return "active";
}

/** What callers see of a key: never the raw key, never its hash. */
export function keyView(record: KeyRecord, status: KeyStatus = ownStatus(record, Date.now())) {
  return {
    key_id: record.keyId,
    account_id: record.accountId,
    kind: record.kind,
    name: record.name ?? null,
    scopes: record.scopes,
    status,
    parent_key_id: record.parentKeyId ?? null,
    created_at: record.createdAt,
    expires_at: record.keyExpiresAt ?? null,
    revoked_at: record.revokedAt ?? null,
    rotated_from: record.rotatedFrom ?? null,
    rotated_to: record.rotatedTo ?? null,
  };
}
export type KeyView = ReturnType<typeof keyView>;

/** A freshly minted key: the only object that ever carries the raw key. */
export type IssuedKey = KeyView & { key: string };

// ---- input ----

const expiryFields = {
  expires_at: v.optional(
    v.pipe(
      v.string(),
      v.isoTimestamp("expires_at must be an ISO 8601 timestamp, e.g. 2030-01-01T00:00:00Z"),
      v.check((s) => !Number.isNaN(Date.parse(s)), "expires_at must be an ISO 8601 timestamp"),
    ),
  ),
  expires_in_seconds: v.optional(
    v.pipe(
      v.number(),
      v.safeInteger("expires_in_seconds must be an integer"),
      v.minValue(1, "expires_in_seconds must be at least 1"),
      v.maxValue(MAX_LIFETIME_SECONDS, `expires_in_seconds must be at most ${MAX_LIFETIME_SECONDS}`),
    ),
  ),
};

export const CreateKeyInput = v.optional(
  v.object({
    name: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(200))),
    scopes: v.optional(ScopeListSchema),
    ...expiryFields,
  }),
  {},
);

export const RotateKeyInput = v.optional(
  v.object({
    grace_seconds: v.optional(
      v.pipe(
        v.number(),
        v.safeInteger("grace_seconds must be an integer"),
        v.minValue(0, "grace_seconds must be at least 0"),
        v.maxValue(MAX_GRACE_SECONDS, `grace_seconds must be at most ${MAX_GRACE_SECONDS}`),
      ),
    ),
  }),
  {},
);

export const ListKeysQuery = v.object(pageQuery(100));

/** The absolute expiry asked for, if any; 422 if both forms are given or it is not in the future. */
function requestedExpiry(
  body: { expires_at?: string; expires_in_seconds?: number },
  now: number,
): string | undefined {
  if (body.expires_at !== undefined && body.expires_in_seconds !== undefined) {
    throw new ValidationError([
      { path: "body.expires_at", message: "give expires_at or expires_in_seconds, not both" },
    ]);
  }
  if (body.expires_in_seconds !== undefined)
    return new Date(now + body.expires_in_seconds * 1000).toISOString();
  if (body.expires_at === undefined) return undefined;
  const at = Date.parse(body.expires_at);
  if (at <= now)
    throw new ValidationError([{ path: "body.expires_at", message: "expires_at must be in the future" }]);
  if (at > now + MAX_LIFETIME_SECONDS * 1000) {
    throw new ValidationError([{ path: "body.expires_at", message: "expires_at is too far in the future" }]);
  }
  return new Date(at).toISOString();
}

function ttlFor(isoDeath: string): number {
  return Math.floor(Date.parse(isoDeath) / 1000) + DEAD_KEY_RETENTION_SECONDS;
}

// ---- reads ----

/** Loads a key by its public id (two strongly consistent GetItems). 404 if there is no such key. */
async function loadKeyById(keyId: string): Promise<KeyRecord> {
  knownId(keyId, "key", "API key");
  const ref = await readKeyRef(keyId);
  if (!ref) throw new NotFoundError("API key");
  const item = await readKeyItem(v.parse(KeyRef, ref).hash);
  if (!item) throw new NotFoundError("API key");
  return v.parse(KeyRecord, item);
}

/** Whether a key record with this hash exists (revoked or not), strongly consistent. */
export async function keyRecordExists(hash: string): Promise<boolean> {
  return (await readKeyItem(hash)) !== undefined;
}

/** Strongly consistent BatchGetItem by hash (retrying unprocessed keys); returns what exists, by hash. */
async function recordsByHash(hashes: string[]): Promise<Map<string, KeyRecord>> {
  const found = new Map<string, KeyRecord>();
  for (const item of await readKeyItems(hashes)) {
    const record = v.parse(KeyRecord, item);
    found.set(hashOf(record), record);
  }
  return found;
}

/** Why a chain of ancestors makes a key unusable, or undefined if every ancestor is alive. */
function deadAncestor(record: KeyRecord, byHash: Map<string, KeyRecord>, now: number): string | undefined {
  for (const a of record.ancestors) {
    const parent = byHash.get(a.hash);
    if (!parent || parent.keyId !== a.keyId || parent.accountId !== record.accountId)
      return "no longer exists";
    const status = ownStatus(parent, now);
    if (status !== "active") return `was ${status}`;
  }
  return undefined;
}

/**
 * Resolves a raw key to its principal, or 401. A malformed key (bad prefix or checksum) is refused without a lookup,
 * except `ak_` keys, which may be a bootstrap key chosen by the operator. A key verified in the last few seconds is
 * answered from this instance's cache (key-cache.ts: bounded staleness, evicted at once by a revocation here).
 * Otherwise: one strongly consistent GetItem for a root key (1 RCU); a delegated key adds one BatchGetItem reading
 * each ancestor (1 RCU per ancestor, at most MAX_DELEGATION_DEPTH).
 */
export async function authenticate(rawKey: string): Promise<Principal> {
  const shape = inspectApiKey(rawKey);
  if (!shape.ok && !rawKey.startsWith("ak_")) throw new UnauthorizedError("malformed API key");
  const hash = hashApiKey(rawKey);
  const cached = await cachedPrincipal(hash);
  if (cached) return cached;
  const item = await readKeyItem(hash);
  const refuse = (why: string, lineage: string[] = []): never => {
    rememberKey(hash, { refusal: why }, lineage);
    throw new UnauthorizedError(why);
  };
  if (!item) return refuse("unknown API key");
  const record = v.parse(KeyRecord, item);
  const lineage = [record.keyId, ...record.ancestors.map((a) => a.keyId)];
  const now = Date.now();
  const status = ownStatus(record, now);
  if (status !== "active") return refuse(`API key ${status}`, lineage);
  const expiries = [record.keyExpiresAt];
  if (record.ancestors.length > 0) {
    const byHash = await recordsByHash(record.ancestors.map((a) => a.hash));
    const why = deadAncestor(record, byHash, now);
    if (why) return refuse(`the key this API key was delegated from ${why}`, lineage);
    for (const a of byHash.values()) expiries.push(a.keyExpiresAt);
  }
  const principal: Principal = {
    accountId: record.accountId,
    kind: record.kind,
    keyId: record.keyId,
    scopes: record.scopes,
    lineageId: record.lineageId ?? record.keyId,
  };
  const soonest = Math.min(...expiries.map((e) => (e ? Date.parse(e) : Number.POSITIVE_INFINITY)));
  rememberKey(hash, { principal }, lineage, soonest, now);
  return principal;
}

// ---- writes ----

interface NewKey {
  accountId: string;
  kind: AccountKind;
  scopes: string[];
  name?: string;
  expiresAt?: string;
  parent?: KeyRecord;
  /** Shared with the key it replaces (rotation) or delegates from; a root key starts its own lineage. */
  lineageId?: string;
  rotatedFrom?: KeyRecord;
  /** Use this raw key instead of generating one (the operator-chosen bootstrap key). */
  rawKey?: string;
}

function newKeyItems(spec: NewKey, now: Date) {
  const key = spec.rawKey ?? generateApiKey(spec.kind);
  const hash = hashApiKey(key);
  const keyId = newId("key", now.getTime());
  const ancestors = spec.parent
    ? [...spec.parent.ancestors, { keyId: spec.parent.keyId, hash: hashOf(spec.parent) }]
    : (spec.rotatedFrom?.ancestors ?? []);
  const record: KeyRecord = {
    ...keys.apiKey(hash),
    keyId,
    accountId: spec.accountId,
    kind: spec.kind,
    scopes: spec.scopes,
    name: spec.name,
    createdAt: now.toISOString(),
    keyExpiresAt: spec.expiresAt,
    parentKeyId: spec.parent?.keyId ?? spec.rotatedFrom?.parentKeyId,
    ancestors,
    lineageId: spec.lineageId ?? keyId,
    rotatedFrom: spec.rotatedFrom?.keyId,
  };
  const ttl = spec.expiresAt ? { expiresAt: ttlFor(spec.expiresAt) } : {};
  const items = {
    account: {
      ConditionCheck: {
        TableName: config.tableName,
        Key: keys.account(spec.accountId),
        ConditionExpression: "attribute_exists(PK)",
      },
    },
    key: {
      Put: {
        TableName: config.tableName,
        Item: {
          ...record,
          ...keys.apiKey(hash),
          ...keys.apiKeyByAccount(spec.accountId, keyId),
          entity: "apiKey",
          ...ttl,
        },
        ConditionExpression: "attribute_not_exists(PK)",
      },
    },
    keyRef: {
      Put: {
        TableName: config.tableName,
        Item: {
          ...keys.apiKeyRef(keyId),
          entity: "apiKeyRef",
          keyId,
          hash,
          accountId: spec.accountId,
          ...ttl,
        },
        ConditionExpression: "attribute_not_exists(PK)",
      },
    },
  } satisfies NamedItems;
  return { key, record, items };
}

/** Mints a root key for an account (admin route, bootstrap). Scopes default to the account kind's. */
export async function mintRootKey(
  account: { id: string; kind: AccountKind },
  input: unknown,
  ctx: Ctx,
  rawKey?: string,
): Promise<IssuedKey> {
  const body = parse(CreateKeyInput, input, "body");
  const now = new Date();
  const scopes = body.scopes ?? DEFAULT_SCOPES[account.kind];
  if (account.kind !== "admin" && scopes.includes("admin:*")) {
    throw new ValidationError([{ path: "body.scopes", message: "only admin accounts can hold admin:*" }]);
  }
  const expiresAt = requestedExpiry(body, now.getTime());
  const minted = newKeyItems(
    { accountId: account.id, kind: account.kind, scopes, name: body.name, expiresAt, rawKey },
    now,
  );
  try {
    await transact({
      ...minted.items,
      event: outboxPut({
        type: "api_key.created.v1",
        subjectPk: keys.account(account.id).PK,
        subject: account.id,
        accountId: account.id,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: { account_id: account.id, key_id: minted.record.keyId, scopes, expires_at: expiresAt },
        at: now,
      }),
    });
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("account")) throw new NotFoundError("account");
    throw err;
  }
  return { key: minted.key, ...keyView(minted.record, "active") };
}

function callerOf(ctx: Ctx): Principal {
  if (!ctx.principal) throw new UnauthorizedError();
  return ctx.principal;
}

/**
 * Mints a key delegated from the caller's key: a subset of its scopes (default: all of them), expiring no later than
 * it (default: when it does). Asking for a scope the caller lacks is 403; an expiry past the caller's is 422.
 */
export async function delegateKey(input: unknown, ctx: Ctx): Promise<IssuedKey> {
  const body = parse(CreateKeyInput, input, "body");
  const caller = callerOf(ctx);
  const parent = await loadKeyById(caller.keyId);
  const now = new Date();
  const scopes = body.scopes ?? parent.scopes;
  const beyond = scopesBeyond(parent.scopes, scopes);
  if (beyond.length > 0) {
    throw new ForbiddenError(`a delegated key cannot hold scopes its parent lacks: ${beyond.join(", ")}`);
  }
  if (parent.ancestors.length + 1 > MAX_DELEGATION_DEPTH) {
    throw new ForbiddenError(`keys can be delegated at most ${MAX_DELEGATION_DEPTH} levels deep`);
  }
  let expiresAt = requestedExpiry(body, now.getTime());
  if (parent.keyExpiresAt) {
    if (expiresAt && Date.parse(expiresAt) > Date.parse(parent.keyExpiresAt)) {
      throw new ValidationError([
        {
          path: "body.expires_at",
          message: `a delegated key cannot outlive its parent (${parent.keyExpiresAt})`,
        },
      ]);
    }
    expiresAt ??= parent.keyExpiresAt;
  }
  const minted = newKeyItems(
    {
      accountId: parent.accountId,
      kind: parent.kind,
      scopes,
      name: body.name,
      expiresAt,
      parent,
      lineageId: parent.lineageId ?? parent.keyId,
    },
    now,
  );
  await transact({
    ...minted.items,
    event: outboxPut({
      type: "api_key.delegated.v1",
      subjectPk: keys.account(parent.accountId).PK,
      subject: parent.accountId,
      accountId: parent.accountId,
      correlationId: ctx.correlationId,
      actor: actorOf(ctx),
      data: {
        account_id: parent.accountId,
        key_id: minted.record.keyId,
        parent_key_id: parent.keyId,
        scopes,
        expires_at: expiresAt,
      },
      at: now,
    }),
  });
  return { key: minted.key, ...keyView(minted.record, "active") };
}

/** How a key action is authorised: an admin acting on any account, or a key holder acting on its own account. */
export type KeyAuthority = "admin" | "owner";

/**
 * A key holder may manage a key of its own account if the key is its own or one it (transitively) delegated, or if
 * the caller is a root key (the account's own credential). Another account's key is 404, as if it did not exist.
 */
async function authorize(target: KeyRecord, ctx: Ctx, authority: KeyAuthority): Promise<void> {
  const caller = callerOf(ctx);
  if (authority === "admin") return;
  if (target.accountId !== caller.accountId) throw new NotFoundError("API key");
  if (target.keyId === caller.keyId || target.ancestors.some((a) => a.keyId === caller.keyId)) return;
  const own = await loadKeyById(caller.keyId);
  if (own.ancestors.length === 0) return;
  throw new ForbiddenError("a delegated key can manage only itself and the keys delegated from it");
}

/** Revokes a key (and so, at authentication, every key delegated from it). Revoking a revoked key changes nothing. */
export async function revokeKey(keyId: string, ctx: Ctx, authority: KeyAuthority): Promise<KeyView> {
  const target = await loadKeyById(keyId);
  await authorize(target, ctx, authority);
  if (target.revokedAt) return keyView(target);
  const now = new Date();
  const revokedAt = now.toISOString();
  const ttl = ttlFor(revokedAt);
  try {
    await transact({
      key: {
        Update: {
          TableName: config.tableName,
          Key: keys.apiKey(hashOf(target)),
          UpdateExpression: "SET revokedAt = :r, expiresAt = :ttl",
          ConditionExpression: "attribute_exists(PK) AND attribute_not_exists(revokedAt)",
          ExpressionAttributeValues: { ":r": revokedAt, ":ttl": ttl },
        },
      },
      keyRef: {
        Update: {
          TableName: config.tableName,
          Key: keys.apiKeyRef(target.keyId),
          UpdateExpression: "SET expiresAt = :ttl",
          ExpressionAttributeValues: { ":ttl": ttl },
        },
      },
      event: outboxPut({
        type: "api_key.revoked.v1",
        subjectPk: keys.account(target.accountId).PK,
        subject: target.accountId,
        accountId: target.accountId,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: { account_id: target.accountId, key_id: target.keyId },
        at: now,
      }),
      // Other instances' caches drop the key at their next look at the feed.
      feed: feedItem(target.keyId, now),
    });
  } catch (err) {
    // Revoked concurrently: the outcome the caller asked for holds either way.
    if (!(err instanceof TransactionRefused && err.refusedBy("key"))) throw err;
    return keyView(await loadKeyById(keyId));
  }
  forgetKey(target.keyId);
  return keyView({ ...target, revokedAt });
}

/**
 * Replaces a key with a new one holding the same scopes, name, parent and expiry. The old key keeps working for
 * `grace_seconds` (default 0: it stops at once) and then expires, taking the keys delegated from it with it. A key
 * can be rotated once; rotating a revoked, expired or already rotated key is 409.
 */
export async function rotateKey(
  keyId: string,
  input: unknown,
  ctx: Ctx,
  authority: KeyAuthority,
): Promise<IssuedKey & { previous: KeyView }> {
  const body = parse(RotateKeyInput, input, "body");
  const target = await loadKeyById(keyId);
  await authorize(target, ctx, authority);
  const now = new Date();
  if (ownStatus(target, now.getTime()) !== "active" || target.rotatedTo) {
    throw new ConflictError("only an active key that was not rotated yet can be rotated", { key_id: keyId });
  }
  const graceEnd = now.getTime() + (body.grace_seconds ?? 0) * 1000;
  const previousExpiresAt = new Date(
    target.keyExpiresAt ? Math.min(graceEnd, Date.parse(target.keyExpiresAt)) : graceEnd,
  ).toISOString();
  const minted = newKeyItems(
    {
      accountId: target.accountId,
      kind: target.kind,
      scopes: target.scopes,
      name: target.name,
      expiresAt: target.keyExpiresAt,
      lineageId: target.lineageId ?? target.keyId,
      rotatedFrom: target,
    },
    now,
  );
  const ttl = ttlFor(previousExpiresAt);
  try {
    await transact({
      ...minted.items,
      previous: {
        Update: {
          TableName: config.tableName,
          Key: keys.apiKey(hashOf(target)),
          UpdateExpression: "SET rotatedTo = :to, keyExpiresAt = :exp, expiresAt = :ttl",
          ConditionExpression:
            "attribute_exists(PK) AND attribute_not_exists(revokedAt) AND attribute_not_exists(rotatedTo) AND (attribute_not_exists(keyExpiresAt) OR keyExpiresAt > :now)",
          ExpressionAttributeValues: {
            ":to": minted.record.keyId,
            ":exp": previousExpiresAt,
            ":ttl": ttl,
            ":now": now.toISOString(),
          },
        },
      },
      previousRef: {
        Update: {
          TableName: config.tableName,
          Key: keys.apiKeyRef(target.keyId),
          UpdateExpression: "SET expiresAt = :ttl",
          ExpressionAttributeValues: { ":ttl": ttl },
        },
      },
      event: outboxPut({
        type: "api_key.rotated.v1",
        subjectPk: keys.account(target.accountId).PK,
        subject: target.accountId,
        accountId: target.accountId,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: {
          account_id: target.accountId,
          key_id: minted.record.keyId,
          previous_key_id: target.keyId,
          previous_expires_at: previousExpiresAt,
        },
        at: now,
      }),
      // Other instances' caches learn the old key's new expiry from the feed.
      feed: feedItem(target.keyId, now),
    });
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("previous")) {
      throw new ConflictError("the key was revoked, expired or rotated meanwhile", { key_id: keyId });
    }
    throw err;
  }
  // The old key's cached entry would outlive a grace period shorter than the cache bound.
  forgetKey(target.keyId);
  const previous = { ...target, rotatedTo: minted.record.keyId, keyExpiresAt: previousExpiresAt };
  return { key: minted.key, ...keyView(minted.record, "active"), previous: keyView(previous) };
}

/**
 * An account's keys, newest first, each with its effective status (a key whose ancestor is revoked or expired is
 * `parent_inactive`). Costs one GSI query plus one BatchGetItem for ancestors not on the page.
 */
export async function listKeys(accountId: string, query: unknown): Promise<Page<KeyView>> {
  const { cursor, limit } = parse(ListKeysQuery, query, "query");
  const page = await accountKeysPage(accountId, limit ?? 50, cursor);
  const records = page.items.map((i) => v.parse(KeyRecord, i));
  const byHash = new Map(records.map((r) => [hashOf(r), r]));
  const missing = records.flatMap((r) => r.ancestors.map((a) => a.hash)).filter((h) => !byHash.has(h));
  for (const [hash, record] of await recordsByHash(missing)) byHash.set(hash, record);
  const now = Date.now();
  return {
    items: records.map((r) => {
      const own = ownStatus(r, now);
      return keyView(r, own === "active" && deadAncestor(r, byHash, now) ? "parent_inactive" : own);
    }),
    next_cursor: page.next_cursor,
  };
}

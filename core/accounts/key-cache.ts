import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../db/outbox.ts";
import { UnauthorizedError } from "../errors.ts";
import { setting } from "../settings.ts";
import { TtlCache } from "../ttl-cache.ts";
import { readKeyFeed } from "./key-store.ts";

/**
 * Verified keys, per instance (a Lambda instance, a local server). A request is authenticated from here when it
 * can be, so the request path reads nothing from DynamoDB for a key this instance has verified before.
 *
 * Staleness is bounded by a revocation feed rather than by each entry's age. Every revocation and rotation writes
 * the key's id into the current ten-minute window item (`KEYFEED#<window>`) in the transaction that revokes it. An
 * instance reads the current and the previous window (one BatchGetItem, strongly consistent) at most every
 * COORD_KEY_CACHE_SECONDS (default 5, at most 5) while it serves requests, and drops every entry whose key, or a key
 * it was delegated from, was revoked or rotated after the entry was verified. So a revoked key stops working in
 * every instance within the bound, at once in the instance that revoked it (it evicts its own entries), and the check
 * costs one read per instance and period, not one per key: a fleet of idle miners polling one instance costs nothing
 * per poll. An entry lives at most one window (the feed an instance reads covers that long) and never past the moment
 * the key or an ancestor expires (a rotation's grace end included). Refusals (unknown, revoked, expired) are kept the
 * same way, so a flood of bad keys costs one read per key, not one per request.
 */
interface Entry {
  principal?: Principal;
  refusal?: string;
  /** The key's id and its ancestors' ids: revoking any of them evicts this entry. */
  lineage: string[];
  /** When this instance verified the key (ms). */
  verifiedAt: number;
}

/** The feed's window length, and so the longest an entry is kept. */
export const FEED_WINDOW_MS = 10 * 60_000;
const entries = new TtlCache<Entry>(() => (keyCacheMs() > 0 ? FEED_WINDOW_MS : 0));

export function keyCacheMs(): number {
  return setting("COORD_KEY_CACHE_SECONDS") * 1000;
}

const windowOf = (ms: number) => new Date(ms - (ms % FEED_WINDOW_MS)).toISOString();

/** The feed entry a revocation or rotation of `keyId` adds, in its own transaction. */
export function feedItem(keyId: string, at: Date): TransactItem {
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.keyFeed(windowOf(at.getTime())),
      // A top-level attribute per key (`k:<key id>`): a nested path would need the map to exist first.
      UpdateExpression: "SET #k = :at, expiresAt = :ttl, entity = :e",
      ExpressionAttributeNames: { "#k": `k:${keyId}` },
      ExpressionAttributeValues: {
        ":at": at.getTime(),
        ":ttl": Math.floor((at.getTime() + 3 * FEED_WINDOW_MS) / 1000),
        ":e": "keyFeed",
      },
    },
  };
}

let checkedAt = 0;
let checking: Promise<void> | undefined;
/** Key id -> when the feed last saw it revoked or rotated, as of the last read. */
let changedAt = new Map<string, number>();

/** Reads the feed if this instance has not in the last period, and drops the entries it makes stale. */
async function ensureFresh(now: number): Promise<void> {
  if (now - checkedAt < keyCacheMs()) return;
  checking ??= (async () => {
    const started = Date.now();
    const changed = new Map<string, number>();
    for (const item of await readKeyFeed([windowOf(started), windowOf(started - FEED_WINDOW_MS)])) {
      for (const [attr, at] of Object.entries(item)) {
        if (!attr.startsWith("k:")) continue;
        const id = attr.slice(2);
        changed.set(id, Math.max(changed.get(id) ?? 0, Number(at)));
      }
    }
    // A change at the same millisecond as a verification (or a little clock skew between instances) evicts too.
    entries.deleteWhere((e) => e.lineage.some((id) => (changed.get(id) ?? -1) >= e.verifiedAt - 1000));
    changedAt = changed;
    checkedAt = started;
  })().finally(() => {
    checking = undefined;
  });
  await checking;
}

/**
 * Whether `keyId` was revoked or rotated after `verifiedAt` (ms), by the same feed and within the same bound as the
 * cache: for a verdict kept outside it (a doorbell socket on AWS, whose frames carry the connection, not the key).
 */
export async function changedSince(keyId: string, verifiedAt: number, now = Date.now()): Promise<boolean> {
  await ensureFresh(now);
  return (changedAt.get(keyId) ?? -1) >= verifiedAt - 1000;
}

/** The cached verdict for a key hash, if still trusted: the principal, or a thrown 401. */
export async function cachedPrincipal(hash: string, now = Date.now()): Promise<Principal | undefined> {
  if (keyCacheMs() <= 0 || !entries.get(hash, now)) return undefined;
  await ensureFresh(now);
  const entry = entries.get(hash, now);
  if (entry?.refusal) throw new UnauthorizedError(entry.refusal);
  return entry?.principal;
}

/** Remembers a verdict until `expiresAt` (ms) or one feed window, whichever comes first. */
export function rememberKey(
  hash: string,
  verdict: { principal: Principal } | { refusal: string },
  lineage: string[],
  expiresAt = Number.POSITIVE_INFINITY,
  now = Date.now(),
): void {
  entries.set(hash, { ...verdict, lineage, verifiedAt: now }, expiresAt, now);
}

/** Evicts a key and every key delegated from it (called after this instance revoked or rotated it). */
export function forgetKey(keyId: string): void {
  entries.deleteWhere((e) => e.lineage.includes(keyId));
}

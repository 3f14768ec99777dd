import type { Principal } from "../context.ts";
import { UnauthorizedError } from "../errors.ts";
import { setting } from "../settings.ts";
import { TtlCache } from "../ttl-cache.ts";

/**
 * Verified keys, per instance (a Lambda instance, a local server). A request is authenticated from here when it
 * can be, so the request path reads nothing from DynamoDB for a key seen in the last few seconds.
 *
 * Staleness is bounded: an entry is trusted for at most COORD_KEY_CACHE_SECONDS (default 5) and never past the
 * moment the key, or a key it was delegated from, expires (a rotation's grace end included). A revocation or
 * rotation evicts the key and every key delegated from it in the instance that made it, at once; every other
 * instance stops accepting it when its entry lapses, within the bound. Refusals (unknown, revoked, expired) are
 * kept the same way, so a flood of bad keys costs one read per key and bound, not one per request.
 */
interface Entry {
  principal?: Principal;
  refusal?: string;
  /** The key's id and its ancestors' ids: revoking any of them evicts this entry. */
  lineage: string[];
}

const entries = new TtlCache<Entry>(() => keyCacheMs());

export function keyCacheMs(): number {
  return setting("COORD_KEY_CACHE_SECONDS") * 1000;
}

/** The cached verdict for a key hash, if still trusted: the principal, or a thrown 401. */
export function cachedPrincipal(hash: string, now = Date.now()): Principal | undefined {
  const entry = entries.get(hash, now);
  if (entry?.refusal) throw new UnauthorizedError(entry.refusal);
  return entry?.principal;
}

/** Remembers a verdict until `expiresAt` (ms) or the staleness bound, whichever comes first. */
export function rememberKey(
  hash: string,
  verdict: { principal: Principal } | { refusal: string },
  lineage: string[],
  expiresAt = Number.POSITIVE_INFINITY,
  now = Date.now(),
): void {
  entries.set(hash, { ...verdict, lineage }, expiresAt, now);
}

/** Evicts a key and every key delegated from it (called after this instance revoked or rotated it). */
export function forgetKey(keyId: string): void {
  entries.deleteWhere((e) => e.lineage.includes(keyId));
}

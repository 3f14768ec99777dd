import * as v from "valibot";
import type { AccountKind } from "./api-key.ts";

/**
 * Every scope a key can hold. A route names the one scope it needs; `<area>:*` covers every scope of its area and
 * `admin:*` covers everything. Add a scope here when a route needs a new one: an unknown scope is refused at minting
 * so that a typo cannot silently produce a key that can do nothing.
 */
export const SCOPES = [
  "jobs:read",
  "jobs:write",
  "jobs:*",
  "miners:work",
  "miners:*",
  "account:read",
  "account:write",
  "account:*",
  "payments:write",
  "payments:*",
  "payouts:write",
  "receipts:read",
  "keys:read",
  "keys:write",
  "keys:*",
  "webhooks:read",
  "webhooks:write",
  "webhooks:*",
  "pools:read",
  "pools:write",
  "pools:*",
  "admin:*",
] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key gets when its minting names no scopes. `keys:*` lets any key holder mint narrower delegated keys. */
export const DEFAULT_SCOPES: Record<AccountKind, Scope[]> = {
  client: [
    "jobs:read",
    "jobs:write",
    "account:read",
    "account:write",
    "payments:write",
    "receipts:read",
    "keys:read",
    "keys:write",
    "webhooks:read",
    "webhooks:write",
    "pools:read",
    "pools:write",
  ],
  miner: [
    "miners:work",
    "account:read",
    "account:write",
    "payouts:write",
    "receipts:read",
    "keys:read",
    "keys:write",
    "pools:read",
    "pools:write",
  ],
  admin: ["admin:*"],
};

export const ScopeSchema = v.picklist(SCOPES, `scope must be one of ${SCOPES.join(", ")}`);

export const ScopeListSchema = v.pipe(
  v.array(ScopeSchema),
  v.minLength(1, "a key needs at least one scope"),
  v.maxLength(SCOPES.length),
  v.transform((scopes) => [...new Set(scopes)]),
);

/** Does `granted` cover `needed`? `admin:*` covers every scope; `jobs:*` covers `jobs:read` (and `jobs:*`). */
export function hasScope(granted: readonly string[], needed: string): boolean {
  const [area] = needed.split(":");
  return granted.some((g) => g === needed || g === "admin:*" || g === `${area}:*`);
}

/** The scopes of `wanted` that `granted` does not cover (empty when `wanted` is a subset). */
export function scopesBeyond(granted: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((s) => !hasScope(granted, s));
}

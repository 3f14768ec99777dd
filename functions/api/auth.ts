import { createMiddleware } from "hono/factory";
import { authenticate } from "../../core/accounts/accounts.ts";
import type { AccountKind } from "../../core/accounts/api-key.ts";
import { ForbiddenError, UnauthorizedError } from "../../core/errors.ts";
import type { AppEnv } from "./env.ts";

function rawKey(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) throw new UnauthorizedError("Authorization must be 'Bearer <key>'");
    return m[1];
  }
  return apiKey?.trim() || undefined;
}

/** Does `granted` cover `needed`? `admin:*` covers every scope; `jobs:*` covers `jobs:read`. */
export function hasScope(granted: string[], needed: string): boolean {
  const [area] = needed.split(":");
  return granted.some((g) => g === needed || g === "admin:*" || g === `${area}:*`);
}

/**
 * Authenticates `Authorization: Bearer <key>` or `X-Api-Key`, then checks the key's kind and scope. A wrong kind is
 * 403: the key is valid, it just may not do this.
 */
export function requireAuth(opts: { kinds: AccountKind[]; scope: string }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = rawKey(c.req.header("authorization"), c.req.header("x-api-key"));
    if (!key) throw new UnauthorizedError("missing API key: send 'Authorization: Bearer <key>'");
    const principal = await authenticate(key);
    if (!opts.kinds.includes(principal.kind)) {
      throw new ForbiddenError(`a ${principal.kind} key cannot use this route`);
    }
    if (!hasScope(principal.scopes, opts.scope))
      throw new ForbiddenError(`this key lacks scope '${opts.scope}'`);
    c.set("principal", principal);
    await next();
  });
}

export const adminOnly = requireAuth({ kinds: ["admin"], scope: "admin:*" });

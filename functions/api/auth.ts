import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AccountKind } from "../../core/accounts/api-key.ts";
import { authenticate } from "../../core/accounts/keys.ts";
import { hasScope } from "../../core/accounts/scopes.ts";
import type { Ctx, Principal } from "../../core/context.ts";
import { ForbiddenError, UnauthorizedError } from "../../core/errors.ts";
import type { AppEnv } from "./env.ts";

export { hasScope } from "../../core/accounts/scopes.ts";

function rawKey(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) throw new UnauthorizedError("Authorization must be 'Bearer <key>'");
    return m[1];
  }
  return apiKey?.trim() || undefined;
}

/**
 * Authenticates `Authorization: Bearer <key>` or `X-Api-Key` (401 if missing, malformed, unknown, revoked, expired or
 * delegated from a key that is no longer valid), then checks the key's kind and scope: a valid key that may not do
 * this is 403. The raw key never leaves this function: the principal carries ids only.
 */
export function requireAuth(opts: { kinds: AccountKind[]; scope: string }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    c.set("principal", await authorize(c.req.header("authorization"), c.req.header("x-api-key"), opts));
    await next();
  });
}

/** The check of `requireAuth` outside a route (the doorbell's WebSocket upgrade): the principal, or the error. */
export async function authorize(
  authorization: string | undefined,
  apiKey: string | undefined,
  opts: { kinds: AccountKind[]; scope: string },
): Promise<Principal> {
  const key = rawKey(authorization, apiKey);
  if (!key) throw new UnauthorizedError("missing API key: send 'Authorization: Bearer <key>'");
  const principal = await authenticate(key);
  if (!opts.kinds.includes(principal.kind)) {
    throw new ForbiddenError(`a ${principal.kind} key cannot use this route`);
  }
  if (!hasScope(principal.scopes, opts.scope))
    throw new ForbiddenError(`this key lacks scope '${opts.scope}'`);
  return principal;
}

/** What a miner's work routes (and the doorbell) require. */
export const MINER_WORK = { kinds: ["miner"] as AccountKind[], scope: "miners:work" };

export function requireScope(scope: string) {
  return requireAuth({ kinds: ["client", "miner", "admin"], scope });
}

export const adminOnly = requireAuth({ kinds: ["admin"], scope: "admin:*" });

/** The core context of a request: who is calling and the request id that every event carries as correlation id. */
export function ctxOf(c: Context<AppEnv>): Ctx {
  return { principal: c.var.principal, correlationId: c.var.requestId };
}

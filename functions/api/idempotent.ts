import type { Context } from "hono";
import { type Answer, idempotent } from "../../core/idempotency/idempotency.ts";
import type { AppEnv } from "./env.ts";

/**
 * Runs a change under the request's `Idempotency-Key` (core/idempotency): a repeat with the same key and request
 * replays the first answer (`Idempotent-Replayed: true`), a different request with the key is 422.
 */
export async function once<T>(c: Context<AppEnv>, body: unknown, run: () => Promise<Answer<T>>) {
  const out = await idempotent(
    c.var.principal.accountId,
    c.req.header("idempotency-key"),
    { route: `${c.req.method} ${c.req.path}`, body },
    run,
  );
  if (out.replayed) c.header("Idempotent-Replayed", "true");
  return out.status === 204 ? c.body(null, 204) : c.json(out.body, out.status);
}

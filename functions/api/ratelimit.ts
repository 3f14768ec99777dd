import { createMiddleware } from "hono/factory";
import { RateLimitedError } from "../../core/errors.ts";
import { series } from "../../core/observability/metrics.ts";
import { consume, consumeLocal, limitFor, type RouteClass } from "../../core/ratelimit/index.ts";
import { log } from "../log.ts";
import type { AppEnv } from "./env.ts";

/**
 * Rate-limits a route by the caller's key lineage (a key, its delegates and rotations share one bucket) and route
 * class. Mount it after `requireAuth`. Over the limit: 429 `rate_limited` with `Retry-After`. Every answer carries
 * `RateLimit-Limit` (the burst) and `RateLimit-Remaining`. If the limiter's store fails the request goes through
 * (fail open) and the error is logged: a limiter outage must not become an API outage. `local`: the bucket is this
 * instance's alone, in memory (heartbeats: `consumeLocal`).
 */
export function rateLimit(routeClass: RouteClass, opts: { local?: boolean } = {}) {
  // A malformed COORD_RATE_<CLASS> fails here, when the routes are built (cold start), not request by request.
  limitFor(routeClass);
  const take = opts.local ? consumeLocal : consume;
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.var.principal;
    if (!principal) throw new Error(`rateLimit(${routeClass}) must run after requireAuth`);
    const limit = limitFor(routeClass);
    let decision: Awaited<ReturnType<typeof consume>>;
    try {
      decision = await take(principal.lineageId ?? principal.keyId, routeClass, limit);
    } catch (err) {
      log.error("rate limiter unavailable; request allowed", {
        request_id: c.var.requestId,
        route_class: routeClass,
        err: (err as Error).name,
      });
      return next();
    }
    if (decision) {
      c.header("RateLimit-Limit", String(decision.limit.burst));
      c.header("RateLimit-Remaining", String(decision.remaining));
      if (!decision.allowed) {
        series.rateLimited.inc({ class: routeClass });
        throw new RateLimitedError(decision.retryAfterSeconds);
      }
    }
    await next();
  });
}

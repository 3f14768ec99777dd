import { ForbiddenError } from "../../../core/errors.ts";
import { EXPOSITION_TYPE } from "../../../core/observability/metrics.ts";
import { authorize } from "../auth.ts";
import { documentedRoutes } from "../openapi.ts";
import { scrape } from "../scrape.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

/** The peer's address when served by Node (`@hono/node-server` puts the request's socket on the env). */
function peerAddress(env: unknown): string | undefined {
  return (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket
    ?.remoteAddress;
}

/**
 * `GET /metrics`: Prometheus' text format. An admin key is required, except from this machine itself when
 * `COORD_METRICS_LOOPBACK=1`, which `npm start` sets (a Prometheus beside it scrapes without a key; on Lambda there is
 * no loopback peer, so the key is always needed). A key header that is sent is always checked, even an empty one: a
 * client or miner key is 403, whatever the address.
 */
export const metricsRoute = documentedRoutes("", "meta").get(
  "/metrics",
  {
    summary: "Prometheus metrics (admin key; a loopback peer needs none under npm start)",
    auth: "admin",
    responses: {
      "200": "text/plain; version=0.0.4",
      "401": "no key from a remote peer",
      "403": "not an admin key",
    },
  },
  async (c) => {
    const authorization = c.req.header("authorization");
    const apiKey = c.req.header("x-api-key");
    const peer = peerAddress(c.env);
    const keyless =
      process.env.COORD_METRICS_LOOPBACK === "1" &&
      authorization === undefined &&
      apiKey === undefined &&
      peer !== undefined &&
      LOOPBACK.has(peer);
    if (!keyless) {
      const principal = await authorize(authorization, apiKey, { kinds: ["admin"], scope: "admin:*" });
      if (principal.kind !== "admin") throw new ForbiddenError("metrics need an admin key");
    }
    return c.body(await scrape(), 200, { "content-type": EXPOSITION_TYPE, "cache-control": "no-store" });
  },
).app;

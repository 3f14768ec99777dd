import * as v from "valibot";
import {
  AdminJobsQuery,
  AdminMinersQuery,
  adminListJobs,
  adminListMiners,
  adminSetMiner,
} from "../../../core/admin/listings.ts";
import { adminStats } from "../../../core/admin/stats.ts";
import { parse } from "../../../core/validate.ts";
import { requireAuth } from "../auth.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const guard = [requireAuth({ kinds: ["admin"], scope: "admin:*" }), rateLimit("admin")] as const;
const Minutes = v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(60)), "5");

/** Operations on jobs and miners (mounted beside the account/key admin routes under /v1/admin). */
export const adminOps = documentedRoutes("/v1/admin", "admin")
  .get(
    "/stats",
    { summary: "Queue depth, live jobs, miners, recent throughput and failure rate", auth: "admin" },
    ...guard,
    async (c) => c.json(await adminStats(Number(parse(Minutes, c.req.query("minutes"), "query.minutes")))),
  )
  .get(
    "/jobs",
    { summary: "Jobs across accounts (live ones, or one account's)", auth: "admin", query: AdminJobsQuery },
    ...guard,
    async (c) => c.json(await adminListJobs(c.req.query())),
  )
  .get(
    "/miners",
    { summary: "Miners by status", auth: "admin", query: AdminMinersQuery },
    ...guard,
    async (c) => c.json(await adminListMiners(c.req.query())),
  )
  .post("/miners/:id/drain", { summary: "Drain a miner", auth: "admin" }, ...guard, async (c) =>
    c.json(
      await adminSetMiner(c.req.param("id"), "drain", {
        principal: c.var.principal,
        correlationId: c.var.requestId,
      }),
    ),
  )
  .post(
    "/miners/:id/ban",
    { summary: "Ban a miner (its leases lapse to others)", auth: "admin" },
    ...guard,
    async (c) =>
      c.json(
        await adminSetMiner(c.req.param("id"), "ban", {
          principal: c.var.principal,
          correlationId: c.var.requestId,
        }),
      ),
  )
  .post("/miners/:id/unban", { summary: "Lift a ban", auth: "admin" }, ...guard, async (c) =>
    c.json(
      await adminSetMiner(c.req.param("id"), "unban", {
        principal: c.var.principal,
        correlationId: c.var.requestId,
      }),
    ),
  ).app;

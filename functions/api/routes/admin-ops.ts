import { Hono } from "hono";
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
import type { AppEnv } from "../env.ts";
import { documented } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const guard = [requireAuth({ kinds: ["admin"], scope: "admin:*" }), rateLimit("admin")] as const;
const Minutes = v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(60)), "5");

documented({
  method: "get",
  path: "/v1/admin/stats",
  summary: "Queue depth, live jobs, miners, recent throughput and failure rate",
  tag: "admin",
  auth: "admin",
});
documented({
  method: "get",
  path: "/v1/admin/jobs",
  summary: "Jobs across accounts (live ones, or one account's)",
  tag: "admin",
  auth: "admin",
  query: AdminJobsQuery,
});
documented({
  method: "get",
  path: "/v1/admin/miners",
  summary: "Miners by status",
  tag: "admin",
  auth: "admin",
  query: AdminMinersQuery,
});
documented({
  method: "post",
  path: "/v1/admin/miners/{id}/drain",
  summary: "Drain a miner",
  tag: "admin",
  auth: "admin",
});
documented({
  method: "post",
  path: "/v1/admin/miners/{id}/ban",
  summary: "Ban a miner (its leases lapse to others)",
  tag: "admin",
  auth: "admin",
});
documented({
  method: "post",
  path: "/v1/admin/miners/{id}/unban",
  summary: "Lift a ban",
  tag: "admin",
  auth: "admin",
});

/** Operations on jobs and miners (mounted beside the account/key admin routes under /v1/admin). */
export const adminOps = new Hono<AppEnv>()
  .get("/stats", ...guard, async (c) =>
    c.json(await adminStats(Number(parse(Minutes, c.req.query("minutes"), "query.minutes")))),
  )
  .get("/jobs", ...guard, async (c) => c.json(await adminListJobs(c.req.query())))
  .get("/miners", ...guard, async (c) => c.json(await adminListMiners(c.req.query())))
  .post("/miners/:id/drain", ...guard, async (c) =>
    c.json(
      await adminSetMiner(c.req.param("id"), "drain", {
        principal: c.var.principal,
        correlationId: c.var.requestId,
      }),
    ),
  )
  .post("/miners/:id/ban", ...guard, async (c) =>
    c.json(
      await adminSetMiner(c.req.param("id"), "ban", {
        principal: c.var.principal,
        correlationId: c.var.requestId,
      }),
    ),
  )
  .post("/miners/:id/unban", ...guard, async (c) =>
    c.json(
      await adminSetMiner(c.req.param("id"), "unban", {
        principal: c.var.principal,
        correlationId: c.var.requestId,
      }),
    ),
  );

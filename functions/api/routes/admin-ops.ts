import * as v from "valibot";
import {
  AdminJobsQuery,
  AdminMinersQuery,
  adminListJobs,
  adminListMiners,
  adminSetMiner,
} from "../../../core/admin/listings.ts";
import { adminStats } from "../../../core/admin/stats.ts";
import { OperatorCancelInput, operatorCancel, RefundInput, refundJob } from "../../../core/jobs/refund.ts";
import { parse } from "../../../core/validate.ts";
import { ctxOf, requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { once } from "../idempotent.ts";
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
  .post(
    "/jobs/:id/cancel",
    {
      summary: "Cancel any account's queued or leased job, with a reason (audited; the hold is released)",
      auth: "admin",
      body: OperatorCancelInput,
      responses: { "200": "cancelled", "409": "already terminal" },
    },
    ...guard,
    async (c) => {
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 200,
        body: await operatorCancel(c.req.param("id"), body, ctxOf(c)),
      }));
    },
  )
  .post(
    "/jobs/:id/refund",
    {
      summary:
        "Refund a completed job's charge to the client, wholly or in part (audited; taken back from the miner and the fee)",
      auth: "admin",
      body: RefundInput,
      responses: {
        "201": "refunded",
        "409": "not completed, or refunded in full",
        "422": "amount too large",
      },
    },
    ...guard,
    async (c) => {
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 201,
        body: await refundJob(c.req.param("id"), body, ctxOf(c)),
      }));
    },
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

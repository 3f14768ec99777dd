import { DayReportQuery, platformFeeReport } from "../../../core/ledger/reports.ts";
import { adminOnly } from "../auth.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/** The platform's own money (mounted beside the other admin sub-apps under /v1/admin). */
export const platform = documentedRoutes("/v1/admin/platform", "admin").get(
  "/fees",
  {
    summary:
      "The platform fee balance and fees by UTC day over its shard accounts (default: the last 30 days)",
    auth: "admin",
    query: DayReportQuery,
    responses: { "200": "{fee_bps, accounts, available, from, to, currency, days, totals}" },
  },
  adminOnly,
  rateLimit("admin"),
  async (c) => c.json(await platformFeeReport(c.req.query())),
).app;

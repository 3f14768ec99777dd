import {
  AdminPayoutsQuery,
  DecisionInput,
  decidePayout,
  listOwnPayouts,
  listPayouts,
  PayoutInput,
  PayoutsQuery,
  requestPayout,
} from "../../../core/payouts/payouts.ts";
import { adminOnly, ctxOf, requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { once } from "../idempotent.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const ownPayouts = requireAuth({ kinds: ["miner"], scope: "payouts:write" });

export const payouts = documentedRoutes("/v1/payouts", "payouts")
  .post(
    "/",
    {
      summary:
        "Ask to withdraw available earnings (Idempotency-Key): held until an operator approves or rejects",
      auth: "miner",
      body: PayoutInput,
      responses: { "201": "the payout, requested", "402": "the available balance cannot pay it" },
    },
    ownPayouts,
    rateLimit("write"),
    async (c) => {
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 201,
        body: await requestPayout(c.var.principal, body, ctxOf(c)),
      }));
    },
  )
  .get(
    "/",
    { summary: "Your payouts, newest first", auth: "miner", query: PayoutsQuery },
    ownPayouts,
    rateLimit("read"),
    async (c) => c.json(await listOwnPayouts(c.var.principal, c.req.query())),
  ).app;

const limited = rateLimit("admin");

export const adminPayouts = documentedRoutes("/v1/admin/payouts", "admin")
  .get(
    "/",
    {
      summary: "Payouts by status (default requested), oldest first",
      auth: "admin",
      query: AdminPayoutsQuery,
    },
    adminOnly,
    limited,
    async (c) => c.json(await listPayouts(c.req.query())),
  )
  .post(
    "/:id/approve",
    {
      summary: "Approve a requested payout: held earnings move to the payout clearing account",
      auth: "admin",
      body: DecisionInput,
      responses: { "200": "the payout, approved", "409": "already decided" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await decidePayout(c.req.param("id"), "approve", await readJson(c), ctxOf(c))),
  )
  .post(
    "/:id/reject",
    {
      summary: "Reject a requested payout: the held earnings are available again",
      auth: "admin",
      body: DecisionInput,
      responses: { "200": "the payout, rejected", "409": "already decided" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await decidePayout(c.req.param("id"), "reject", await readJson(c), ctxOf(c))),
  ).app;

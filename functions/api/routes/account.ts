import { Hono } from "hono";
import { accountLedger, accountView, getAccount, LedgerQuery } from "../../../core/accounts/accounts.ts";
import { requireScope } from "../auth.ts";
import type { AppEnv } from "../env.ts";
import { documented } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

documented({
  method: "get",
  path: "/v1/account",
  summary: "The caller's account and balance; needs account:read",
  tag: "account",
  auth: "any",
});
documented({
  method: "get",
  path: "/v1/account/ledger",
  summary: "The caller's ledger entries, newest first; needs account:read",
  tag: "account",
  auth: "any",
  query: LedgerQuery,
  responses: { "200": "{items, next_cursor}" },
});

export const account = new Hono<AppEnv>()
  .use(requireScope("account:read"))
  .use(rateLimit("read"))
  .get("/", async (c) => c.json(accountView(await getAccount(c.var.principal.accountId))))
  .get("/ledger", async (c) => c.json(await accountLedger(c.var.principal.accountId, c.req.query())));

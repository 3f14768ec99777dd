import { accountLedger, accountView, getAccount, LedgerQuery } from "../../../core/accounts/accounts.ts";
import { requireScope } from "../auth.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

export const account = documentedRoutes("/v1/account", "account")
  .use(requireScope("account:read"))
  .use(rateLimit("read"))
  .get("/", { summary: "The caller's account and balance; needs account:read", auth: "any" }, async (c) =>
    c.json(accountView(await getAccount(c.var.principal.accountId))),
  )
  .get(
    "/ledger",
    {
      summary: "The caller's ledger entries, newest first; needs account:read",
      auth: "any",
      query: LedgerQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    async (c) => c.json(await accountLedger(c.var.principal.accountId, c.req.query())),
  ).app;

import {
  accountLedger,
  accountView,
  getAccount,
  LedgerQuery,
  UpdateAccountInput,
  updateAccount,
} from "../../../core/accounts/accounts.ts";
import { DayReportQuery, earningsReport, LedgerCsvQuery, ledgerCsv } from "../../../core/ledger/reports.ts";
import { ctxOf, requireScope } from "../auth.ts";
import { readJson } from "../body.ts";
import { csvAttachment } from "../csv.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const canRead = [requireScope("account:read"), rateLimit("read")] as const;
const canWrite = [requireScope("account:write"), rateLimit("write")] as const;

export const account = documentedRoutes("/v1/account", "account")
  .get(
    "/",
    { summary: "The caller's account and balance; needs account:read", auth: "any" },
    ...canRead,
    async (c) => c.json(accountView(await getAccount(c.var.principal.accountId))),
  )
  .patch(
    "/",
    {
      summary: "Change the caller's account settings (low_balance_threshold); needs account:write",
      auth: "any",
      body: UpdateAccountInput,
    },
    ...canWrite,
    async (c) =>
      c.json(accountView(await updateAccount(c.var.principal.accountId, await readJson(c), ctxOf(c)))),
  )
  .get(
    "/ledger",
    {
      summary: "The caller's ledger entries, newest first; needs account:read",
      auth: "any",
      query: LedgerQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    ...canRead,
    async (c) => c.json(await accountLedger(c.var.principal.accountId, c.req.query())),
  )
  .get(
    "/ledger.csv",
    {
      summary: "The caller's whole ledger in [from, to) as CSV, oldest first; needs account:read",
      auth: "any",
      query: LedgerCsvQuery,
      responses: { "200": "text/csv: id,created_at,kind,delta_available,delta_held,job_id,reason" },
    },
    ...canRead,
    async (c) => csvAttachment(c, "ledger.csv", await ledgerCsv(c.var.principal.accountId, c.req.query())),
  )
  .get(
    "/earnings",
    {
      summary:
        "The caller's earnings and refunds taken back by UTC day (default: the last 30); needs account:read",
      auth: "any",
      query: DayReportQuery,
      responses: { "200": "{account_id, from, to, currency, days, totals}" },
    },
    ...canRead,
    async (c) => c.json(await earningsReport(c.var.principal.accountId, c.req.query())),
  ).app;

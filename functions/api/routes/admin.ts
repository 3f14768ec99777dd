import {
  accountView,
  adjustAccount,
  CreateAccountInput,
  CreateKeyInput,
  createAccount,
  createApiKey,
  getAccount,
  listAccountKeys,
  listAccounts,
} from "../../../core/accounts/accounts.ts";
import { ListKeysQuery, RotateKeyInput, revokeKey, rotateKey } from "../../../core/accounts/keys.ts";
import { PageQuery } from "../../../core/accounts/page.ts";
import { AuditCsvQuery, AuditQuery, auditCsv, listAudit } from "../../../core/audit/audit.ts";
import { checkLedger } from "../../../core/ledger/check.ts";
import { AdjustInput } from "../../../core/ledger/ledger.ts";
import { adminOnly, ctxOf } from "../auth.ts";
import { readJson } from "../body.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/** Every admin route: an admin key with `admin:*`, then the `admin` rate limit (per route, so that other admin
 * sub-apps mounted under /v1/admin are not guarded twice). */
const limited = rateLimit("admin");

export const admin = documentedRoutes("/v1/admin", "admin")
  .post(
    "/accounts",
    {
      summary: "Create an account",
      auth: "admin",
      body: CreateAccountInput,
      responses: { "201": "created" },
    },
    adminOnly,
    limited,
    async (c) => c.json(accountView(await createAccount(await readJson(c), ctxOf(c))), 201),
  )
  .get(
    "/accounts",
    {
      summary: "Accounts, newest first, a page at a time",
      auth: "admin",
      query: PageQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await listAccounts(c.req.query())),
  )
  .get(
    "/accounts/:id",
    { summary: "An account and its balance", auth: "admin" },
    adminOnly,
    limited,
    async (c) => c.json(accountView(await getAccount(c.req.param("id")))),
  )
  .post(
    "/accounts/:id/keys",
    {
      summary: "Mint a root API key (shown once)",
      auth: "admin",
      body: CreateKeyInput,
      responses: { "201": "created: {key, key_id, ...}" },
    },
    adminOnly,
    limited,
    async (c) => {
      c.header("Cache-Control", "no-store");
      return c.json(await createApiKey(c.req.param("id"), await readJson(c), ctxOf(c)), 201);
    },
  )
  .get(
    "/accounts/:id/keys",
    {
      summary: "An account's API keys (never the key itself)",
      auth: "admin",
      query: ListKeysQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await listAccountKeys(c.req.param("id"), c.req.query())),
  )
  .post(
    "/accounts/:id/adjust",
    {
      summary: "Credit (amount > 0) or debit an account through the ledger",
      auth: "admin",
      body: AdjustInput,
      responses: { "201": "the account with its new balance", "402": "a debit beyond the available balance" },
    },
    adminOnly,
    limited,
    async (c) =>
      c.json(accountView(await adjustAccount(c.req.param("id"), await readJson(c), ctxOf(c))), 201),
  )
  .post(
    "/keys/:key_id/revoke",
    {
      summary: "Revoke any key (and every key delegated from it)",
      auth: "admin",
      responses: { "200": "the revoked key" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await revokeKey(c.req.param("key_id"), ctxOf(c), "admin")),
  )
  .post(
    "/keys/:key_id/rotate",
    {
      summary: "Rotate any key (new key shown once)",
      auth: "admin",
      body: RotateKeyInput,
      responses: { "201": "the new key and the previous one" },
    },
    adminOnly,
    limited,
    async (c) => {
      c.header("Cache-Control", "no-store");
      return c.json(await rotateKey(c.req.param("key_id"), await readJson(c), ctxOf(c), "admin"), 201);
    },
  )
  .get(
    "/ledger/check",
    {
      summary:
        "The ledger's proof: every account's balances equal the sums of its entries, and all entries sum to zero (reads everything: an operator's check)",
      auth: "admin",
      responses: { "200": "{ok, accounts, entries, sum_of_entries, mismatches, unstable, checked_at}" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await checkLedger()),
  )
  .get(
    "/audit",
    {
      summary: "The audit trail in [from, to), oldest first",
      auth: "admin",
      query: AuditQuery,
      responses: { "200": "{items, next_cursor, from, to}" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await listAudit(c.req.query())),
  )
  .get(
    "/audit.csv",
    {
      summary: "The audit trail as CSV (X-Next-Cursor continues it)",
      auth: "admin",
      query: AuditCsvQuery,
      responses: { "200": "text/csv" },
    },
    adminOnly,
    limited,
    async (c) => {
      const { csv, next_cursor } = await auditCsv(c.req.query());
      if (next_cursor) c.header("X-Next-Cursor", next_cursor);
      c.header("Content-Disposition", 'attachment; filename="audit.csv"');
      return c.body(csv, 200, { "Content-Type": "text/csv; charset=utf-8" });
    },
  ).app;

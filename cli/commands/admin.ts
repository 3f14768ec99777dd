import {
  type Command,
  csv,
  flatAccount,
  num,
  printFields,
  printJson,
  requireStr,
  str,
  UsageError,
} from "../command.ts";

const KINDS = ["client", "miner", "admin"];

const createAccount: Command = {
  name: "admin accounts create",
  summary: "Create an account (admin key)",
  auth: true,
  options: {
    name: { type: "string", value: "N", description: "The account's name" },
    kind: { type: "string", value: "K", description: "client, miner or admin" },
  },
  examples: ["coord admin accounts create --name acme --kind client"],
  async run(ctx) {
    const kind = requireStr(ctx.opts, "kind");
    if (!KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${KINDS.join(", ")}`);
    const res = await ctx.api.post("/v1/admin/accounts", { name: requireStr(ctx.opts, "name"), kind });
    if (ctx.json) return printJson(ctx.io, res.body);
    printFields(ctx.io, flatAccount(res.body));
  },
};

const createKey: Command = {
  name: "admin keys create",
  summary: "Mint an API key for an account (shown once)",
  args: ["<account_id>"],
  auth: true,
  options: {
    scopes: { type: "string", value: "A,B", description: "Scopes (default: the account kind's defaults)" },
    name: { type: "string", value: "N", description: "A label for the key" },
    "expires-in": { type: "string", value: "S", description: "Seconds until the key expires" },
  },
  examples: [
    "coord admin keys create acct_01hx...",
    "coord admin keys create acct_01hx... --scopes jobs:read,account:read --name dashboard",
  ],
  async run(ctx) {
    const [accountId = ""] = ctx.args;
    const scopes = str(ctx.opts, "scopes");
    const res = await ctx.api.post<Record<string, unknown>>(
      `/v1/admin/accounts/${encodeURIComponent(accountId)}/keys`,
      {
        ...(scopes !== undefined ? { scopes: csv(scopes) } : {}),
        ...(str(ctx.opts, "name") !== undefined ? { name: str(ctx.opts, "name") } : {}),
        ...(str(ctx.opts, "expires-in") !== undefined
          ? { expires_in_seconds: num(ctx.opts, "expires-in", "body.expires_in_seconds") }
          : {}),
      },
    );
    if (ctx.json) return printJson(ctx.io, res.body);
    printFields(ctx.io, res.body);
    ctx.io.stderr("note: this is the only time the key is shown; store it now\n");
  },
};

const adjust: Command = {
  name: "admin adjust",
  summary: "Credit (amount > 0) or debit (amount < 0) an account through the ledger",
  details: "A negative amount needs the '=' form: --amount=-500.",
  args: ["<account_id>"],
  auth: true,
  options: {
    amount: { type: "string", value: "N", description: "Micro-credits; negative debits" },
    reason: { type: "string", value: "R", description: "Why (kept in the ledger)" },
  },
  examples: [
    'coord admin adjust acct_01hx... --amount 1000000 --reason "welcome credit"',
    'coord admin adjust acct_01hx... --amount=-500 --reason "refund reversal"',
  ],
  async run(ctx) {
    const [accountId = ""] = ctx.args;
    requireStr(ctx.opts, "amount");
    const res = await ctx.api.post(`/v1/admin/accounts/${encodeURIComponent(accountId)}/adjust`, {
      amount: num(ctx.opts, "amount", "body.amount"),
      reason: requireStr(ctx.opts, "reason"),
    });
    if (ctx.json) return printJson(ctx.io, res.body);
    printFields(ctx.io, flatAccount(res.body));
  },
};

export const adminCommands: Command[] = [createAccount, createKey, adjust];

import { type Command, flatAccount, printFields, printJson, printTable, str } from "../command.ts";

const account: Command = {
  name: "account",
  summary: "Your account and balance (micro-credits: available and held)",
  auth: true,
  examples: ["coord account", "coord account --json"],
  async run(ctx) {
    const res = await ctx.api.get("/v1/account");
    if (ctx.json) return printJson(ctx.io, res.body);
    printFields(ctx.io, flatAccount(res.body));
  },
};

const ledger: Command = {
  name: "account ledger",
  summary: "Your ledger entries, newest first",
  auth: true,
  options: {
    limit: { type: "string", value: "N", description: "Page size, 1-100 (default 50)" },
    cursor: { type: "string", value: "C", description: "Continue from a previous page's next_cursor" },
    all: { type: "boolean", description: "Follow cursors to the end (progress on stderr)" },
  },
  examples: ["coord account ledger", "coord account ledger --all --json"],
  async run(ctx) {
    const all = ctx.opts.all === true;
    const items: Record<string, unknown>[] = [];
    let cursor = str(ctx.opts, "cursor");
    let next: string | null = null;
    for (let page = 1; ; page++) {
      const res = await ctx.api.get<{ items: Record<string, unknown>[]; next_cursor: string | null }>(
        "/v1/account/ledger",
        { query: { limit: str(ctx.opts, "limit"), cursor } },
      );
      items.push(...res.body.items);
      next = res.body.next_cursor;
      if (!all || !next) break;
      ctx.io.stderr(`fetched ${items.length} entries (page ${page}), following the cursor...\n`);
      cursor = next;
    }
    if (ctx.json) return printJson(ctx.io, { items, next_cursor: all ? null : next });
    printTable(ctx.io, items, ["created_at", "kind", "delta_available", "delta_held", "job_id", "reason"]);
    if (next && !all) ctx.io.stderr(`more: coord account ledger --cursor ${next}  (or --all)\n`);
  },
};

export const accountCommands: Command[] = [account, ledger];

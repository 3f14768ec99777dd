import { readFileSync } from "node:fs";
import type { PublishedKey } from "../../core/receipts/verify.ts";
import { verifyReceipt } from "../../sdk/receipts.ts";
import { type Command, printFields, printJson, str, UsageError } from "../command.ts";

const verify: Command = {
  name: "receipts verify",
  summary: "Verify a receipt offline against the coordinator's published keys",
  args: ["<file|receipt_id>"],
  options: {
    keys: {
      type: "string",
      value: "FILE",
      description: "Published keys saved from GET /v1/receipts/keys (fully offline; default: fetch them)",
    },
  },
  details:
    "A file (or - for stdin) holds the receipt document exactly as GET /v1/jobs/{id}/receipt returned it; a receipt id is fetched with your key. The signature check itself runs here, not on the coordinator. Exit 0 when valid, 2 when not.",
  examples: [
    "coord receipts verify receipt.json",
    "coord receipts verify rcpt_01hx... --json",
    "coord receipts verify receipt.json --keys keys.json",
  ],
  async run(ctx) {
    const [source = ""] = ctx.args;
    if (!source) throw new UsageError("name a receipt file or id", "receipts verify");
    let document: unknown;
    if (/^rcpt_[0-9a-z]{26}$/.test(source)) {
      if (!ctx.key)
        throw new UsageError("fetching a receipt by id needs an API key (--key or COORD_API_KEY)");
      document = (await ctx.api.get(`/v1/receipts/${source}`)).body;
    } else {
      const text = source === "-" ? readFileSync(0, "utf8") : readFileSync(source, "utf8");
      try {
        document = JSON.parse(text);
      } catch {
        throw new UsageError(`${source} is not JSON`);
      }
    }
    const keysFile = str(ctx.opts, "keys");
    const keys: PublishedKey[] = keysFile
      ? (JSON.parse(readFileSync(keysFile, "utf8")) as { keys: PublishedKey[] }).keys
      : (await ctx.api.get<{ keys: PublishedKey[] }>("/v1/receipts/keys")).body.keys;
    const verdict = await verifyReceipt(document, keys);
    if (ctx.json) printJson(ctx.io, verdict);
    else
      printFields(ctx.io, {
        valid: verdict.valid ? "yes" : "no",
        reasons: verdict.reasons.join(", ") || "-",
        receipt_id: verdict.receipt_id ?? "-",
        key_id: verdict.key_id ?? "-",
      });
    return verdict.valid ? 0 : 2;
  },
};

export const receiptCommands: Command[] = [verify];

import type { PublishedKey } from "../../core/receipts/verify.ts";
import type { ProofDocument } from "../../core/settlement/verify.ts";
import { verifyReceipt } from "../../sdk/receipts.ts";
import { type TrustAnchors, verifySettled } from "../../sdk/settlement.ts";
import {
  type Command,
  type IO,
  num,
  printFields,
  printJson,
  readInputFile,
  str,
  UsageError,
} from "../command.ts";

/** A JSON file (or `-` for stdin), or a usage error naming it. */
async function readJsonFile(source: string, io: IO): Promise<unknown> {
  const text = await readInputFile(source, io);
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${source === "-" ? "standard input" : source} is not JSON`);
  }
}

/** Saved trust anchors: the answer of GET /v1/receipts/keys, or just its `keys` array. */
function anchorsOf(value: unknown, file: string): Partial<TrustAnchors> {
  if (Array.isArray(value)) return { keys: value as PublishedKey[] };
  if (value && typeof value === "object" && Array.isArray((value as { keys?: unknown }).keys))
    return value as Partial<TrustAnchors>;
  throw new UsageError(`--keys ${file} holds no published keys (save GET /v1/receipts/keys into it)`);
}

const RECEIPT_ID = /^rcpt_[0-9a-z]{26}$/;

const verify: Command = {
  name: "receipts verify",
  summary: "Verify a receipt offline against the coordinator's published keys, and its anchoring on chain",
  args: ["<file|receipt_id>"],
  options: {
    keys: {
      type: "string",
      value: "FILE",
      description:
        "Published keys and anchoring saved from GET /v1/receipts/keys (pinned: nothing is fetched for them; default: fetch them)",
    },
    "rpc-url": {
      type: "string",
      value: "URL",
      description:
        "Also check the receipt's settlement proof against this node of the chain (any provider: only the chain is trusted)",
    },
    proof: {
      type: "string",
      value: "FILE",
      description: "The proof saved from GET /v1/receipts/{id}/proof (default: fetch it with your key)",
    },
    confirmations: {
      type: "string",
      value: "N",
      description:
        "Blocks the anchoring transaction must be under (default: the coordinator's required confirmations)",
    },
  },
  details:
    "A file (or - for stdin) holds the receipt document exactly as GET /v1/jobs/{id}/receipt returned it; a receipt id is fetched with your key. The signature check itself runs here, not on the coordinator. With --rpc-url the proof must also lead to a root that the published anchoring account sent on the published chain, deep enough. Exit 0 when valid, 2 when not.",
  examples: [
    "coord receipts verify receipt.json",
    "coord receipts verify rcpt_01hx... --json",
    "coord receipts verify receipt.json --keys keys.json",
    "coord receipts verify receipt.json --keys keys.json --proof proof.json --rpc-url http://127.0.0.1:8545",
  ],
  async run(ctx) {
    const [source = ""] = ctx.args;
    if (!source) throw new UsageError("name a receipt file or id", "receipts verify");
    const needsKey = (what: string) => {
      if (!ctx.key) throw new UsageError(`${what} needs an API key (--key or COORD_API_KEY)`);
    };
    let document: unknown;
    if (RECEIPT_ID.test(source)) {
      needsKey("fetching a receipt by id");
      document = (await ctx.api.get(`/v1/receipts/${source}`)).body;
    } else document = await readJsonFile(source, ctx.io);

    // With --keys nothing at all is fetched for a receipt file: the check runs offline.
    const keysFile = str(ctx.opts, "keys");
    let published: Partial<TrustAnchors>;
    if (keysFile) published = anchorsOf(await readJsonFile(keysFile, ctx.io), keysFile);
    else {
      try {
        published = (await ctx.api.get("/v1/receipts/keys")).body as Partial<TrustAnchors>;
      } catch (err) {
        if (err instanceof TypeError)
          ctx.io.stderr("note: for a check without the coordinator, pin its keys: --keys FILE\n");
        throw err;
      }
    }
    const keys: PublishedKey[] = published.keys ?? [];
    const rpcUrl = str(ctx.opts, "rpc-url");
    const confirmations = num(ctx.opts, "confirmations");
    if (confirmations !== undefined && (!Number.isInteger(confirmations) || confirmations < 1))
      throw new UsageError("--confirmations must be a whole number of at least 1");
    if (!rpcUrl) {
      if (str(ctx.opts, "proof") || confirmations !== undefined)
        throw new UsageError("--proof and --confirmations check settlement: give --rpc-url too");
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
    }

    const proofFile = str(ctx.opts, "proof");
    const receiptId = (document as { receipt?: { receipt_id?: unknown } })?.receipt?.receipt_id;
    let proof: ProofDocument;
    if (proofFile) proof = (await readJsonFile(proofFile, ctx.io)) as ProofDocument;
    else {
      if (typeof receiptId !== "string" || !RECEIPT_ID.test(receiptId))
        throw new UsageError("the document names no receipt id to fetch its proof for: give --proof");
      needsKey("fetching a receipt's proof");
      proof = (await ctx.api.get<ProofDocument>(`/v1/receipts/${receiptId}/proof`)).body;
    }
    const verdict = await verifySettled(document, proof, {
      keys,
      anchoring: published.anchoring ?? null,
      rpcUrl,
      minConfirmations: confirmations,
    });
    if (ctx.json) printJson(ctx.io, verdict);
    else
      printFields(ctx.io, {
        valid: verdict.valid ? "yes" : "no",
        receipt: verdict.receipt.valid ? "signed by a published key" : verdict.receipt.reasons.join(", "),
        settlement: verdict.settlement.valid
          ? `anchored, ${verdict.settlement.confirmations} confirmations`
          : verdict.settlement.reasons.join(", "),
        receipt_id: verdict.receipt.receipt_id ?? "-",
        key_id: verdict.receipt.key_id ?? "-",
        transaction: proof.transaction_hash ?? "-",
        block: verdict.settlement.block_number ?? "-",
      });
    return verdict.valid ? 0 : 2;
  },
};

export const receiptCommands: Command[] = [verify];

import { jobReceipt, jobReceipts, receiptById, verifyDocument } from "../../../core/receipts/receipts.ts";
import { trustAnchors } from "../../../core/settlement/published.ts";
import { requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/** Receipts are read by the job's two parties (client and miner accounts) and admins. */
const reader = [
  requireAuth({ kinds: ["client", "miner", "admin"], scope: "receipts:read" }),
  rateLimit("read"),
] as const;

export const receipts = documentedRoutes("/v1/receipts", "receipts")
  .get(
    "/keys",
    {
      summary:
        "The coordinator's receipt signing keys, current and retired, with their validity, and the chain and account receipts are anchored from",
      auth: "none",
      responses: { "200": "{keys: [{key_id, public_key, status, valid_from, valid_until}], anchoring}" },
    },
    async (c) => c.json(await trustAnchors()),
  )
  .post(
    "/verify",
    {
      summary: "Verify a receipt document exactly as returned: {valid, reasons}",
      auth: "any",
      responses: { "200": "{valid, reasons, receipt_id, key_id}" },
    },
    ...reader,
    async (c) => c.json(await verifyDocument(await readJson(c))),
  )
  .get(
    "/:id",
    { summary: "A receipt (the job's client and miner only)", auth: "any" },
    ...reader,
    async (c) => c.json(await receiptById(c.var.principal, c.req.param("id"))),
  ).app;

/** A job's receipts, beside the job routes. */
export const jobReceiptRoutes = documentedRoutes("/v1/jobs", "receipts")
  .get(
    "/:id/receipt",
    { summary: "The job's receipt, once completed (the job's client and miner only)", auth: "any" },
    ...reader,
    async (c) => c.json(await jobReceipt(c.var.principal, c.req.param("id"))),
  )
  .get(
    "/:id/receipts",
    { summary: "The job's receipts, one per completed attempt", auth: "any" },
    ...reader,
    async (c) => c.json(await jobReceipts(c.var.principal, c.req.param("id"))),
  ).app;

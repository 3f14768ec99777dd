import { receiptProof } from "../../../core/settlement/proofs.ts";
import { handleChainWebhook } from "../../../core/settlement/webhook.ts";
import { requireAuth } from "../auth.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/** A receipt's proof is read by the receipt's parties (its job's client and miner accounts) and admins. */
export const receiptProofs = documentedRoutes("/v1/receipts", "settlement").get(
  "/:id/proof",
  {
    summary:
      "A receipt's settlement proof: leaf, Merkle path, root, chain, transaction, block, confirmations (status pending until anchored)",
    auth: "any",
    responses: {
      "200":
        "{receipt_id, leaf, proof, root, batch_id, status, chain_id, transaction_hash, block_number, block_hash, confirmations, ...}",
      "404": "no such receipt for this account",
    },
  },
  requireAuth({ kinds: ["client", "miner", "admin"], scope: "receipts:read" }),
  rateLimit("read"),
  async (c) => c.json(await receiptProof(c.var.principal, c.req.param("id"))),
).app;

// The chain webhook carries no key: the signature over the raw body is the authentication, and the payload only a hint.
export const chainWebhook = documentedRoutes("/v1/webhooks/chain", "settlement").post(
  "/",
  {
    summary:
      "Chain webhook (Alchemy Address Activity, X-Alchemy-Signature over the raw body): re-checks the named transactions' batches on chain",
    auth: "none",
    responses: { "200": "{received, checked, skipped}", "401": "bad signature: nothing read or changed" },
  },
  async (c) =>
    c.json(await handleChainWebhook(c.var.rawBody, c.req.header("x-alchemy-signature"), c.var.body)),
).app;

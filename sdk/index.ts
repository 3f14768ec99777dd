/**
 * The Coordinator SDK: the typed client (retries, idempotency keys, waiting, artifacts), the receipt and settlement
 * verifiers. Browser-safe as a whole (tests/sdk.test.ts bundles it for the browser); the webhook verifier, which
 * uses node:crypto's HMAC, is its own entry point: `sdk/webhooks.ts`.
 */
export * from "./client.ts";
export * from "./receipts.ts";
export {
  fetchReceiptProof,
  type SettledOptions,
  type SettledVerdict,
  verifySettled,
} from "./settlement.ts";

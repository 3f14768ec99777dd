/**
 * Coordinator receipts, client side: check a receipt offline, with nothing but the coordinator's published keys.
 *
 * ```ts
 * import { fetchReceiptKeys, verifyReceipt } from "./receipts.ts";
 * const keys = await fetchReceiptKeys("https://coordinator.example");
 * const { valid, reasons } = await verifyReceipt(document, keys);
 * ```
 *
 * WebCrypto (Ed25519) and `canonicalize` only: Node 20+ and browsers alike. The coordinator's own
 * `POST /v1/receipts/verify` runs this very function. The statement builders let a miner written in TypeScript
 * produce the signatures the coordinator checks (docs/receipts.md).
 */
import type { PublishedKey } from "../core/receipts/verify.ts";
import type { AnchoringView } from "../core/settlement/published.ts";

export { base64url, canonicalBytes, canonicalSha256 } from "../core/receipts/canonical.ts";
export { keyProofStatement, RECEIPT_TYPE, resultStatement } from "../core/receipts/statements.ts";
export { type PublishedKey, type Verdict, verifyReceipt } from "../core/receipts/verify.ts";

/** What a verifier pins, from `GET /v1/receipts/keys` (no key needed): the receipt keys and settlement's anchoring. */
export interface TrustAnchors {
  keys: PublishedKey[];
  anchoring: AnchoringView | null;
}

export async function fetchTrustAnchors(
  baseUrl: string,
  fetchImpl: typeof fetch = fetch,
): Promise<TrustAnchors> {
  const res = await fetchImpl(new URL("/v1/receipts/keys", baseUrl));
  if (!res.ok) throw new Error(`GET /v1/receipts/keys: ${res.status}`);
  const body = (await res.json()) as Partial<TrustAnchors>;
  return { keys: body.keys ?? [], anchoring: body.anchoring ?? null };
}

/** The coordinator's published receipt keys alone. */
export async function fetchReceiptKeys(
  baseUrl: string,
  fetchImpl: typeof fetch = fetch,
): Promise<PublishedKey[]> {
  return (await fetchTrustAnchors(baseUrl, fetchImpl)).keys;
}

/**
 * Settlement, client side: check that a receipt was anchored on chain, trusting only the chain and the coordinator's
 * published keys and anchoring account (pinned once, like a certificate).
 *
 * ```ts
 * import { fetchTrustAnchors, fetchReceiptProof, verifySettled } from "./settlement.ts";
 * const anchors = await fetchTrustAnchors("https://coordinator.example");
 * const proof = await fetchReceiptProof("https://coordinator.example", receipt.receipt.receipt_id, apiKey);
 * const verdict = await verifySettled(receipt, proof, { ...anchors, rpcUrl: "https://rpc.example" });
 * ```
 *
 * viem, WebCrypto and `canonicalize` only: Node 20+ and browsers alike (docs/settlement.md, "Verifying").
 */
import type { Verdict } from "../core/receipts/verify.ts";
import { type ChainVerdict, type ProofDocument, verifyProofOnChain } from "../core/settlement/verify.ts";
import { type TrustAnchors, verifyReceipt } from "./receipts.ts";

export type { AnchoringView } from "../core/settlement/published.ts";
export {
  type ChainCheckOptions,
  type ChainVerdict,
  type ProofDocument,
  verifyProof,
  verifyProofOnChain,
} from "../core/settlement/verify.ts";
export { fetchTrustAnchors, type TrustAnchors } from "./receipts.ts";

/** A receipt's settlement proof (`GET /v1/receipts/{id}/proof`, with the key of the job's client or miner). */
export async function fetchReceiptProof(
  baseUrl: string,
  receiptId: string,
  apiKey: string,
  fetchImpl: typeof fetch = fetch,
): Promise<ProofDocument & { status: string; required_confirmations: number }> {
  const res = await fetchImpl(new URL(`/v1/receipts/${encodeURIComponent(receiptId)}/proof`, baseUrl), {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  if (!res.ok) throw new Error(`GET /v1/receipts/${receiptId}/proof: ${res.status}`);
  return (await res.json()) as ProofDocument & { status: string; required_confirmations: number };
}

export interface SettledOptions extends TrustAnchors {
  /** A node of the chain (any provider: only what the chain says is trusted). */
  rpcUrl: string;
  /** Blocks the anchoring transaction must be under (default: the anchoring's required confirmations, else 1). */
  minConfirmations?: number;
}

export interface SettledVerdict {
  /** The receipt's signature checks and its proof checks against the chain, from the pinned anchoring account. */
  valid: boolean;
  receipt: Verdict;
  settlement: ChainVerdict;
}

/**
 * Both checks a receipt's holder can make without trusting the coordinator: the receipt is signed by a published
 * key, and its leaf is in a root that the pinned anchoring account sent in a transaction of the pinned chain, deep
 * enough. A proof naming another chain or sender fails (`wrong_chain`, `wrong_sender`); with no anchoring pinned the
 * settlement check fails `anchoring_unknown` rather than trusting the proof's own word.
 */
export async function verifySettled(
  document: unknown,
  proof: ProofDocument,
  opts: SettledOptions,
): Promise<SettledVerdict> {
  const receipt = await verifyReceipt(document, opts.keys);
  const anchoring = opts.anchoring;
  let settlement: ChainVerdict;
  if (!anchoring) settlement = { valid: false, reasons: ["anchoring_unknown"] };
  else if (anchoring.chain_id !== null && proof.chain_id !== null && proof.chain_id !== anchoring.chain_id)
    settlement = { valid: false, reasons: ["wrong_chain"] };
  else
    settlement = await verifyProofOnChain(proof, {
      rpcUrl: opts.rpcUrl,
      anchorFrom: anchoring.account,
      minConfirmations: opts.minConfirmations ?? anchoring.required_confirmations,
      receipt: document,
    });
  return { valid: receipt.valid && settlement.valid, receipt, settlement };
}

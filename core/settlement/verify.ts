import { createPublicClient, type Hex, http } from "viem";
import { canonicalSha256 } from "../receipts/canonical.ts";
import { isBytes32, parseAnchorCalldata, toBytes32, verifyProof } from "./merkle.ts";

/**
 * Checking a settlement proof without trusting the coordinator: the Merkle path offline (`verifyProof`), then the
 * anchoring transaction against any node of the chain (`verifyProofOnChain`). Browser-safe (viem, WebCrypto,
 * `canonicalize`; no node: modules), so the SDK and `coord` share it.
 */
export { verifyProof } from "./merkle.ts";

/** A proof as `GET /v1/receipts/{id}/proof` returns it (the fields the check reads). */
export interface ProofDocument {
  receipt_id?: string;
  leaf: string;
  proof: string[] | null;
  root: string | null;
  chain_id: number | null;
  transaction_hash: string | null;
  block_number?: number | null;
  anchor_from?: string | null;
}

export interface ChainVerdict {
  valid: boolean;
  /** Why not, as stable codes (empty when valid). */
  reasons: string[];
  confirmations?: number;
  block_number?: number;
  block_hash?: string;
}

export interface ChainCheckOptions {
  /** A node of the chain the proof names (any provider: the check trusts only what the chain says). */
  rpcUrl: string;
  /** The coordinator's anchoring account: the transaction must come from it (recommended; else any sender). */
  anchorFrom?: string;
  /** Blocks the transaction must be under, its own included (default 1: mined in the canonical chain). */
  minConfirmations?: number;
  /** The receipt document itself: its canonical SHA-256 must be the proof's leaf. */
  receipt?: unknown;
}

const lower = (s: string) => s.toLowerCase();

/**
 * Checks a proof end to end: the leaf is the receipt's hash (when the receipt is given), the path leads to the root,
 * and the named transaction is in the canonical chain of the named chain, succeeded, comes from the anchoring
 * account (when given), carries the root in its calldata, and is deep enough.
 */
export async function verifyProofOnChain(doc: ProofDocument, opts: ChainCheckOptions): Promise<ChainVerdict> {
  const reasons: string[] = [];
  if (opts.receipt !== undefined && lower(toBytes32(await canonicalSha256(opts.receipt))) !== lower(doc.leaf))
    reasons.push("leaf_mismatch");
  if (!doc.root || !doc.proof || !doc.transaction_hash || doc.chain_id === null)
    return { valid: false, reasons: [...reasons, "not_anchored"] };
  if (!verifyProof(doc.leaf, doc.proof, doc.root)) reasons.push("bad_proof");
  const client = createPublicClient({ transport: http(opts.rpcUrl, { retryCount: 1 }), cacheTime: 0 });
  try {
    if ((await client.getChainId()) !== doc.chain_id)
      return { valid: false, reasons: [...reasons, "wrong_chain"] };
    const hash = doc.transaction_hash as Hex;
    const receipt = await client.getTransactionReceipt({ hash }).catch(() => undefined);
    if (!receipt) return { valid: false, reasons: [...reasons, "transaction_not_found"] };
    const [tx, block, head] = await Promise.all([
      client.getTransaction({ hash }),
      client.getBlock({ blockNumber: receipt.blockNumber }),
      client.getBlockNumber({ cacheTime: 0 }),
    ]);
    if (block.hash !== receipt.blockHash) reasons.push("not_canonical");
    if (receipt.status !== "success") reasons.push("transaction_failed");
    if (opts.anchorFrom && lower(tx.from) !== lower(opts.anchorFrom)) reasons.push("wrong_sender");
    const anchored = parseAnchorCalldata(tx.input);
    if (!anchored || !isBytes32(doc.root) || anchored.root !== toBytes32(doc.root))
      reasons.push("calldata_mismatch");
    const confirmations = Number(head - receipt.blockNumber) + 1;
    if (confirmations < (opts.minConfirmations ?? 1)) reasons.push("too_few_confirmations");
    return {
      valid: reasons.length === 0,
      reasons,
      confirmations,
      block_number: Number(receipt.blockNumber),
      block_hash: receipt.blockHash,
    };
  } catch {
    return { valid: false, reasons: [...reasons, "rpc_error"] };
  }
}

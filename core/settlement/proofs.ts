import type { Principal } from "../context.ts";
import { jobIdOfReceipt, jsonSha256 } from "../receipts/receipt.ts";
import { receiptById } from "../receipts/receipts.ts";
import { TtlCache } from "../ttl-cache.ts";
import { type Connection, connect, headBlock } from "./chain.ts";
import { chainConfig, requiredConfirmations } from "./config.ts";
import { anchorCalldata, buildTree, LEAF_ENCODING, TREE_FORMAT, type Tree, toBytes32 } from "./merkle.ts";
import { proofStatus } from "./statuses.ts";
import { batchOfReceipt, getBatch, getTreeLeaves } from "./store.ts";

/**
 * `GET /v1/receipts/{id}/proof`: a receipt's settlement proof, for the receipt's parties only (the receipt's own
 * tenancy: its job's client and miner accounts, and admins; anyone else gets 404). A receipt not yet in an anchored
 * batch answers 200 with `status: "pending"` and what is known so far (its leaf; its batch and root once sealed), so
 * that a client can poll one route until `confirmed`.
 */
export interface ProofView {
  receipt_id: string;
  /** The receipt's receipt_sha256 as the bytes32 leaf (`0x` hex). */
  leaf: string;
  leaf_encoding: string[];
  tree_format: string;
  status: "pending" | "anchored" | "confirmed";
  batch_id: string | null;
  /** Sibling hashes from the leaf up (empty for a batch of one), once the batch is sealed. */
  proof: string[] | null;
  root: string | null;
  chain_id: number | null;
  transaction_hash: string | null;
  block_number: number | null;
  block_hash: string | null;
  /** Blocks on top of (and including) the transaction's, as the coordinator reads the chain now. */
  confirmations: number;
  required_confirmations: number;
  /** The anchoring account (the transaction's sender), its recipient, and the calldata the transaction carries. */
  anchor_from: string | null;
  anchor_to: string | null;
  calldata: string | null;
}

/** A sealed batch's tree never changes: kept per instance. */
const trees = new TtlCache<Tree>(() => 10 * 60_000, 1000);

async function treeOf(batchId: string): Promise<Tree | undefined> {
  const hit = trees.get(batchId);
  if (hit) return hit;
  const leaves = await getTreeLeaves(batchId);
  if (!leaves || leaves.length === 0) return undefined;
  const tree = buildTree(leaves);
  trees.set(batchId, tree);
  return tree;
}

/** The chain's height, read at most once a second per instance (proofs report live confirmations). */
let head: { at: number; value: Promise<number> } | undefined;

async function chainHead(): Promise<number | undefined> {
  const cfg = chainConfig();
  if (!cfg) return undefined;
  if (!head || Date.now() - head.at > 1000) {
    const value = connect(cfg).then((conn: Connection) => headBlock(conn));
    head = { at: Date.now(), value };
    value.catch(() => {
      if (head?.value === value) head = undefined;
    });
  }
  return head.value.catch(() => undefined);
}

export async function receiptProof(principal: Principal, receiptId: string): Promise<ProofView> {
  const doc = await receiptById(principal, receiptId);
  const batchId = await batchOfReceipt(jobIdOfReceipt(receiptId));
  const leaf = toBytes32(jsonSha256(doc));
  const view: ProofView = {
    receipt_id: receiptId,
    leaf,
    leaf_encoding: [...LEAF_ENCODING],
    tree_format: TREE_FORMAT,
    status: "pending",
    batch_id: batchId ?? null,
    proof: null,
    root: null,
    chain_id: null,
    transaction_hash: null,
    block_number: null,
    block_hash: null,
    confirmations: 0,
    required_confirmations: requiredConfirmations(),
    anchor_from: null,
    anchor_to: null,
    calldata: null,
  };
  const batch = batchId ? await getBatch(batchId) : undefined;
  const tree = batch?.root ? await treeOf(batch.id) : undefined;
  if (!batch || !tree) return view;
  view.root = tree.root;
  view.proof = tree.proofOf(leaf);
  view.status = proofStatus(batch.status);
  if (view.status === "pending" || !batch.txHash) return { ...view, status: "pending" };
  view.chain_id = batch.chainId ?? null;
  view.transaction_hash = batch.txHash;
  view.anchor_from = batch.from ?? null;
  view.anchor_to = batch.to ?? null;
  view.calldata = anchorCalldata(tree.root, batch.attempt);
  if (batch.blockNumber !== undefined) {
    view.block_number = batch.blockNumber;
    view.block_hash = batch.blockHash ?? null;
    // Live from the chain's head (read at most once a second); a confirmed batch was seen at least this deep.
    const now = await chainHead();
    const live = now === undefined ? 0 : now - batch.blockNumber + 1;
    view.confirmations = Math.max(0, live, batch.status === "confirmed" ? view.required_confirmations : 0);
  }
  return view;
}

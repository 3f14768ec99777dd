import type { EventType } from "../../events/catalog.ts";

/**
 * A batch's states:
 * - `sealing`: a sealer chose its receipts and is claiming them (a claimed receipt is in no other batch);
 * - `pending`: sealed (its leaves and root are fixed) and waiting for an anchoring transaction;
 * - `anchored`: its root was sent in a transaction (mined or not yet), waiting for confirmations;
 * - `confirmed`: the transaction is `COORD_CHAIN_CONFIRMATIONS` deep on the canonical chain.
 */
export const BATCH_STATUSES = ["sealing", "pending", "anchored", "confirmed"] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/**
 * Every move a batch can make, in one table (as the jobs' TRANSITIONS): each is one conditional write on the batch's
 * version (a transaction with its outbox event when it has one).
 */
export const BATCH_TRANSITIONS = {
  /** Its receipts claimed: the root is computed over exactly those. */
  seal: { from: ["sealing"], to: "pending", event: null },
  /** The root was sent on chain. */
  anchor: { from: ["pending"], to: "anchored", event: "settlement.anchored.v1" },
  /**
   * The transaction waited unmined too long (a fee too low for the chain now, or dropped from the node's pool): a new
   * one replaces it at the same nonce, offering more; whichever of them is mined anchors the batch.
   */
  replace: { from: ["anchored"], to: "anchored", event: "settlement.replaced.v1" },
  /** The transaction is deep enough on the canonical chain. */
  confirm: { from: ["anchored"], to: "confirmed", event: "settlement.confirmed.v1" },
  /**
   * The transaction left the canonical chain (a reorg: its receipt is gone or in another block), failed, or was
   * dropped: the batch waits for a new anchoring transaction. A confirmed batch is watched until it is final.
   */
  revert: { from: ["anchored", "confirmed"], to: "pending", event: "settlement.reverted.v1" },
} as const satisfies Record<
  string,
  { from: readonly BatchStatus[]; to: BatchStatus; event: EventType | null }
>;

export type BatchTransition = keyof typeof BATCH_TRANSITIONS;

export function canMoveBatch(t: BatchTransition, from: BatchStatus): boolean {
  return (BATCH_TRANSITIONS[t].from as readonly BatchStatus[]).includes(from);
}

/** What a proof reports: a receipt not yet in an anchored batch is `pending`. */
export function proofStatus(s: BatchStatus | undefined): "pending" | "anchored" | "confirmed" {
  return s === "anchored" || s === "confirmed" ? s : "pending";
}

import type { EventType } from "../../events/catalog.ts";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { sealDue } from "./batching.ts";
import {
  type Connection,
  connect,
  headBlock,
  minedNonce,
  type Sighting,
  sendAnchor,
  sight,
} from "./chain.ts";
import { chainConfig, finalityBlocks, requiredConfirmations } from "./config.ts";
import { anchorCalldata } from "./merkle.ts";
import { BATCH_TRANSITIONS, type BatchTransition, canMoveBatch } from "./statuses.ts";
import {
  type Batch,
  batchesToWork,
  batchMove,
  batchOfTx,
  getBatch,
  putBatchIfVersion,
  txPointer,
} from "./store.ts";

/**
 * Anchoring and watching: a pending batch's root goes on chain in a transaction from the anchoring account; an
 * anchored batch is confirmed once the chain itself (never a webhook) shows the transaction
 * COORD_CHAIN_CONFIRMATIONS deep on its canonical chain; a batch whose transaction left the canonical chain (a reorg)
 * goes back to pending and is anchored again in a new transaction. Confirmed batches are watched until they are
 * COORD_CHAIN_FINALITY_BLOCKS deep, so a later reorg un-confirms them too.
 */

/** How long a transaction the node no longer knows, and never seen in a block, is waited for before it is resent. */
const DROP_GRACE_MS = 120_000;
/**
 * Work per cron run (the rest waits for the next run): transactions sent, and batches re-checked (oldest first, 8
 * at a time). With the defaults that is 50 x 256 receipts anchored a minute on AWS; raise the batch size for more.
 */
const ANCHORS_PER_RUN = 50;
const WATCHED_PER_RUN = 500;
const CHECKS_AT_ONCE = 8;

type Outcome = "anchored" | "mined" | "confirmed" | "reverted" | "final" | "unchanged";
type RevertReason = "reorged" | "dropped" | "failed";

const subjectOf = (b: Batch) => ({ subjectPk: keys.settlementBatch(b.id).PK, subject: b.id });

/** A transition of the table: the batch's next state (conditional on its version) and its event, in one transaction. */
async function move<T extends EventType>(
  name: BatchTransition,
  from: Batch,
  next: Batch,
  event: { type: T; data: Parameters<typeof outboxPut<T>>[0]["data"] },
  extra: Record<string, ReturnType<typeof txPointer>> = {},
): Promise<boolean> {
  const t = BATCH_TRANSITIONS[name];
  if (!canMoveBatch(name, from.status) || t.to !== next.status || t.event !== event.type)
    throw new Error(
      `batch ${from.id}: ${name} does not go from ${from.status} to ${next.status} with ${event.type}`,
    );
  try {
    await transact({
      batch: batchMove(next, from.version),
      ...extra,
      event: outboxPut({ type: event.type, ...subjectOf(from), seq: next.version, data: event.data }),
    });
    return true;
  } catch (err) {
    // Another checker (the cron, a webhook) moved the batch first: what it did stands.
    if (err instanceof TransactionRefused && err.refusedBy("batch")) return false;
    throw err;
  }
}

/** Sends a pending batch's root on chain and records the transaction. */
export async function anchorBatch(conn: Connection, listed: Batch): Promise<boolean> {
  // The work list is an index (eventually consistent): a batch is re-read before a transaction is spent on it.
  const b = await getBatch(listed.id);
  if (b?.status !== "pending" || !b.root) return false;
  const attempt = b.attempt + 1;
  // Sent first, recorded after: a crash between the two leaves the batch pending, and the next run anchors it again
  // (a second transaction carrying the same root, harmless); recording first could record a transaction never sent.
  const sent = await sendAnchor(conn, anchorCalldata(b.root, attempt));
  const next: Batch = {
    ...b,
    status: "anchored",
    version: b.version + 1,
    attempt,
    chainId: conn.chainId,
    txHash: sent.hash,
    txNonce: sent.nonce,
    from: conn.from,
    to: conn.to,
    anchoredAt: new Date().toISOString(),
    pendingSince: undefined,
    blockNumber: undefined,
    blockHash: undefined,
    confirmedAt: undefined,
    final: undefined,
  };
  return move(
    "anchor",
    b,
    next,
    {
      type: "settlement.anchored.v1",
      data: {
        batch_id: b.id,
        root: b.root,
        leaves: b.leafCount,
        chain_id: conn.chainId,
        transaction_hash: sent.hash,
        attempt,
      },
    },
    { tx: txPointer(sent.hash, b.id, attempt) },
  );
}

async function revert(b: Batch, reason: RevertReason): Promise<Outcome> {
  const next: Batch = {
    ...b,
    status: "pending",
    version: b.version + 1,
    pendingSince: new Date().toISOString(),
    reverts: (b.reverts ?? 0) + 1,
    txHash: undefined,
    txNonce: undefined,
    anchoredAt: undefined,
    blockNumber: undefined,
    blockHash: undefined,
    confirmedAt: undefined,
    final: undefined,
  };
  const moved = await move("revert", b, next, {
    type: "settlement.reverted.v1",
    data: {
      batch_id: b.id,
      root: b.root ?? "",
      leaves: b.leafCount,
      chain_id: b.chainId ?? 0,
      transaction_hash: b.txHash ?? "",
      block_number: b.blockNumber ?? null,
      reason,
    },
  });
  return moved ? "reverted" : "unchanged";
}

/**
 * Re-checks one anchored or confirmed batch against the chain: confirms it, records the block it was first seen
 * in, marks it final, or reverts it when its transaction is no longer where it was (or anywhere).
 */
export async function checkBatch(conn: Connection, b: Batch, head: number): Promise<Outcome> {
  if ((b.status !== "anchored" && b.status !== "confirmed") || !b.txHash) return "unchanged";
  // Anchored on another chain than the one configured now: an operator's change, not the chain's; left alone.
  if (b.chainId !== undefined && b.chainId !== conn.chainId) return "unchanged";
  const hash = b.txHash as `0x${string}`;
  let seen: Sighting = await sight(conn, hash);
  if (seen.kind === "missing") {
    // Seen in a block before, and no longer there: that block was reorged out.
    if (b.blockHash) return revert(b, "reorged");
    // Never seen in a block: dropped if its nonce went to another transaction (looked at again after the nonce
    // read, in case it was mined in between), or if the node has not known it for a long while. Else it waits.
    if (b.txNonce !== undefined && (await minedNonce(conn)) > b.txNonce) {
      seen = await sight(conn, hash);
      if (seen.kind === "missing") return revert(b, "dropped");
    } else {
      const late = Date.now() - Date.parse(b.anchoredAt ?? "") > DROP_GRACE_MS;
      return !seen.known && late ? revert(b, "dropped") : "unchanged";
    }
  }
  if (!seen.success) return revert(b, "failed");
  // In the canonical chain, but not in the block it was seen in: the block it was in was reorged out.
  if (b.blockHash && b.blockHash !== seen.blockHash) return revert(b, "reorged");
  const confirmations = head - seen.blockNumber + 1;
  if (b.status === "anchored") {
    if (confirmations >= requiredConfirmations()) {
      const next: Batch = {
        ...b,
        status: "confirmed",
        version: b.version + 1,
        blockNumber: seen.blockNumber,
        blockHash: seen.blockHash,
        confirmedAt: new Date().toISOString(),
      };
      const moved = await move("confirm", b, next, {
        type: "settlement.confirmed.v1",
        data: {
          batch_id: b.id,
          root: b.root ?? "",
          leaves: b.leafCount,
          chain_id: conn.chainId,
          transaction_hash: b.txHash,
          block_number: seen.blockNumber,
          block_hash: seen.blockHash,
          confirmations,
        },
      });
      return moved ? "confirmed" : "unchanged";
    }
    if (b.blockHash) return "unchanged";
    const mined = { ...b, version: b.version + 1, blockNumber: seen.blockNumber, blockHash: seen.blockHash };
    return (await putBatchIfVersion(mined, b.version)) ? "mined" : "unchanged";
  }
  if (confirmations < finalityBlocks()) return "unchanged";
  return (await putBatchIfVersion({ ...b, version: b.version + 1, final: true }, b.version))
    ? "final"
    : "unchanged";
}

function tally(counts: Record<string, number>, outcome: Outcome) {
  if (outcome !== "unchanged") counts[outcome] = (counts[outcome] ?? 0) + 1;
}

/**
 * The settlement cron: seals what is due, re-checks every watched batch against the chain, and anchors
 * the pending ones (those a revert just returned included). Without a configured chain it only seals.
 */
export async function settle(
  now = new Date(),
): Promise<{ counts: Record<string, number>; errors: string[] }> {
  const counts: Record<string, number> = {};
  const errors: string[] = [];
  if (await sealDue(now)) counts.sealed = 1;
  const cfg = chainConfig();
  if (!cfg) return { counts, errors };
  const conn = await connect(cfg);
  const watched = await batchesToWork("watch", WATCHED_PER_RUN);
  if (watched.length > 0) {
    const head = await headBlock(conn);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < watched.length; i = next++) {
        const id = (watched[i] as Batch).id;
        try {
          const b = await getBatch(id);
          if (b) tally(counts, await checkBatch(conn, b, head));
        } catch (err) {
          errors.push(`check ${id}: ${short(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CHECKS_AT_ONCE }, worker));
  }
  for (const listed of await batchesToWork("anchor", ANCHORS_PER_RUN)) {
    try {
      if (await anchorBatch(conn, listed)) tally(counts, "anchored");
    } catch (err) {
      // The node refused or could not be reached: the batch stays pending for the next run, and so do the rest.
      errors.push(`anchor ${listed.id}: ${short(err)}`);
      break;
    }
  }
  return { counts, errors };
}

/** An error in one line (viem's carry the whole request). */
function short(err: unknown): string {
  const e = err as { shortMessage?: string; details?: string; message?: string };
  return [e.shortMessage ?? e.message ?? String(err), e.details].filter(Boolean).join(": ").slice(0, 300);
}

export interface Rechecked {
  transaction_hash: string;
  batch_id: string | null;
  status: Batch["status"] | null;
}

/**
 * The chain webhook's hint: the batches of these transactions are re-checked against the chain now. A transaction
 * that anchors no batch (or no longer does) is reported with a null batch and changes nothing.
 */
export async function recheckTransactions(hashes: readonly string[]): Promise<Rechecked[]> {
  const cfg = chainConfig();
  const out: Rechecked[] = [];
  let conn: Connection | undefined;
  let head: number | undefined;
  for (const hash of hashes) {
    const batchId = await batchOfTx(hash);
    const b = batchId ? await getBatch(batchId) : undefined;
    if (!b || b.txHash !== hash) {
      out.push({ transaction_hash: hash, batch_id: b?.id ?? null, status: b?.status ?? null });
      continue;
    }
    if (cfg && (b.status === "anchored" || b.status === "confirmed")) {
      conn ??= await connect(cfg);
      head ??= await headBlock(conn);
      await checkBatch(conn, b, head);
    }
    out.push({ transaction_hash: hash, batch_id: b.id, status: (await getBatch(b.id))?.status ?? b.status });
  }
  return out;
}

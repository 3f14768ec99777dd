import type { EventType } from "../../events/catalog.ts";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { setting } from "../settings.ts";
import { sealDue } from "./batching.ts";
import {
  type Connection,
  connect,
  feesOfTransaction,
  feesWaitingAt,
  headBlock,
  minedNonce,
  type Sighting,
  sendAnchor,
  sight,
} from "./chain.ts";
import { chainConfig, finalityBlocks, requiredConfirmations } from "./config.ts";
import { feeCeiling, feesOfStored, higherFees, storedFees } from "./fees.ts";
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
 * goes back to pending and is anchored again in a new transaction. A transaction still unmined after
 * COORD_CHAIN_REPLACE_SECONDS (its fee too low for the chain now, or dropped from the node's pool) is replaced at its
 * nonce by one offering more. Confirmed batches are watched until they are COORD_CHAIN_FINALITY_BLOCKS deep, so a
 * later reorg un-confirms them too.
 */

/**
 * Work per cron run (the rest waits for the next run): transactions sent, and batches re-checked (oldest first, 8
 * at a time). With the defaults that is 50 x 256 receipts anchored a minute on AWS; raise the batch size for more.
 */
const ANCHORS_PER_RUN = 50;
const WATCHED_PER_RUN = 500;
const CHECKS_AT_ONCE = 8;

type Outcome = "anchored" | "replaced" | "mined" | "confirmed" | "reverted" | "final" | "unchanged";
type RevertReason = "reorged" | "dropped" | "failed";

const subjectOf = (b: Batch) => ({ subjectPk: keys.settlementBatch(b.id).PK, subject: b.id });

/** What every settlement event says of its batch and of the transaction it is about. */
const batchTx = (b: Batch, chainId: number, hash: string) => ({
  batch_id: b.id,
  root: b.root ?? "",
  leaves: b.leafCount,
  chain_id: chainId,
  transaction_hash: hash,
});

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
    ...storedFees(sent.fees),
    replaced: undefined,
    from: conn.from,
    to: conn.to,
    anchoredAt: new Date().toISOString(),
    sentAt: new Date().toISOString(),
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
      data: { ...batchTx(b, conn.chainId, sent.hash), attempt },
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
    txMaxFee: undefined,
    txTip: undefined,
    replaced: undefined,
    anchoredAt: undefined,
    sentAt: undefined,
    blockNumber: undefined,
    blockHash: undefined,
    confirmedAt: undefined,
    final: undefined,
  };
  const moved = await move("revert", b, next, {
    type: "settlement.reverted.v1",
    data: {
      ...batchTx(b, b.chainId ?? 0, b.txHash ?? ""),
      block_number: b.blockNumber ?? null,
      reason,
    },
  });
  return moved ? "reverted" : "unchanged";
}

/** Every transaction the batch sent at its nonce: the current one first, then those it replaced, newest first. */
const sentHashes = (b: Batch) => [b.txHash ?? "", ...[...(b.replaced ?? [])].reverse()] as `0x${string}`[];

/**
 * Where the chain has the batch's transaction: the first of its transactions found in the canonical chain (at most
 * one can be: they share a nonce), else what the node says of the current one.
 */
async function sightAny(conn: Connection, b: Batch): Promise<{ hash: `0x${string}`; seen: Sighting }> {
  const [current, ...older] = sentHashes(b) as [`0x${string}`, ...`0x${string}`[]];
  const seen = await sight(conn, current);
  if (seen.kind === "mined") return { hash: current, seen };
  for (const hash of older) {
    const s = await sight(conn, hash);
    if (s.kind === "mined") return { hash, seen: s };
  }
  return { hash: current, seen };
}

/** The batch with `hash` as its transaction: one it replaced was mined after all, and is what anchors it. */
function adopt(b: Batch, hash: string): Batch {
  if (hash === b.txHash) return b;
  const all = [...(b.replaced ?? []), b.txHash ?? ""];
  return {
    ...b,
    txHash: hash,
    replaced: all.filter((h) => h !== hash),
    txMaxFee: undefined,
    txTip: undefined,
  };
}

/**
 * Sends a transaction replacing the batch's stuck one at the same nonce (same root, same calldata, more per gas) and
 * records it, keeping the old one's hash: until one of them is mined, either may be. Sent before recorded, as
 * anchors are: a crash in between leaves the replacement untracked, and if it is what gets mined the batch is
 * reverted as `dropped` and anchored again (the root twice on chain, harmless).
 */
async function replace(
  conn: Connection,
  b: Batch,
  mined: number,
  held: ReadonlySet<number> | undefined,
  reason: "stuck" | "dropped",
): Promise<Outcome> {
  if (b.txNonce === undefined || !b.root) return "unchanged";
  const own = feesOfStored(b) ?? (await feesOfTransaction(conn, b.txHash as `0x${string}`));
  // Above the account's next nonce, the transaction waits on the ones below it. When no batch's transaction holds
  // that next nonce, the gap is what holds everything back (a nonce left free by a rewound block, or held by a
  // transaction of no batch that the node will not mine): the replacement fills it, outbidding whatever waits there.
  // Otherwise it replaces its own nonce, as the ones below it are replaced at theirs.
  const gap = b.txNonce > mined && held !== undefined && !held.has(mined);
  const nonce = gap ? mined : b.txNonce;
  const previous = gap ? higherFees(own, await feesWaitingAt(conn, nonce)) : own;
  const sent = await sendAnchor(conn, anchorCalldata(b.root, b.attempt), { nonce, fees: previous });
  const next: Batch = {
    ...b,
    version: b.version + 1,
    txHash: sent.hash,
    txNonce: sent.nonce,
    ...storedFees(sent.fees),
    replaced: [...(b.replaced ?? []), b.txHash ?? ""],
    sentAt: new Date().toISOString(),
  };
  const moved = await move(
    "replace",
    b,
    next,
    {
      type: "settlement.replaced.v1",
      data: {
        ...batchTx(b, conn.chainId, sent.hash),
        replaces: b.txHash ?? "",
        nonce: sent.nonce,
        max_fee_per_gas: feeCeiling(sent.fees).toString(),
        reason,
      },
    },
    { tx: txPointer(sent.hash, b.id, b.attempt) },
  );
  return moved ? "replaced" : "unchanged";
}

/**
 * Re-checks one anchored or confirmed batch against the chain: confirms it, records the block it was first seen
 * in, marks it final, reverts it when its transaction is no longer where it was (or anywhere), or replaces it when
 * it waited unmined too long. `held`: the nonces other batches' unmined transactions hold (the cron knows them; a
 * webhook's re-check does not, and then never fills a gap).
 */
export async function checkBatch(
  conn: Connection,
  b: Batch,
  head: number,
  held?: ReadonlySet<number>,
): Promise<Outcome> {
  if ((b.status !== "anchored" && b.status !== "confirmed") || !b.txHash) return "unchanged";
  // Anchored on another chain than the one configured now: an operator's change, not the chain's; left alone.
  if (b.chainId !== undefined && b.chainId !== conn.chainId) return "unchanged";
  let { hash, seen } = await sightAny(conn, b);
  if (seen.kind === "missing") {
    // Seen in a block before, and no longer there: that block was reorged out.
    if (b.blockHash) return revert(b, "reorged");
    // Never seen in a block. Its nonce went to another transaction (looked at again after the nonce read, in case
    // one of the batch's own was mined in between): dropped for good, the batch is anchored anew.
    const mined = b.txNonce === undefined ? undefined : await minedNonce(conn);
    if (b.txNonce !== undefined && mined !== undefined && mined > b.txNonce) {
      ({ hash, seen } = await sightAny(conn, b));
      if (seen.kind === "missing") return revert(b, "dropped");
    } else {
      const waited = Date.now() - Date.parse(b.sentAt ?? b.anchoredAt ?? "");
      if (waited <= setting("COORD_CHAIN_REPLACE_SECONDS") * 1000 || mined === undefined) return "unchanged";
      return replace(conn, b, mined, held, seen.known ? "stuck" : "dropped");
    }
  }
  if (!seen.success) return revert(b, "failed");
  // In the canonical chain, but not in the block it was seen in: the block it was in was reorged out.
  if (b.blockHash && b.blockHash !== seen.blockHash) return revert(b, "reorged");
  const confirmations = head - seen.blockNumber + 1;
  if (b.status === "anchored") {
    if (confirmations >= requiredConfirmations()) {
      const next: Batch = {
        ...adopt(b, hash),
        status: "confirmed",
        version: b.version + 1,
        blockNumber: seen.blockNumber,
        blockHash: seen.blockHash,
        confirmedAt: new Date().toISOString(),
      };
      const moved = await move("confirm", b, next, {
        type: "settlement.confirmed.v1",
        data: {
          ...batchTx(b, conn.chainId, hash),
          block_number: seen.blockNumber,
          block_hash: seen.blockHash,
          confirmations,
        },
      });
      return moved ? "confirmed" : "unchanged";
    }
    if (b.blockHash) return "unchanged";
    const mined = {
      ...adopt(b, hash),
      version: b.version + 1,
      blockNumber: seen.blockNumber,
      blockHash: seen.blockHash,
    };
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
    // The nonces the batches' unmined transactions hold (as listed: a hint, which a stale entry only delays).
    const held = new Set(
      watched.flatMap((b) =>
        b.status === "anchored" && !b.blockHash && b.txNonce !== undefined ? [b.txNonce] : [],
      ),
    );
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < watched.length; i = next++) {
        const id = (watched[i] as Batch).id;
        try {
          const b = await getBatch(id);
          if (b) tally(counts, await checkBatch(conn, b, head, held));
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
    if (!b || !sentHashes(b).includes(hash as `0x${string}`)) {
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

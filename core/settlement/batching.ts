import { TransactionRefused, transact } from "../db/transaction.ts";
import { newId } from "../ids.ts";
import { jsonSha256 } from "../receipts/receipt.ts";
import { batchSeconds, batchSize } from "./config.ts";
import { buildTree, toBytes32 } from "./merkle.ts";
import {
  type Batch,
  batchesToWork,
  chosenJobs,
  claimItems,
  emptyBatchItems,
  getBatch,
  type Leaf,
  newBatch,
  sealItems,
  sealingItems,
  storedReceipts,
  unbatchedReceipts,
} from "./store.ts";

/**
 * Batching. A receipt waits for a batch on its job's result item, listed there by the completion's own transaction
 * (store.ts `unbatchedListing`), so settlement adds no request and no transaction to a job. The cron seals: while
 * COORD_SETTLEMENT_BATCH_SIZE receipts wait it seals full batches, and once the oldest waiting receipt is
 * COORD_SETTLEMENT_BATCH_SECONDS old it seals the rest, whichever comes first.
 *
 * A seal is exactly once, whoever races (two cron runs, a sealer finishing another's seal): it records the batch and
 * the receipts it chose, claims them in transactions of up to 100 (each result item takes the batch's id unless
 * another batch has it: a receipt is claimed once), then fixes the root over exactly the leaves it holds,
 * conditional on the batch's version. A sealer that died between is finished by the next run from the recorded
 * choice (claims are idempotent for their own batch).
 */

/** A seal not finished after this long is taken to have lost its sealer (the cron's runs end well before). */
const STUCK_MS = 60_000;
/** Batches sealed per run at most, and the time a run may spend sealing (a backlog drains over runs). */
const BATCHES_PER_RUN = 200;
const SEALING_BUDGET_MS = 20_000;
/** Leaves per claim transaction (DynamoDB's limit). */
const CLAIM_CHUNK = 100;

/**
 * The leaves of these jobs' receipts: each the SHA-256 of its stored document's canonical JSON (the receipt_sha256
 * its job.completed.v1 carried), read back rather than kept twice. A job without a receipt has no leaf.
 */
export async function leavesOf(jobIds: readonly string[]): Promise<(Leaf & { batchId?: string })[]> {
  return (await storedReceipts(jobIds)).map((r) => {
    const doc = JSON.parse(r.receiptJson) as { receipt: { receipt_id: string } };
    return {
      receiptId: doc.receipt.receipt_id,
      jobId: r.jobId,
      leaf: toBytes32(jsonSha256(doc)),
      batchId: r.batchId,
    };
  });
}

/** Whether waiting receipts make a batch: enough of them, or the oldest old enough. Never for none. */
export function isDue(
  waiting: number,
  oldestAt: string | undefined,
  now: Date,
  size = batchSize(),
  seconds = batchSeconds(),
): boolean {
  if (waiting === 0) return false;
  if (waiting >= size) return true;
  return oldestAt !== undefined && now.getTime() - Date.parse(oldestAt) >= seconds * 1000;
}

/** Claims the chosen leaves for the batch; the ones it holds (those another batch took are left out). */
async function claim(batchId: string, chosen: readonly Leaf[]): Promise<Leaf[]> {
  const held: Leaf[] = [];
  for (let i = 0; i < chosen.length; i += CLAIM_CHUNK) {
    let chunk = chosen.slice(i, i + CLAIM_CHUNK);
    while (chunk.length > 0) {
      try {
        await transact(
          claimItems(
            batchId,
            chunk.map((l) => l.jobId),
          ),
        );
        held.push(...chunk);
        break;
      } catch (err) {
        if (!(err instanceof TransactionRefused) || err.refused.size === 0) throw err;
        const refused = err;
        chunk = chunk.filter((_, k) => !refused.refusedBy(`l${k}`));
      }
    }
  }
  return held;
}

/** Claims a sealing batch's chosen leaves and fixes its root over those it holds. True if this call sealed it. */
async function finishSeal(b: Batch, chosen: readonly Leaf[], at: Date): Promise<boolean> {
  const held = await claim(b.id, chosen);
  try {
    if (held.length === 0) {
      await transact(emptyBatchItems(b.id, b.version));
      return false;
    }
    const tree = buildTree(held.map((l) => l.leaf));
    const iso = at.toISOString();
    const sealed: Batch = {
      ...b,
      status: "pending",
      version: b.version + 1,
      leafCount: tree.leaves.length,
      root: tree.root,
      sealedAt: iso,
      pendingSince: iso,
    };
    await transact(sealItems(sealed, b.version, tree.leaves));
    return true;
  } catch (err) {
    // Another sealer finished (or emptied) this batch first: what it did stands.
    if (err instanceof TransactionRefused && err.refusedBy("batch")) return false;
    throw err;
  }
}

/** A new batch of the chosen leaves (those no other batch takes first). True if it sealed with at least one. */
export async function sealNew(chosen: readonly Leaf[], at = new Date()): Promise<boolean> {
  const b = newBatch(newId("batch", at.getTime()), at, chosen.length);
  await transact(sealingItems(b, chosen));
  return finishSeal(b, chosen, at);
}

/** The cron's part: finishes abandoned seals, then seals what is due. How many batches it sealed. */
export async function sealDue(now = new Date()): Promise<number> {
  let sealed = 0;
  for (const listed of await batchesToWork("sealing", 10)) {
    if (now.getTime() - Date.parse(listed.createdAt) < STUCK_MS) continue;
    const b = await getBatch(listed.id);
    if (b?.status !== "sealing") continue;
    if (await finishSeal(b, await leavesOf((await chosenJobs(b.id)) ?? []), now)) sealed++;
  }
  const size = batchSize();
  const started = Date.now();
  for (let round = 0; round < BATCHES_PER_RUN && Date.now() - started < SEALING_BUDGET_MS; round++) {
    const waiting = await unbatchedReceipts(size);
    const oldest = waiting[0] && new Date(waiting[0].issuedAt).toISOString();
    if (!isDue(waiting.length, oldest, now, size)) break;
    // Receipts another batch already claimed (the list is an index and lags a little) are left out here.
    const chosen = (await leavesOf(waiting.map((w) => w.jobId))).filter((l) => l.batchId === undefined);
    // Nothing held: every receipt it saw was already taken: next run.
    if (chosen.length === 0 || !(await sealNew(chosen, now))) break;
    sealed++;
    if (waiting.length < size) break;
  }
  return sealed;
}

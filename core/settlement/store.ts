import { GetCommand, PutCommand, QueryCommand, type QueryCommandOutput } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { batchGetAll } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { countPartition } from "../db/count.ts";
import { keys } from "../db/keys.ts";
import type { NamedItems, TransactItem } from "../db/transaction.ts";
import { BATCH_STATUSES, type BatchStatus } from "./statuses.ts";

/**
 * The settlement store, the one module that speaks DynamoDB about settlement (core/db/ACCESS_PATTERNS.md):
 * - a receipt waits for a batch on its job's result item: the completion's own transaction lists it on GSI4
 *   (`SETTLE#unbatched#<shard>`, keys only, oldest first; `unbatchedListing`), so settlement costs a job no request
 *   of its own; a batch's claim names the batch on the item (`settlementBatchId`) and removes the listing;
 * - batch items (`SETTLEBATCH#<id>`/`BATCH`): status, leaf count, root, the anchoring transaction and its block;
 *   beside each, while it is sealed, the jobs its sealer chose (`SEALING`), and once sealed its tree (`TREE`:
 *   the sorted leaves in one item, what proofs are computed from);
 * - a pointer per anchoring transaction (`SETTLETX#<hash>`) for the chain webhook;
 * - the cron's work lists on GSI1: `SETTLEMENT#sealing`, `SETTLEMENT#anchor` (pending batches) and
 *   `SETTLEMENT#watch` (anchored or confirmed batches not yet final).
 */

/** Shards of the unbatched-leaves list: a busy list spreads its writes over this many index partitions. */
export const LEAF_SHARDS = 4;

export const BatchItem = v.object({
  id: v.string(),
  status: v.picklist(BATCH_STATUSES),
  /** Bumped by every write: each is conditional on the version it was read at. */
  version: v.number(),
  leafCount: v.number(),
  /** When its sealer chose its receipts. */
  createdAt: v.string(),
  sealedAt: v.optional(v.string()),
  root: v.optional(v.string()),
  /** When the batch last became pending (sealed, or reverted): its place in the anchoring queue. */
  pendingSince: v.optional(v.string()),
  /** Anchoring transactions sent so far; the calldata carries it, so a re-anchor is always a new transaction. */
  attempt: v.number(),
  chainId: v.optional(v.number()),
  txHash: v.optional(v.string()),
  txNonce: v.optional(v.number()),
  from: v.optional(v.string()),
  to: v.optional(v.string()),
  anchoredAt: v.optional(v.string()),
  /** When the current transaction was sent (its first send, or its latest replacement at the same nonce). */
  sentAt: v.optional(v.string()),
  /** What the current transaction offers per gas, decimal wei: its fee cap (or gas price) and its tip (EIP-1559). */
  txMaxFee: v.optional(v.string()),
  txTip: v.optional(v.string()),
  /** Earlier transactions at the same nonce that the current one replaced (oldest first): any of them may be mined. */
  replaced: v.optional(v.array(v.string())),
  /** The block the transaction was seen in (a later receipt in another block is a reorg). */
  blockNumber: v.optional(v.number()),
  blockHash: v.optional(v.string()),
  confirmedAt: v.optional(v.string()),
  /** Deeper than the finality depth: no longer re-checked. */
  final: v.optional(v.boolean()),
  reverts: v.optional(v.number()),
});
export type Batch = v.InferOutput<typeof BatchItem>;

const table = () => config.tableName;

/** The work list a batch in this state belongs to, if any (GSI1 keys). */
function workKeys(b: Batch): Record<string, string> {
  if (b.status === "sealing") return keys.settlementWork("sealing", b.createdAt, b.id);
  if (b.status === "pending") return keys.settlementWork("anchor", b.pendingSince ?? b.sealedAt ?? "", b.id);
  if ((b.status === "anchored" || b.status === "confirmed") && !b.final)
    return keys.settlementWork("watch", b.anchoredAt ?? "", b.id);
  return {};
}

function batchItem(b: Batch): Record<string, unknown> {
  return { ...keys.settlementBatch(b.id), entity: "settlementBatch", ...b, ...workKeys(b) };
}

export function newBatch(id: string, at: Date, leafCount: number): Batch {
  return { id, status: "sealing", version: 1, leafCount, createdAt: at.toISOString(), attempt: 0 };
}

export async function getBatch(id: string): Promise<Batch | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: table(), Key: keys.settlementBatch(id), ConsistentRead: true }),
  );
  return out.Item ? v.parse(BatchItem, out.Item) : undefined;
}

export interface Leaf {
  receiptId: string;
  jobId: string;
  /** `0x` + 64 hex. */
  leaf: string;
}

/** A shard of the unbatched list, from the job id (its random part). */
function shardOf(jobId: string): number {
  let h = 0;
  for (const c of jobId.slice(-8)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % LEAF_SHARDS;
}

/**
 * The keys that list a job's receipt as waiting for a batch, for the completion to write on the job's result item
 * (sparse GSI4, keys only: one small index entry, no item and no request of settlement's own).
 */
export function unbatchedListing(jobId: string, issuedAt: Date): Record<string, string> {
  return keys.settlementUnbatched(shardOf(jobId), issuedAt.getTime());
}

export interface Waiting {
  jobId: string;
  /** Epoch ms. */
  issuedAt: number;
}

/**
 * Up to `limit` jobs whose receipt no batch has claimed, oldest first across the shards (GSI4: eventually
 * consistent, so a receipt just issued may show next time, and one just claimed may still show: its claim is refused).
 */
export async function unbatchedReceipts(limit: number): Promise<Waiting[]> {
  const shards = await Promise.all(
    Array.from({ length: LEAF_SHARDS }, async (_, shard) => {
      const out: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page: QueryCommandOutput = await ddb().send(
          new QueryCommand({
            TableName: table(),
            IndexName: "GSI4",
            KeyConditionExpression: "GSI4PK = :pk",
            ExpressionAttributeValues: { ":pk": keys.settlementUnbatched(shard, "").GSI4PK },
            Limit: limit - out.length,
            ExclusiveStartKey: start,
          }),
        );
        out.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start && out.length < limit);
      return out;
    }),
  );
  return shards
    .flat()
    .map((i) => ({ jobId: String(i.PK).slice("JOB#".length), issuedAt: Number(i.GSI4SK) }))
    .sort((a, b) => a.issuedAt - b.issuedAt || a.jobId.localeCompare(b.jobId))
    .slice(0, limit);
}

/** The stored receipt documents (JSON text) of these jobs' results, with the batch that claimed each, if any. */
export async function storedReceipts(
  jobIds: readonly string[],
): Promise<{ jobId: string; receiptJson: string; batchId?: string }[]> {
  const items = await batchGetAll(
    jobIds.map((id) => keys.jobResult(id)),
    { consistent: true, attributes: ["receiptJson", "settlementBatchId"] },
  );
  return items
    .filter((i) => typeof i.receiptJson === "string")
    .map((i) => ({
      jobId: String(i.PK).slice("JOB#".length),
      receiptJson: String(i.receiptJson),
      batchId: typeof i.settlementBatchId === "string" ? i.settlementBatchId : undefined,
    }));
}

/** The batch that claimed a job's receipt, if one has. */
export async function batchOfReceipt(jobId: string): Promise<string | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: table(),
      Key: keys.jobResult(jobId),
      ProjectionExpression: "settlementBatchId",
    }),
  );
  const id = out.Item?.settlementBatchId;
  return typeof id === "string" ? id : undefined;
}

/** A batch about to be sealed and the jobs whose receipts its sealer chose, in one transaction. */
export function sealingItems(b: Batch, chosen: readonly Leaf[]): NamedItems {
  return {
    batch: {
      Put: { TableName: table(), Item: batchItem(b), ConditionExpression: "attribute_not_exists(PK)" },
    },
    chosen: {
      Put: {
        TableName: table(),
        Item: {
          ...keys.settlementSealing(b.id),
          entity: "settlementSealing",
          jobs: chosen.map((l) => l.jobId).join(","),
        },
      },
    },
  };
}

/** The jobs a sealing batch's sealer chose (to finish a seal whose sealer died). */
export async function chosenJobs(batchId: string): Promise<string[] | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: table(), Key: keys.settlementSealing(batchId), ConsistentRead: true }),
  );
  const text = out.Item?.jobs;
  return typeof text === "string" ? text.split(",").filter(Boolean) : undefined;
}

/**
 * A batch's claim on receipts, one transaction of up to 100: each job's result item takes the batch's id (and
 * leaves the unbatched list) unless another batch has it. Named `l<i>`: a refusal names the receipts another batch
 * took.
 */
export function claimItems(batchId: string, jobIds: readonly string[]): NamedItems {
  return Object.fromEntries(
    jobIds.map((jobId, i) => [
      `l${i}`,
      {
        Update: {
          TableName: table(),
          Key: keys.jobResult(jobId),
          UpdateExpression: "SET settlementBatchId = :b REMOVE GSI4PK, GSI4SK",
          ConditionExpression:
            "attribute_exists(receiptJson) AND (attribute_not_exists(settlementBatchId) OR settlementBatchId = :b)",
          ExpressionAttributeValues: { ":b": batchId },
        },
      } satisfies TransactItem,
    ]),
  );
}

/**
 * The seal: the batch leaves `sealing` for `pending` with its root and count (conditional on its version), its tree
 * is stored and the sealer's list deleted.
 */
export function sealItems(sealed: Batch, readVersion: number, tree: readonly string[]): NamedItems {
  return {
    batch: batchMove(sealed, readVersion),
    tree: {
      Put: {
        TableName: table(),
        Item: {
          ...keys.settlementTree(sealed.id),
          entity: "settlementTree",
          root: sealed.root,
          leaves: tree.map((l) => l.slice(2)).join(""),
        },
      },
    },
    chosen: { Delete: { TableName: table(), Key: keys.settlementSealing(sealed.id) } },
  };
}

/** A sealing batch that claimed nothing (another sealer took every leaf): removed. */
export function emptyBatchItems(batchId: string, readVersion: number): NamedItems {
  return {
    batch: {
      Delete: {
        TableName: table(),
        Key: keys.settlementBatch(batchId),
        ConditionExpression: "version = :v",
        ExpressionAttributeValues: { ":v": readVersion },
      },
    },
    chosen: { Delete: { TableName: table(), Key: keys.settlementSealing(batchId) } },
  };
}

/** The batch written in its next state, conditional on the version it was read at. */
export function batchMove(next: Batch, readVersion: number): TransactItem {
  return {
    Put: {
      TableName: table(),
      Item: batchItem(next),
      ConditionExpression: "version = :v",
      ExpressionAttributeValues: { ":v": readVersion },
    },
  };
}

/** The same change alone (no event): one conditional Put. False when the version moved meanwhile. */
export async function putBatchIfVersion(next: Batch, readVersion: number): Promise<boolean> {
  const { Put } = batchMove(next, readVersion);
  try {
    await ddb().send(new PutCommand(Put as NonNullable<typeof Put>));
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

/** An anchoring transaction's pointer to its batch. */
export function txPointer(txHash: string, batchId: string, attempt: number): TransactItem {
  return {
    Put: {
      TableName: table(),
      Item: { ...keys.settlementTx(txHash), entity: "settlementTx", txHash, batchId, attempt },
    },
  };
}

export async function batchOfTx(txHash: string): Promise<string | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: table(), Key: keys.settlementTx(txHash) }));
  return typeof out.Item?.batchId === "string" ? out.Item.batchId : undefined;
}

/** A sealed batch's sorted leaves (`0x` hex), or undefined before it is sealed. */
export async function getTreeLeaves(batchId: string): Promise<`0x${string}`[] | undefined> {
  const out = await ddb().send(new GetCommand({ TableName: table(), Key: keys.settlementTree(batchId) }));
  const text = out.Item?.leaves;
  if (typeof text !== "string") return undefined;
  return (text.match(/.{64}/g) ?? []).map((h) => `0x${h}` as const);
}

/** Batches on one of the cron's work lists, oldest first (GSI1: eventually consistent; re-read before acting). */
export async function batchesToWork(queue: "sealing" | "anchor" | "watch", limit: number): Promise<Batch[]> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: table(),
      IndexName: "GSI1",
      KeyConditionExpression: "GSI1PK = :pk",
      ExpressionAttributeValues: { ":pk": keys.settlementWork(queue, "", "").GSI1PK },
      Limit: limit,
    }),
  );
  return (out.Items ?? []).map((i) => v.parse(BatchItem, i));
}

export type { BatchStatus };

/** How many batches a work list holds (settlement lists stay short). */
export function workListSize(queue: "sealing" | "anchor" | "watch"): Promise<number> {
  return countPartition("GSI1", "GSI1PK", keys.settlementWork(queue, "", "").GSI1PK);
}

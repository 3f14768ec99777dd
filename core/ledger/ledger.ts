import * as v from "valibot";
import { config } from "../config.ts";
import type { Ctx } from "../context.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut, type TransactItem } from "../db/outbox.ts";
import { queryPage } from "../db/page.ts";
import { shardOf } from "../db/shard.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { CoordError } from "../errors.ts";
import { newId } from "../ids.ts";
import { setting } from "../settings.ts";
import { parse, ReasonText } from "../validate.ts";

/**
 * Money is integer micro-credits. A balance changes only in the same transaction as the ledger entry that explains
 * it, and every posting sums to zero across its entries (a hold moves available to held inside one account; a
 * charge moves held from the client to the miner; an adjustment moves money from or to the treasury account).
 */
export type EntryKind =
  | "adjustment"
  | "hold"
  | "release"
  | "charge"
  | "earning"
  | "payment"
  | "refund"
  | "payout"
  /** The platform's share of a job's price, on a platform fee account. */
  | "fee"
  /** An operator's refund of a job's charge: back to the client, from the miner and the platform fee account. */
  | "job_refund";

/** The counter-account for money entering or leaving the system (admin adjustments, card payments). */
export const TREASURY_ID = "acct_treasury0000000000000000000";

/** Where approved payouts go: money owed to miners outside the system until a transfer settles it. */
export const PAYOUT_CLEARING_ID = "acct_payoutclearing000000000000";

/**
 * The platform fee account, kept as a few shard accounts so that completions from every client and miner do not all
 * update one item (concurrent transactions on one item conflict on DynamoDB). A job's fee goes to the shard of its id;
 * the platform's fee balance is the sum over the shards (`GET /v1/admin/platform/fees`).
 */
export const PLATFORM_FEE_SHARDS = 8;
export const PLATFORM_FEE_IDS: readonly string[] = Array.from(
  { length: PLATFORM_FEE_SHARDS },
  (_, k) => `acct_platformfee${String(k).padStart(15, "0")}`,
);

export function platformFeeAccountOf(jobId: string): string {
  return PLATFORM_FEE_IDS[shardOf(jobId, PLATFORM_FEE_SHARDS)] as string;
}

/** The platform's share of a job's price (basis points of `COORD_PLATFORM_FEE_BPS`, rounded down). */
export function platformFee(price: number, bps = setting("COORD_PLATFORM_FEE_BPS")): number {
  return Math.floor((price * bps) / 10_000);
}

export interface Posting {
  accountId: string;
  kind: EntryKind;
  deltaAvailable: number;
  deltaHeld: number;
  jobId?: string;
  reason?: string;
  /** Refuse the posting (insufficient_funds) if available would drop below zero. Off for the treasury. */
  guard?: boolean;
  /** Counters on the account item to move in the same update (e.g. `queued: 1`); one update per item per transaction. */
  alsoAdd?: Record<string, number>;
  /** Refuse the posting if a counter of `alsoAdd` would end above this (e.g. the queued-jobs quota). */
  atMost?: Record<string, number>;
}

/** The TransactItems for a set of postings that together sum to zero. */
export function postingItems(postings: Posting[], at = new Date()): TransactItem[] {
  const sum = postings.reduce((s, p) => s + p.deltaAvailable + p.deltaHeld, 0);
  if (sum !== 0) throw new Error(`ledger postings must sum to zero, got ${sum}`);
  const group = newId("txn", at.getTime());
  const items: TransactItem[] = [];
  for (const p of postings) {
    if (!Number.isSafeInteger(p.deltaAvailable) || !Number.isSafeInteger(p.deltaHeld)) {
      throw new Error("ledger amounts must be integer micro-credits");
    }
    const entryId = newId("led", at.getTime());
    const conditions = ["attribute_exists(PK)"];
    const values: Record<string, unknown> = {
      ":da": p.deltaAvailable,
      ":dh": p.deltaHeld,
      ":one": 1,
      ":at": at.toISOString(),
    };
    const names: Record<string, string> = {};
    const counters = Object.entries(p.alsoAdd ?? {}).map(([name, delta], i) => {
      names[`#c${i}`] = name;
      values[`:c${i}`] = delta;
      values[":zero"] = 0;
      const cap = p.atMost?.[name];
      if (cap !== undefined) {
        conditions.push(`(attribute_not_exists(#c${i}) OR #c${i} <= :cap${i})`);
        values[`:cap${i}`] = cap - delta;
      }
      return `#c${i} = if_not_exists(#c${i}, :zero) + :c${i}`;
    });
    if (p.guard !== false && p.deltaAvailable < 0) {
      conditions.push("available >= :needA");
      values[":needA"] = -p.deltaAvailable;
    }
    if (p.deltaHeld < 0) {
      conditions.push("held >= :needH");
      values[":needH"] = -p.deltaHeld;
    }
    items.push({
      Update: {
        TableName: config.tableName,
        Key: keys.account(p.accountId),
        UpdateExpression: [
          // movedAt: when the balance last moved, which the stream's low-balance event carries (core/accounts/low-balance.ts).
          "SET available = available + :da, held = held + :dh, version = version + :one, movedAt = :at",
          ...counters,
        ].join(", "),
        ConditionExpression: conditions.join(" AND "),
        ExpressionAttributeValues: values,
        ...(counters.length ? { ExpressionAttributeNames: names } : {}),
        // A refusal says why (the balance, or a counter's cap) without a read.
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    });
    items.push({
      Put: {
        TableName: config.tableName,
        Item: {
          ...keys.ledgerEntry(p.accountId, `${at.toISOString()}#${entryId}`),
          entity: "ledger",
          entryId,
          group,
          accountId: p.accountId,
          kind: p.kind,
          deltaAvailable: p.deltaAvailable,
          deltaHeld: p.deltaHeld,
          jobId: p.jobId,
          reason: p.reason,
          createdAt: at.toISOString(),
        },
      },
    });
  }
  return items;
}

export const AdjustInput = v.object({
  amount: v.pipe(
    v.number(),
    v.safeInteger("amount must be an integer number of micro-credits"),
    v.check((n) => n !== 0, "amount must not be zero"),
  ),
  reason: ReasonText,
});

/** Credits (amount > 0) or debits (amount < 0) an account against the treasury, through the ledger. */
export async function adjustBalance(accountId: string, input: unknown, ctx: Ctx): Promise<void> {
  const { amount, reason } = parse(AdjustInput, input, "body");
  const at = new Date();
  try {
    await transact({
      postings: postingItems(
        [
          { accountId, kind: "adjustment", deltaAvailable: amount, deltaHeld: 0, reason },
          {
            accountId: TREASURY_ID,
            kind: "adjustment",
            deltaAvailable: -amount,
            deltaHeld: 0,
            reason,
            guard: false,
          },
        ],
        at,
      ),
      event: outboxPut({
        type: "balance.adjusted.v1",
        subjectPk: keys.account(accountId).PK,
        subject: accountId,
        accountId,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: { account_id: accountId, amount, reason },
        at,
      }),
    });
  } catch (err) {
    // Only the account's own update can refuse (the treasury's is unguarded).
    if (err instanceof TransactionRefused && err.refusedBy("postings")) {
      throw new CoordError(
        "insufficient_funds",
        "the debit exceeds the available balance, or the account does not exist",
      );
    }
    throw err;
  }
}

export interface LedgerPage {
  items: Record<string, unknown>[];
  nextCursor?: string;
}

/** An account's ledger, newest first, with an opaque cursor. */
export async function listLedger(accountId: string, limit: number, cursor?: string): Promise<LedgerPage> {
  const page = await queryPage({
    partition: keys.account(accountId).PK,
    skPrefix: "LEDGER#",
    limit,
    cursor,
    newestFirst: true,
  });
  return {
    items: page.items.map((i) => ({
      id: i.entryId,
      kind: i.kind,
      delta_available: i.deltaAvailable,
      delta_held: i.deltaHeld,
      job_id: i.jobId,
      reason: i.reason,
      created_at: i.createdAt,
    })),
    nextCursor: page.next_cursor ?? undefined,
  };
}

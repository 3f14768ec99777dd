import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";
import type { TransactItem } from "../db/transaction.ts";
import { PAYOUT_STATUSES, type PayoutStatus } from "./statuses.ts";

/** The payout store: payout items, their two listings (by status for operators, by account), named items. */
export const PayoutItem = v.object({
  id: v.string(),
  accountId: v.string(),
  amount: v.number(),
  status: v.picklist(PAYOUT_STATUSES),
  createdAt: v.string(),
  updatedAt: v.string(),
  decidedBy: v.optional(v.string()),
  reason: v.optional(v.string()),
});
export type Payout = v.InferOutput<typeof PayoutItem>;

function item(p: Payout): Record<string, unknown> {
  return {
    ...keys.payout(p.id),
    entity: "payout",
    ...p,
    ...keys.payoutsByStatus(p.status, p.createdAt, p.id),
    ...keys.payoutsByAccount(p.accountId, p.createdAt, p.id),
  };
}

export async function getPayout(id: string): Promise<Payout | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.payout(id), ConsistentRead: true }),
  );
  return out.Item ? v.parse(PayoutItem, out.Item) : undefined;
}

/** A new payout, refused if its id exists. */
export function payoutCreate(p: Payout): TransactItem {
  return {
    Put: { TableName: config.tableName, Item: item(p), ConditionExpression: "attribute_not_exists(PK)" },
  };
}

/** The payout written in its next state, conditional on the state it was read in. */
export function payoutMove(p: Payout, from: PayoutStatus): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: item(p),
      ConditionExpression: "#s = :from",
      ExpressionAttributeNames: { "#s": "status" },
      ExpressionAttributeValues: { ":from": from },
    },
  };
}

/** Payouts in a status, oldest first (the operators' queue). */
export async function payoutsByStatus(status: PayoutStatus, limit: number, cursor?: string) {
  const page = await queryPage({
    index: "GSI1",
    partition: keys.payoutsByStatus(status, "", "").GSI1PK,
    limit,
    cursor,
  });
  return { items: page.items.map((i) => v.parse(PayoutItem, i)), nextCursor: page.next_cursor };
}

/** An account's payouts, newest first (a keys-only index: read back). */
export async function payoutsOfAccount(accountId: string, limit: number, cursor?: string) {
  const page = await queryPage({
    index: "GSI2",
    partition: keys.payoutsByAccount(accountId, "", "").GSI2PK,
    limit,
    cursor,
    newestFirst: true,
  });
  return {
    items: (await hydrate(page.items)).map((i) => v.parse(PayoutItem, i)),
    nextCursor: page.next_cursor,
  };
}

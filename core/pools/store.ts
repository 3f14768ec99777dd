import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";

/**
 * The pool store: reads of pool items, memberships and the pool's miner roster (strongly consistent: access checks
 * read them). Items come back raw; `pools.ts` parses them and builds the pool transactions' named items.
 */

export async function readPool(id: string): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.pool(id), ConsistentRead: true }),
  );
  return out.Item;
}

export async function readMembership(
  poolId: string,
  accountId: string,
): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.poolMember(poolId, accountId),
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

/** One page of an account's memberships (the pools it owns or belongs to), newest pool first. */
export async function membershipsPage(accountId: string, limit: number, start?: Record<string, unknown>) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: "GSI1",
      KeyConditionExpression: "GSI1PK = :pk",
      ExpressionAttributeValues: { ":pk": membershipsPartition(accountId) },
      ScanIndexForward: false,
      Limit: limit,
      ExclusiveStartKey: start,
    }),
  );
  return { items: out.Items ?? [], next: out.LastEvaluatedKey };
}

export const membershipsPartition = (accountId: string) => keys.poolsByAccount(accountId, "").GSI1PK;

/** One page of the pool's miner roster. */
export async function rosterPage(poolId: string, start?: Record<string, unknown>) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :m)",
      ExpressionAttributeValues: { ":pk": keys.pool(poolId).PK, ":m": "MINER#" },
      ConsistentRead: true,
      ExclusiveStartKey: start,
    }),
  );
  return { items: out.Items ?? [], next: out.LastEvaluatedKey };
}

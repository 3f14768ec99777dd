import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";

/**
 * The webhook endpoint store: the endpoint items in their account's partition (`WHEP#<id>`), their reads and the
 * single-item writes of delivery outcomes. Items come back raw; `endpoints.ts` parses them and builds the versioned
 * transactions.
 */

export async function readEndpoint(
  accountId: string,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.webhookEndpoint(accountId, id),
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

/** Every endpoint item of an account (few: at most the per-account limit). */
export async function readAccountEndpoints(accountId: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: "PK = :pk AND begins_with(SK, :sk)",
        ExpressionAttributeValues: { ":pk": keys.account(accountId).PK, ":sk": "WHEP#" },
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Deletes an endpoint; false if there was none. */
export async function deleteEndpointItem(accountId: string, id: string): Promise<boolean> {
  try {
    await ddb().send(
      new DeleteCommand({
        TableName: config.tableName,
        Key: keys.webhookEndpoint(accountId, id),
        ConditionExpression: "attribute_exists(PK)",
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

/** The endpoint is healthy again: failures reset (nothing if it is gone). */
export async function markEndpointHealthy(accountId: string, id: string, at: Date): Promise<void> {
  await ddb()
    .send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookEndpoint(accountId, id),
        UpdateExpression: "SET consecutiveFailures = :zero, lastSuccessAt = :at REMOVE failingSince",
        ConditionExpression: "attribute_exists(PK)",
        ExpressionAttributeValues: { ":zero": 0, ":at": at.toISOString() },
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

/** Counts one more failed message; the endpoint as it is now, or undefined if it is gone. */
export async function addEndpointFailure(
  accountId: string,
  id: string,
  at: Date,
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookEndpoint(accountId, id),
        UpdateExpression:
          "ADD consecutiveFailures :one SET failingSince = if_not_exists(failingSince, :at), lastFailureAt = :at",
        ConditionExpression: "attribute_exists(PK)",
        ExpressionAttributeValues: { ":one": 1, ":at": at.toISOString() },
        ReturnValues: "ALL_NEW",
      }),
    );
    return out.Attributes;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return undefined;
    throw err;
  }
}

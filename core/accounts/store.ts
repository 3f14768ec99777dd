import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";
import type { TransactItem } from "../db/transaction.ts";

/**
 * The account store: the one module that speaks DynamoDB about account items (balances and counters; the ledger's
 * entries are written by `ledger.ts` as named transaction items, and keys have `keys.ts`). Items come back raw: the
 * schema (`AccountItem`) parses them where they are used.
 */

/** An account item by id. */
export async function readAccount(
  id: string,
  consistent = false,
): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.account(id), ConsistentRead: consistent }),
  );
  return out.Item;
}

/** A new account's item, listed by creation (GSI4), as a transaction item that refuses an existing id. */
export function newAccountItem(
  account: { id: string; createdAt: string } & Record<string, unknown>,
): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: {
        ...keys.account(account.id),
        ...keys.accountsByCreation(account.createdAt, account.id),
        entity: "account",
        ...account,
      },
      ConditionExpression: "attribute_not_exists(PK)",
    },
  };
}

/** Writes a well-known account (bootstrap admin, treasury) unless it exists already. */
export async function putAccountIfAbsent(
  account: { id: string; createdAt: string } & Record<string, unknown>,
): Promise<void> {
  const put = newAccountItem(account).Put as NonNullable<TransactItem["Put"]>;
  await ddb()
    .send(
      new PutCommand({
        TableName: put.TableName,
        Item: put.Item,
        ConditionExpression: put.ConditionExpression,
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

/** One page of every account, newest first (a keys-only index: the accounts are read back). */
export async function accountsPage(
  limit: number,
  cursor?: string,
): Promise<{ items: Record<string, unknown>[]; nextCursor: string | null }> {
  const page = await queryPage({
    index: "GSI4",
    partition: keys.accountsByCreation("", "").GSI4PK,
    limit,
    cursor,
    newestFirst: true,
  });
  return { items: await hydrate(page.items), nextCursor: page.next_cursor };
}

/** Moves the account's queued-jobs counter (fair share and the queued quota) inside another transaction. */
export function queuedCounter(accountId: string, delta: number): TransactItem {
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.account(accountId),
      UpdateExpression: "SET queued = if_not_exists(queued, :zero) + :d",
      ExpressionAttributeValues: { ":d": delta, ":zero": 0 },
    },
  };
}

/** Sets (a number) or clears (null: the default applies) the account's low-balance threshold, as a transaction item. */
export function thresholdUpdate(accountId: string, threshold: number | null): TransactItem {
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.account(accountId),
      ...(threshold === null
        ? { UpdateExpression: "REMOVE lowBalanceThreshold" }
        : {
            UpdateExpression: "SET lowBalanceThreshold = :t",
            ExpressionAttributeValues: { ":t": threshold },
          }),
      ConditionExpression: "attribute_exists(PK)",
    },
  };
}

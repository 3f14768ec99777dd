import { BatchGetCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { batchGetAll } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";

/**
 * The key store: the reads of API key items (by hash, by public id, an account's keys) and of the revocation feed,
 * all strongly consistent where a revocation must be seen at once. Items come back raw; `keys.ts` parses them (and
 * builds the named transaction items that mint, revoke and rotate keys).
 */

/** The key item for a key hash. */
export async function readKeyItem(hash: string): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.apiKey(hash), ConsistentRead: true }),
  );
  return out.Item;
}

/** The id -> hash reference of a key's public id. */
export async function readKeyRef(keyId: string): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.apiKeyRef(keyId), ConsistentRead: true }),
  );
  return out.Item;
}

/** Several key items by hash at once (what exists). */
export async function readKeyItems(hashes: string[]): Promise<Record<string, unknown>[]> {
  return batchGetAll(
    hashes.map((h) => keys.apiKey(h)),
    { consistent: true },
  );
}

/** One page of an account's keys, newest first. */
export async function accountKeysPage(accountId: string, limit: number, cursor?: string) {
  return queryPage({
    index: "GSI1",
    partition: keys.apiKeyByAccount(accountId, "").GSI1PK,
    limit,
    cursor,
    newestFirst: true,
  });
}

/** The revocation feed's window items (key-cache.ts), strongly consistent. */
export async function readKeyFeed(windows: string[]): Promise<Record<string, unknown>[]> {
  const out = await ddb().send(
    new BatchGetCommand({
      RequestItems: {
        [config.tableName]: { Keys: windows.map((w) => keys.keyFeed(w)), ConsistentRead: true },
      },
    }),
  );
  return out.Responses?.[config.tableName] ?? [];
}

import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../db/transaction.ts";

/**
 * The receipts store: published signing keys and miners' key challenges. Receipts themselves live in the job's
 * result item (core/jobs/store.ts `resultPut`), written by the completion's own transaction.
 */

export interface PublishedKeyItem {
  keyId: string;
  publicKey: string;
  validFrom: string;
}

/** Publishes a signing key's public half, once: a key already published keeps its first `validFrom`. */
export async function publishKey(keyId: string, publicKey: string, at: Date): Promise<void> {
  await ddb()
    .send(
      new PutCommand({
        TableName: config.tableName,
        Item: {
          ...keys.receiptKey(keyId),
          entity: "receiptKey",
          keyId,
          publicKey,
          validFrom: at.toISOString(),
        },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

/** Every published key, in one query (a handful of items: one per rotation). */
export async function publishedKeys(): Promise<PublishedKeyItem[]> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": keys.receiptKey("").PK },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []).map((i) => ({
    keyId: String(i.keyId),
    publicKey: String(i.publicKey),
    validFrom: String(i.validFrom),
  }));
}

/** Records a challenge for `accountId`, usable once until `expiresAt`. */
export async function putChallenge(challenge: string, accountId: string, expiresAt: Date): Promise<void> {
  await ddb().send(
    new PutCommand({
      TableName: config.tableName,
      Item: {
        ...keys.minerKeyChallenge(challenge),
        entity: "keyChallenge",
        accountId,
        expiresAtIso: expiresAt.toISOString(),
        expiresAt: Math.ceil(expiresAt.getTime() / 1000),
      },
    }),
  );
}

/** Spends a challenge inside the registration's transaction: refused unless it is the account's and not expired. */
export function spendChallenge(challenge: string, accountId: string, now: Date): TransactItem {
  return {
    Delete: {
      TableName: config.tableName,
      Key: keys.minerKeyChallenge(challenge),
      ConditionExpression: "accountId = :a AND expiresAtIso > :now",
      ExpressionAttributeValues: { ":a": accountId, ":now": now.toISOString() },
    },
  };
}

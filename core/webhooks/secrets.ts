import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { generateSecret } from "../../sdk/webhooks.ts";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { ConflictError } from "../errors.ts";
import { parse } from "../validate.ts";
import { webhookConfig } from "./config.ts";

/**
 * Signing secrets (`whsec_...`). HMAC needs the secret itself at signing time, so it is stored as is (on AWS the
 * table is encrypted at rest; a KMS envelope is the next step, see docs/webhooks.md) and shown to the client once:
 * when created or rotated. A rotation keeps the previous secret valid for an overlap window, during which every
 * delivery carries one signature per valid secret.
 */
export const StoredSecret = v.object({
  secret: v.string(),
  createdAt: v.string(),
  /** Set on the previous secrets by a rotation: valid until then. */
  expiresAt: v.optional(v.string()),
});
export type StoredSecret = v.InferOutput<typeof StoredSecret>;

/** The secrets that sign right now, newest first. */
export function activeSecrets(list: StoredSecret[], now = new Date()): string[] {
  return list.filter((s) => !s.expiresAt || s.expiresAt > now.toISOString()).map((s) => s.secret);
}

/** A new secret first, the valid previous ones kept until `overlapSeconds` from now (or their own earlier end). */
export function rotateSecrets(list: StoredSecret[], overlapSeconds: number, now = new Date()) {
  const until = new Date(now.getTime() + overlapSeconds * 1000).toISOString();
  const secret = generateSecret();
  const kept = list
    .filter((s) => !s.expiresAt || s.expiresAt > now.toISOString())
    .map((s) => ({ ...s, expiresAt: s.expiresAt && s.expiresAt < until ? s.expiresAt : until }))
    .filter((s) => s.expiresAt > now.toISOString());
  return { secret, secrets: [{ secret, createdAt: now.toISOString() }, ...kept] };
}

/** What may be said about secrets without showing them. */
export function secretsInfo(list: StoredSecret[], now = new Date()) {
  const current = list[0];
  const previous = list.slice(1).filter((s) => s.expiresAt && s.expiresAt > now.toISOString());
  return {
    created_at: current?.createdAt ?? null,
    previous_secrets_valid_until: previous.map((s) => s.expiresAt as string),
  };
}

export const RotateSecretInput = v.optional(
  v.object({
    overlap_seconds: v.optional(
      v.pipe(
        v.number(),
        v.integer(),
        v.minValue(0),
        v.maxValue(7 * 86_400, "the previous secret stays valid for at most 7 days"),
      ),
    ),
  }),
);

const AccountSecretItem = v.object({
  accountId: v.string(),
  secrets: v.array(StoredSecret),
  revealed: v.boolean(),
  version: v.number(),
  createdAt: v.string(),
  updatedAt: v.string(),
});
type AccountSecretItem = v.InferOutput<typeof AccountSecretItem>;

async function readAccountSecret(accountId: string): Promise<AccountSecretItem | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.webhookSecret(accountId), ConsistentRead: true }),
  );
  return out.Item ? v.parse(AccountSecretItem, out.Item) : undefined;
}

/**
 * The account's default secret (signs every job's `webhook_url` deliveries), created on first need, unrevealed.
 */
export async function ensureAccountSecret(accountId: string): Promise<AccountSecretItem> {
  const found = await readAccountSecret(accountId);
  if (found) return found;
  const now = new Date().toISOString();
  const item: AccountSecretItem = {
    accountId,
    secrets: [{ secret: generateSecret(), createdAt: now }],
    revealed: false,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
  try {
    await ddb().send(
      new PutCommand({
        TableName: config.tableName,
        Item: { ...keys.webhookSecret(accountId), entity: "webhookSecret", ...item },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    );
    return item;
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    return (await readAccountSecret(accountId)) as AccountSecretItem;
  }
}

export function accountSecretView(item: AccountSecretItem) {
  return { ...secretsInfo(item.secrets), revealed: item.revealed };
}

/** Metadata of the default secret (creating it if needed); never the secret. */
export async function getAccountSecretInfo(accountId: string) {
  return accountSecretView(await ensureAccountSecret(accountId));
}

/** Shows the default secret, once: a second call is 409 (rotate to get a new one). */
export async function revealAccountSecret(accountId: string) {
  const item = await ensureAccountSecret(accountId);
  const current = item.secrets[0] as StoredSecret;
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookSecret(accountId),
        UpdateExpression: "SET revealed = :t, updatedAt = :now",
        ConditionExpression: "revealed = :f AND version = :v",
        ExpressionAttributeValues: {
          ":t": true,
          ":f": false,
          ":v": item.version,
          ":now": new Date().toISOString(),
        },
      }),
    );
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    throw new ConflictError(
      "the webhook secret was already shown; rotate it (POST /v1/webhooks/secret/rotate) to get a new one",
    );
  }
  return { secret: current.secret, ...accountSecretView({ ...item, revealed: true }) };
}

/** Replaces the default secret (shown once, in this answer); the previous one keeps signing for the overlap. */
export async function rotateAccountSecret(accountId: string, raw: unknown) {
  const body = parse(RotateSecretInput, raw, "body");
  const item = await ensureAccountSecret(accountId);
  const now = new Date();
  const { secret, secrets } = rotateSecrets(
    item.secrets,
    body?.overlap_seconds ?? webhookConfig.rotationOverlapSeconds,
    now,
  );
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.webhookSecret(accountId),
        UpdateExpression: "SET secrets = :s, revealed = :t, version = :next, updatedAt = :now",
        ConditionExpression: "version = :v",
        ExpressionAttributeValues: {
          ":s": secrets,
          ":t": true,
          ":v": item.version,
          ":next": item.version + 1,
          ":now": now.toISOString(),
        },
      }),
    );
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    throw new ConflictError("the webhook secret changed concurrently; try again");
  }
  return { secret, ...accountSecretView({ ...item, secrets, revealed: true }) };
}

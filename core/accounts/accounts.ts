import { GetCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import type { Ctx, Principal } from "../context.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { NotFoundError, UnauthorizedError } from "../errors.ts";
import { newId } from "../ids.ts";
import { parse } from "../validate.ts";
import { type AccountKind, generateApiKey, hashApiKey, inspectApiKey } from "./api-key.ts";

export const DEFAULT_SCOPES: Record<AccountKind, string[]> = {
  client: ["jobs:read", "jobs:write", "account:read"],
  miner: ["miners:work", "account:read"],
  admin: ["admin:*"],
};

export const CreateAccountInput = v.object({
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(200)),
  kind: v.picklist(["client", "miner", "admin"] as const),
});

export const AccountItem = v.object({
  id: v.string(),
  name: v.string(),
  kind: v.picklist(["client", "miner", "admin"] as const),
  available: v.number(),
  held: v.number(),
  createdAt: v.string(),
  version: v.number(),
});
export type Account = v.InferOutput<typeof AccountItem>;

export function accountView(a: Account) {
  return {
    id: a.id,
    name: a.name,
    kind: a.kind,
    balance: { available: a.available, held: a.held },
    created_at: a.createdAt,
  };
}

export async function createAccount(input: unknown, ctx: Ctx): Promise<Account> {
  const { name, kind } = parse(CreateAccountInput, input, "body");
  const now = new Date();
  const account: Account = {
    id: newId("acct", now.getTime()),
    name,
    kind,
    available: 0,
    held: 0,
    createdAt: now.toISOString(),
    version: 1,
  };
  await ddb().send(
    new TransactWriteCommand({
      TransactItems: [
        {
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
        },
        outboxPut({
          type: "account.created.v1",
          subjectPk: keys.account(account.id).PK,
          subject: account.id,
          seq: 1,
          accountId: account.id,
          correlationId: ctx.correlationId,
          data: { account_id: account.id, name, kind },
          at: now,
        }),
      ],
    }),
  );
  return account;
}

export async function getAccount(id: string): Promise<Account> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.account(id) }));
  if (!out.Item) throw new NotFoundError("account");
  return v.parse(AccountItem, out.Item);
}

export const CreateKeyInput = v.optional(
  v.object({
    name: v.optional(v.pipe(v.string(), v.maxLength(200))),
    scopes: v.optional(
      v.array(v.pipe(v.string(), v.regex(/^[a-z_]+:[a-z_*]+$/, "scope must look like 'jobs:read'"))),
    ),
  }),
  {},
);

export interface IssuedKey {
  key: string;
  keyId: string;
  accountId: string;
  kind: AccountKind;
  scopes: string[];
  createdAt: string;
}

async function storeKey(account: Account, key: string, scopes: string[], name: string | undefined, ctx: Ctx) {
  const now = new Date();
  const keyId = newId("key", now.getTime());
  await ddb().send(
    new TransactWriteCommand({
      TransactItems: [
        {
          ConditionCheck: {
            TableName: config.tableName,
            Key: keys.account(account.id),
            ConditionExpression: "attribute_exists(PK)",
          },
        },
        {
          Put: {
            TableName: config.tableName,
            Item: {
              ...keys.apiKey(hashApiKey(key)),
              ...keys.apiKeyByAccount(account.id, keyId),
              entity: "apiKey",
              keyId,
              accountId: account.id,
              kind: account.kind,
              scopes,
              name,
              createdAt: now.toISOString(),
            },
            ConditionExpression: "attribute_not_exists(PK)",
          },
        },
        outboxPut({
          type: "api_key.created.v1",
          subjectPk: keys.account(account.id).PK,
          subject: account.id,
          accountId: account.id,
          correlationId: ctx.correlationId,
          data: { account_id: account.id, key_id: keyId, scopes },
          at: now,
        }),
      ],
    }),
  );
  return { key, keyId, accountId: account.id, kind: account.kind, scopes, createdAt: now.toISOString() };
}

/** Mints a key for an account. The raw key is returned once and never stored. */
export async function createApiKey(accountId: string, input: unknown, ctx: Ctx): Promise<IssuedKey> {
  const body = parse(CreateKeyInput, input, "body");
  const account = await getAccount(accountId);
  const scopes = body.scopes ?? DEFAULT_SCOPES[account.kind];
  return storeKey(account, generateApiKey(account.kind), scopes, body.name, ctx);
}

export const BOOTSTRAP_ADMIN_ID = "acct_bootstrapadmin000000000000";

/**
 * Makes sure the bootstrap admin account exists and that `key` authenticates as it. Any `ak_` string of 32+ more
 * characters is accepted as given (checksum or not), so automation can choose its key.
 */
export async function ensureBootstrapAdmin(key: string): Promise<void> {
  if (!/^ak_.{32,}$/.test(key))
    throw new Error("COORD_BOOTSTRAP_ADMIN_KEY must be 'ak_' followed by 32+ characters");
  const now = new Date().toISOString();
  await ddb()
    .send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.account(BOOTSTRAP_ADMIN_ID),
        UpdateExpression:
          "SET entity = :e, id = :id, #n = :n, kind = :k, available = :z, held = :z, createdAt = :t, version = :one, GSI1PK = :g1, GSI1SK = :g1s",
        ConditionExpression: "attribute_not_exists(PK)",
        ExpressionAttributeNames: { "#n": "name" },
        ExpressionAttributeValues: {
          ":e": "account",
          ":id": BOOTSTRAP_ADMIN_ID,
          ":n": "bootstrap admin",
          ":k": "admin",
          ":z": 0,
          ":t": now,
          ":one": 1,
          ":g1": "ACCOUNTS",
          ":g1s": `${now}#${BOOTSTRAP_ADMIN_ID}`,
        },
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
  const existing = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.apiKey(hashApiKey(key)) }),
  );
  if (existing.Item) return;
  await storeKey(await getAccount(BOOTSTRAP_ADMIN_ID), key, DEFAULT_SCOPES.admin, "bootstrap", {});
}

const KeyItem = v.object({
  keyId: v.string(),
  accountId: v.string(),
  kind: v.picklist(["client", "miner", "admin"] as const),
  scopes: v.array(v.string()),
  revokedAt: v.optional(v.string()),
  keyExpiresAt: v.optional(v.string()),
});

/**
 * Resolves a raw key to its principal. A malformed key (bad prefix or checksum) is refused without a lookup,
 * except `ak_` keys, which may be a bootstrap key chosen by the operator.
 */
export async function authenticate(rawKey: string): Promise<Principal> {
  const shape = inspectApiKey(rawKey);
  if (!shape.ok && !rawKey.startsWith("ak_")) throw new UnauthorizedError("malformed API key");
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.apiKey(hashApiKey(rawKey)) }),
  );
  if (!out.Item) throw new UnauthorizedError("unknown API key");
  const item = v.parse(KeyItem, out.Item);
  if (item.revokedAt) throw new UnauthorizedError("API key revoked");
  if (item.keyExpiresAt && Date.parse(item.keyExpiresAt) <= Date.now())
    throw new UnauthorizedError("API key expired");
  return { accountId: item.accountId, kind: item.kind, keyId: item.keyId, scopes: item.scopes };
}

import { createHash } from "node:crypto";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import canonicalize from "canonicalize";
import * as v from "valibot";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../db/outbox.ts";
import { CoordError } from "../errors.ts";
import { parse } from "../validate.ts";

/**
 * `Idempotency-Key` on every mutating client call. Two ways to keep the first answer: creations record it inside
 * their own transaction (`idempotencyRecord` + `findReplay`: concurrent duplicates create one object), other changes
 * run under `idempotent()` (a record claimed first, the answer stored after). No record holds a secret: an answer
 * that shows one (`secret`) is stored, and so replayed, with it redacted (`withoutSecret`).
 */
export const IdempotencyKey = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(255),
  v.regex(/^[\x21-\x7e]+$/, "printable ASCII only"),
);

/** How long a first request may take before a repeat may run it again (it crashed). */
const IN_PROGRESS_SECONDS = 60;
const KEEP_SECONDS = 86_400;

export interface Answer<T> {
  status: 200 | 201 | 202 | 204;
  body: T;
}

/**
 * What a replay record keeps of an answer. Answers that show a secret once carry it as a top-level `secret` (a
 * webhook endpoint's or the account's `whsec_` signing secret, on creation, reveal and rotation); the record keeps
 * `secret: null` and `secret_redacted: true` instead, so a replay says that the secret was shown in the first
 * answer only (rotate to get a new one) and the table never holds a second copy of it for a day.
 */
export function withoutSecret(body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body) || !("secret" in body)) return body;
  return { ...body, secret: null, secret_redacted: true };
}

/** What identifies a request: the route and the canonical (RFC 8785) JSON of its body. */
export function requestHash(route: string, body: unknown): string {
  return createHash("sha256")
    .update(`${route}\n${canonicalize(body ?? null) ?? ""}`)
    .digest("hex");
}

export function parseIdempotencyKey(raw: string | undefined): string | undefined {
  return raw === undefined ? undefined : parse(IdempotencyKey, raw, "header.idempotency-key");
}

function mismatch(): CoordError {
  return new CoordError("idempotency_mismatch", "this Idempotency-Key was used with a different request", {
    errors: [{ path: "header.idempotency-key", message: "reused with a different request" }],
  });
}

/**
 * The idempotency record to put in a creation's own transaction, holding the exact JSON text of its 201 answer so
 * that a replay is byte-for-byte the first response (a secret in it excepted: see `withoutSecret`). Put last: its
 * condition failing means "a duplicate won".
 */
export function idempotencyRecord(
  accountId: string,
  key: string,
  hash: string,
  body: unknown,
  at: Date,
): TransactItem {
  const now = Math.floor(at.getTime() / 1000);
  return {
    Put: {
      TableName: config.tableName,
      Item: {
        ...keys.idempotency(accountId, key),
        entity: "idempotency",
        requestHash: hash,
        state: "done",
        response: { status: 201, body: JSON.stringify(withoutSecret(body)) },
        expiresAt: now + KEEP_SECONDS,
      },
      ConditionExpression: "attribute_not_exists(PK) OR expiresAt < :nowS",
      ExpressionAttributeValues: { ":nowS": now },
    },
  };
}

/** The first answer for this key, if any (422 if the key came with a different request). */
export async function findReplay<T>(accountId: string, key: string, hash: string): Promise<T | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.idempotency(accountId, key),
      ConsistentRead: true,
    }),
  );
  const item = out.Item;
  if (!item || Number(item.expiresAt) < Date.now() / 1000 || !item.response) return undefined;
  if (item.requestHash !== hash) throw mismatch();
  return JSON.parse(item.response.body) as T;
}

/**
 * `Idempotency-Key` for the changes that are not creations: the first request with a key runs and its answer is
 * kept for a day (without its secret, if it shows one: `withoutSecret`); a repeat with the same key and the same
 * request (route + canonical body) replays that answer, with a different request it is 422, and while the first is
 * still running it is 409. A request that fails leaves nothing behind, so it can be retried. (Creations record
 * their key in their own transaction instead: `idempotencyRecord`.)
 */
export async function idempotent<T>(
  accountId: string,
  rawKey: string | undefined,
  request: { route: string; body: unknown },
  run: () => Promise<Answer<T>>,
): Promise<Answer<T> & { replayed: boolean }> {
  if (rawKey === undefined) return { ...(await run()), replayed: false };
  const key = parse(IdempotencyKey, rawKey, "header.idempotency-key");
  const hash = requestHash(request.route, request.body);
  const Key = keys.idempotency(accountId, key);
  const now = Math.floor(Date.now() / 1000);
  try {
    await ddb().send(
      new PutCommand({
        TableName: config.tableName,
        Item: {
          ...Key,
          entity: "idempotency",
          requestHash: hash,
          state: "running",
          expiresAt: now + IN_PROGRESS_SECONDS,
        },
        ConditionExpression: "attribute_not_exists(PK) OR expiresAt < :now",
        ExpressionAttributeValues: { ":now": now },
      }),
    );
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    const found = (
      await ddb().send(new GetCommand({ TableName: config.tableName, Key, ConsistentRead: true }))
    ).Item;
    if (!found || Number(found.expiresAt) < now) return idempotent(accountId, rawKey, request, run);
    if (found.requestHash !== hash) throw mismatch();
    if (found.state === "running" || !found.response) {
      throw new CoordError(
        "idempotency_in_progress",
        "a request with this Idempotency-Key is still running",
        {
          retry_after_seconds: 1,
        },
      );
    }
    return { status: found.response.status, body: JSON.parse(found.response.body) as T, replayed: true };
  }
  let answer: Answer<T>;
  try {
    answer = await run();
  } catch (err) {
    await ddb()
      .send(new DeleteCommand({ TableName: config.tableName, Key }))
      .catch(() => undefined);
    throw err;
  }
  // The change is made: if keeping its answer fails, the answer still goes back (a repeat after the in-progress
  // window would run the request again).
  await ddb()
    .send(
      new UpdateCommand({
        TableName: config.tableName,
        Key,
        UpdateExpression: "SET #state = :done, #response = :response, expiresAt = :exp",
        ExpressionAttributeNames: { "#state": "state", "#response": "response" },
        ExpressionAttributeValues: {
          ":done": "done",
          ":response": { status: answer.status, body: JSON.stringify(withoutSecret(answer.body ?? null)) },
          ":exp": Math.floor(Date.now() / 1000) + KEEP_SECONDS,
        },
      }),
    )
    .catch(() => undefined);
  return { ...answer, replayed: false };
}

import { createHash } from "node:crypto";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import canonicalize from "canonicalize";
import * as v from "valibot";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { CoordError } from "../errors.ts";
import { parse } from "../validate.ts";

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
 * `Idempotency-Key` for the webhook routes that change something: the first request with a key runs and its answer
 * is kept for a day; a repeat with the same key and the same request (route + canonical body) replays that answer,
 * with a different request it is 422, and while the first is still running it is 409. A request that fails leaves
 * nothing behind, so it can be retried. (Endpoint creation records its key in the same transaction instead.)
 */
export async function idempotent<T>(
  accountId: string,
  rawKey: string | undefined,
  request: { route: string; body: unknown },
  run: () => Promise<Answer<T>>,
): Promise<Answer<T> & { replayed: boolean }> {
  if (rawKey === undefined) return { ...(await run()), replayed: false };
  const key = parse(IdempotencyKey, rawKey, "header.idempotency-key");
  const hash = createHash("sha256")
    .update(`${request.route}\n${canonicalize(request.body ?? null) ?? ""}`)
    .digest("hex");
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
    if (found.requestHash !== hash) {
      throw new CoordError("idempotency_mismatch", "this Idempotency-Key was used with a different request", {
        errors: [{ path: "header.idempotency-key", message: "reused with a different request" }],
      });
    }
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
          ":response": { status: answer.status, body: JSON.stringify(answer.body ?? null) },
          ":exp": Math.floor(Date.now() / 1000) + KEEP_SECONDS,
        },
      }),
    )
    .catch(() => undefined);
  return { ...answer, replayed: false };
}

import { BatchGetCommand, type BatchGetCommandOutput } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "./client.ts";

/** BatchGetItem takes at most this many keys per request. */
const BATCH = 100;
/** Rounds of `UnprocessedKeys` retries before giving up (20 ms, 40 ms ... about 2.5 s in all). */
const MAX_ROUNDS = 8;

type Key = Record<string, unknown>;

/**
 * Every item of `keys` that exists, in no particular order: BatchGetItem in chunks of 100 (duplicate keys, which
 * DynamoDB refuses, are asked for once), retrying `UnprocessedKeys` with exponential backoff until none remain. An
 * answer that keeps coming back unprocessed after several rounds is an error, not a silently short result.
 */
export async function batchGetAll(
  keys: Key[],
  opts: { consistent?: boolean; attributes?: string[] } = {},
): Promise<Key[]> {
  const names = opts.attributes && {
    ProjectionExpression: ["PK", "SK", ...opts.attributes].map((_, i) => `#a${i}`).join(", "),
    ExpressionAttributeNames: Object.fromEntries(
      ["PK", "SK", ...opts.attributes].map((a, i) => [`#a${i}`, a]),
    ),
  };
  const unique = [...new Map(keys.map((k) => [JSON.stringify([k.PK, k.SK]), k])).values()];
  const found: Key[] = [];
  for (let i = 0; i < unique.length; i += BATCH) {
    let pending: Key[] | undefined = unique.slice(i, i + BATCH);
    for (let round = 0; pending && pending.length > 0; round++) {
      if (round >= MAX_ROUNDS) throw new Error("BatchGetItem kept returning unprocessed keys");
      if (round > 0) await new Promise((r) => setTimeout(r, 10 * 2 ** round));
      const out: BatchGetCommandOutput = await ddb().send(
        new BatchGetCommand({
          RequestItems: { [config.tableName]: { Keys: pending, ConsistentRead: opts.consistent, ...names } },
        }),
      );
      found.push(...(out.Responses?.[config.tableName] ?? []));
      pending = out.UnprocessedKeys?.[config.tableName]?.Keys;
    }
  }
  return found;
}

/**
 * The items behind index entries that project less than the item (keys-only or narrow indexes), in the entries'
 * order; an entry whose item is gone meanwhile is left out.
 */
export async function hydrate(entries: Key[], attributes?: string[]): Promise<Key[]> {
  if (entries.length === 0) return [];
  const found = await batchGetAll(
    entries.map((e) => ({ PK: e.PK, SK: e.SK })),
    attributes ? { attributes } : {},
  );
  const byKey = new Map(found.map((i) => [`${i.PK}\n${i.SK}`, i]));
  return entries.map((e) => byKey.get(`${e.PK}\n${e.SK}`)).filter((i): i is Key => i !== undefined);
}

import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ValidationError } from "../errors.ts";
import { ddb } from "./client.ts";
import { decodeCursor, encodeCursor, startKeyWithin } from "./cursor.ts";

/**
 * Pages through a sharded index partition family (`<prefix><shard>`), shard after shard, with one opaque cursor
 * that remembers the shard and the position in it.
 */
export async function pageShards(opts: {
  index: "GSI1" | "GSI2" | "GSI3";
  partition: (shard: number) => string;
  shards: number;
  limit: number;
  cursor?: string;
  filter?: { expression: string; names?: Record<string, string>; values?: Record<string, unknown> };
}): Promise<{ items: Record<string, unknown>[]; nextCursor: string | null }> {
  const pk = `${opts.index}PK`;
  const pos = decodeCursor(opts.cursor) as { shard?: unknown; key?: unknown } | undefined;
  let shard = 0;
  let key: Record<string, unknown> | undefined;
  if (pos) {
    // A cursor names a shard of this family and, optionally, a start key inside that shard's partition.
    const bad = () => new ValidationError([{ path: "query.cursor", message: "not a cursor for this list" }]);
    if (!Number.isInteger(pos.shard) || (pos.shard as number) < 0 || (pos.shard as number) >= opts.shards)
      throw bad();
    shard = pos.shard as number;
    if (pos.key !== undefined) {
      if (typeof pos.key !== "object" || pos.key === null || Array.isArray(pos.key)) throw bad();
      key = startKeyWithin(pos.key as Record<string, unknown>, { [pk]: opts.partition(shard) });
    }
  }
  const items: Record<string, unknown>[] = [];
  while (shard < opts.shards && items.length < opts.limit) {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        IndexName: opts.index,
        KeyConditionExpression: `${pk} = :pk`,
        ExpressionAttributeValues: { ":pk": opts.partition(shard), ...opts.filter?.values },
        ...(opts.filter ? { FilterExpression: opts.filter.expression } : {}),
        ...(opts.filter?.names ? { ExpressionAttributeNames: opts.filter.names } : {}),
        Limit: opts.limit - items.length,
        ExclusiveStartKey: key,
      }),
    );
    items.push(...(out.Items ?? []));
    key = out.LastEvaluatedKey;
    if (!key) shard++;
  }
  return { items, nextCursor: shard < opts.shards ? (encodeCursor({ shard, key }) ?? null) : null };
}

/** Every deadline-index item (all shards), optionally only those whose deadline is before `before`. */
export async function* deadlineItems(
  shards: number,
  opts: { before?: string } = {},
): AsyncGenerator<Record<string, unknown>> {
  for (let shard = 0; shard < shards; shard++) {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await ddb().send(
        new QueryCommand({
          TableName: config.tableName,
          IndexName: "GSI3",
          KeyConditionExpression: opts.before ? "GSI3PK = :pk AND GSI3SK < :before" : "GSI3PK = :pk",
          ExpressionAttributeValues: {
            ":pk": `DEADLINE#${shard}`,
            ...(opts.before ? { ":before": opts.before } : {}),
          },
          Limit: 100,
          ExclusiveStartKey: start,
        }),
      );
      yield* out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }
}

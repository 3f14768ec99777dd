import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "./client.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";

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
  const pos = decodeCursor(opts.cursor) as { shard?: number; key?: Record<string, unknown> } | undefined;
  let shard = Number(pos?.shard ?? 0);
  let key = pos?.key;
  const items: Record<string, unknown>[] = [];
  const pk = `${opts.index}PK`;
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

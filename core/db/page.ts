import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "./client.ts";
import { cursorWithin, encodeCursor } from "./cursor.ts";

export interface PageRequest {
  /** Query an index (its `<index>PK`), or the table itself (`PK`). */
  index?: "GSI1" | "GSI2" | "GSI3" | "GSI4";
  /** The partition key value to list. */
  partition: string;
  /** Only sort keys starting with this. */
  skPrefix?: string;
  /** Only sort keys from `from` to `to`, both inclusive (DynamoDB's BETWEEN); instead of `skPrefix`. */
  skBetween?: { from: string; to: string };
  limit: number;
  /** A cursor this API issued for the same partition (anything else is 422). */
  cursor?: string;
  newestFirst?: boolean;
  consistent?: boolean;
  filter?: { expression: string; names?: Record<string, string>; values?: Record<string, unknown> };
}

/**
 * One page of one partition, with an opaque cursor checked against the partition: the listing every collection
 * route is built on.
 */
export async function queryPage(
  req: PageRequest,
): Promise<{ items: Record<string, unknown>[]; next_cursor: string | null }> {
  const pkName = req.index ? `${req.index}PK` : "PK";
  const skName = req.index ? `${req.index}SK` : "SK";
  const skCondition = req.skBetween
    ? ` AND ${skName} BETWEEN :skFrom AND :skTo`
    : req.skPrefix
      ? ` AND begins_with(${skName}, :sk)`
      : "";
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: req.index,
      KeyConditionExpression: `${pkName} = :pk${skCondition}`,
      ExpressionAttributeValues: {
        ":pk": req.partition,
        ...(req.skBetween
          ? { ":skFrom": req.skBetween.from, ":skTo": req.skBetween.to }
          : req.skPrefix
            ? { ":sk": req.skPrefix }
            : {}),
        ...req.filter?.values,
      },
      ...(req.filter ? { FilterExpression: req.filter.expression } : {}),
      ...(req.filter?.names ? { ExpressionAttributeNames: req.filter.names } : {}),
      ScanIndexForward: !req.newestFirst,
      ConsistentRead: req.index ? undefined : req.consistent,
      Limit: req.limit,
      ExclusiveStartKey: cursorWithin(req.cursor, { [pkName]: req.partition }),
    }),
  );
  return { items: out.Items ?? [], next_cursor: encodeCursor(out.LastEvaluatedKey) ?? null };
}

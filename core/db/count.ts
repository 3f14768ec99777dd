import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "./client.ts";

/**
 * How many entries one partition of an index holds: a COUNT query, page after page (a COUNT still reads every entry,
 * so its cost grows with the partition: for operator views and scrapes, never the hot path).
 */
export async function countPartition(index: string, pkName: string, pk: string): Promise<number> {
  let total = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        IndexName: index,
        KeyConditionExpression: `${pkName} = :pk`,
        ExpressionAttributeValues: { ":pk": pk },
        Select: "COUNT",
        ExclusiveStartKey: start,
      }),
    );
    total += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return total;
}

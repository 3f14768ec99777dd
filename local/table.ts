import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { ATTRIBUTES, TABLE } from "../core/db/table.ts";

/** Creates the single table from its one definition (core/db/table.ts) unless it already exists. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<string> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const arn = out.Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${tableName} exists without a stream`);
    return arn;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
  const out = await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: ATTRIBUTES.map((name) => ({ AttributeName: name, AttributeType: "S" })),
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: "HASH" },
        { AttributeName: TABLE.sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: Object.entries(TABLE.indexes).map(([name, idx]) => ({
        IndexName: name,
        KeySchema: [
          { AttributeName: idx.partitionKey, KeyType: "HASH" },
          { AttributeName: idx.sortKey, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      })),
      StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE.stream },
    }),
  );
  // DynamoDB Local accepts the TTL setting but never expires items; every read filters on expiry instead.
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { Enabled: true, AttributeName: TABLE.ttlAttribute },
    }),
  );
  const arn = out.TableDescription?.LatestStreamArn;
  if (!arn) throw new Error("DynamoDB Local created the table without a stream");
  return arn;
}

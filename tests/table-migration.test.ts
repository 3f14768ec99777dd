import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import { ATTRIBUTES, TABLE } from "../core/db/table.ts";
import { ensureTable } from "../local/table.ts";
import { stack } from "./fixture.ts";

const client = new DynamoDBClient({
  endpoint: stack.dynamoEndpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
});
const name = `migration-${Math.random().toString(36).slice(2, 8)}`;

afterAll(async () => {
  await client.send(new DeleteTableCommand({ TableName: name })).catch(() => {});
  client.destroy();
});

describe("a table persisted by an earlier version", () => {
  it("has its indexes rebuilt to the definition's projections, keeping the data and the index entries", async () => {
    // As the previous version created it: every index projecting all attributes.
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: ATTRIBUTES.map((a) => ({ AttributeName: a, AttributeType: "S" })),
        KeySchema: [
          { AttributeName: "PK", KeyType: "HASH" },
          { AttributeName: "SK", KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: Object.entries(TABLE.indexes).map(([index, idx]) => ({
          IndexName: index,
          KeySchema: [
            { AttributeName: idx.partitionKey, KeyType: "HASH" },
            { AttributeName: idx.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        })),
        StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      }),
    );
    await ddb().send(
      new PutCommand({
        TableName: name,
        Item: {
          PK: "JOB#x",
          SK: "JOB",
          GSI2PK: "ACCOUNT#a#JOBS",
          GSI2SK: "t#x",
          status: "queued",
          big: "y".repeat(500),
        },
      }),
    );
    await ensureTable(client, name);
    const table = (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
    const byName = Object.fromEntries((table?.GlobalSecondaryIndexes ?? []).map((g) => [g.IndexName, g]));
    expect(byName.GSI1?.Projection?.ProjectionType).toBe("ALL");
    expect(byName.GSI2?.Projection?.ProjectionType).toBe("KEYS_ONLY");
    expect(byName.GSI3?.Projection).toMatchObject({ ProjectionType: "INCLUDE" });
    expect([...(byName.GSI3?.Projection?.NonKeyAttributes ?? [])].sort()).toEqual(
      [...(TABLE.indexes.GSI3.projection as readonly string[])].sort(),
    );
    expect(byName.GSI2?.ItemCount ?? 1).toBeGreaterThanOrEqual(0);
    // A second start finds nothing to do.
    await ensureTable(client, name);
  }, 60_000);
});

import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
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
    // As an earlier version created it: GSI1 to GSI3 only, every one projecting all attributes.
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: ATTRIBUTES.filter((a) => !a.startsWith("GSI4")).map((a) => ({
          AttributeName: a,
          AttributeType: "S",
        })),
        KeySchema: [
          { AttributeName: "PK", KeyType: "HASH" },
          { AttributeName: "SK", KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: Object.entries(TABLE.indexes)
          .filter(([index]) => index !== "GSI4")
          .map(([index, idx]) => ({
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
    // Accounts and their miners were listed on GSI1 then.
    const account = {
      PK: "ACCOUNT#acct_a",
      SK: "ACCOUNT",
      id: "acct_a",
      GSI1PK: "ACCOUNTS",
      GSI1SK: "t#acct_a",
    };
    const miner = { PK: "MINER#m", SK: "MINER", id: "m", GSI1PK: "ACCOUNT#acct_a#MINERS", GSI1SK: "gpu-1" };
    for (const Item of [account, miner]) await ddb().send(new PutCommand({ TableName: name, Item }));
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
    expect(byName.GSI4?.Projection?.ProjectionType).toBe("KEYS_ONLY");
    // Their listing keys moved to GSI4 (keys only), and left GSI1.
    const moved = async (pk: string) =>
      (await ddb().send(new GetCommand({ TableName: name, Key: { PK: pk, SK: pk.split("#")[0] } }))).Item;
    expect(await moved("ACCOUNT#acct_a")).toMatchObject({ GSI4PK: "ACCOUNTS", GSI4SK: "t#acct_a" });
    expect((await moved("ACCOUNT#acct_a"))?.GSI1PK).toBeUndefined();
    expect(await moved("MINER#m")).toMatchObject({ GSI4PK: "ACCOUNT#acct_a#MINERS", GSI4SK: "gpu-1" });
    expect((await moved("MINER#m"))?.GSI1PK).toBeUndefined();
    // A second start finds nothing to do.
    await ensureTable(client, name);
  }, 60_000);
});

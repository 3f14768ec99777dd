import {
  CreateTableCommand,
  type Projection as DdbProjection,
  DescribeTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndexDescription,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { ATTRIBUTES, type IndexName, type Projection, TABLE } from "../core/db/table.ts";
import { moveSettlementLeaves } from "./move-settlement-leaves.ts";

/** The index projection in DynamoDB's form. */
function ddbProjection(p: Projection): DdbProjection {
  if (p === "ALL" || p === "KEYS_ONLY") return { ProjectionType: p };
  return { ProjectionType: "INCLUDE", NonKeyAttributes: [...p] };
}

function sameProjection(have: DdbProjection | undefined, want: DdbProjection): boolean {
  if (have?.ProjectionType !== want.ProjectionType) return false;
  const a = [...(have?.NonKeyAttributes ?? [])].sort();
  const b = [...(want.NonKeyAttributes ?? [])].sort();
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function indexSpec(name: IndexName) {
  const idx = TABLE.indexes[name];
  return {
    IndexName: name,
    KeySchema: [
      { AttributeName: idx.partitionKey, KeyType: "HASH" as const },
      { AttributeName: idx.sortKey, KeyType: "RANGE" as const },
    ],
    Projection: ddbProjection(idx.projection),
  };
}

async function waitForIndex(client: DynamoDBClient, tableName: string, name: string, gone: boolean) {
  for (let i = 0; i < 600; i++) {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const idx = out.Table?.GlobalSecondaryIndexes?.find((g) => g.IndexName === name);
    if (gone ? !idx : idx?.IndexStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`index ${name} of ${tableName} did not become ${gone ? "deleted" : "active"}`);
}

/**
 * A table persisted by an earlier version (`.coord/`) whose indexes project otherwise than the definition: each such
 * index is dropped and built again (DynamoDB Local backfills it from the table), so that the readers find what the
 * definition promises.
 */
async function migrateIndexes(
  client: DynamoDBClient,
  tableName: string,
  have: GlobalSecondaryIndexDescription[],
): Promise<IndexName[]> {
  const created: IndexName[] = [];
  for (const name of Object.keys(TABLE.indexes) as IndexName[]) {
    const spec = indexSpec(name);
    const current = have.find((g) => g.IndexName === name);
    if (current && sameProjection(current.Projection, spec.Projection)) continue;
    if (!current) created.push(name);
    if (current) {
      await client.send(
        new UpdateTableCommand({
          TableName: tableName,
          GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: name } }],
        }),
      );
      await waitForIndex(client, tableName, name, true);
    }
    await client.send(
      new UpdateTableCommand({
        TableName: tableName,
        AttributeDefinitions: ATTRIBUTES.map((a) => ({ AttributeName: a, AttributeType: "S" })),
        GlobalSecondaryIndexUpdates: [{ Create: spec }],
      }),
    );
    await waitForIndex(client, tableName, name, false);
  }
  return created;
}

/**
 * Tables written before GSI4 existed list accounts (`ACCOUNTS`) and an account's miners (`ACCOUNT#<id>#MINERS`) on
 * GSI1, which projects everything, so every balance and slot update rewrote the index entry too. Once GSI4 is
 * created, those items' listing keys move to it (and leave GSI1). Conditional on the old key, so a rerun is a no-op.
 */
async function moveListingKeysToGsi4(client: DynamoDBClient, tableName: string): Promise<number> {
  const doc = DynamoDBDocumentClient.from(client);
  const partition = async function* (pk: string) {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await doc.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: "GSI1",
          KeyConditionExpression: "GSI1PK = :pk",
          ExpressionAttributeValues: { ":pk": pk },
          ExclusiveStartKey: start,
        }),
      );
      yield* out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  };
  let moved = 0;
  const move = async (item: Record<string, unknown>) => {
    await doc
      .send(
        new UpdateCommand({
          TableName: tableName,
          Key: { PK: item.PK, SK: item.SK },
          UpdateExpression: "SET GSI4PK = :pk, GSI4SK = :sk REMOVE GSI1PK, GSI1SK",
          ConditionExpression: "GSI1PK = :pk",
          ExpressionAttributeValues: { ":pk": item.GSI1PK, ":sk": item.GSI1SK },
        }),
      )
      .then(() => moved++)
      .catch((err: Error) => {
        if (err.name !== "ConditionalCheckFailedException") throw err;
      });
  };
  for await (const account of partition("ACCOUNTS")) {
    await move(account);
    for await (const miner of partition(`ACCOUNT#${String(account.id)}#MINERS`)) await move(miner);
  }
  return moved;
}

/** Creates the single table from its one definition (core/db/table.ts) unless it already exists. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<string> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const arn = out.Table?.LatestStreamArn;
    if (!arn) throw new Error(`table ${tableName} exists without a stream`);
    const created = await migrateIndexes(client, tableName, out.Table?.GlobalSecondaryIndexes ?? []);
    if (created.includes("GSI4")) await moveListingKeysToGsi4(client, tableName);
    await moveSettlementLeaves(DynamoDBDocumentClient.from(client), tableName);
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
      GlobalSecondaryIndexes: (Object.keys(TABLE.indexes) as IndexName[]).map(indexSpec),
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

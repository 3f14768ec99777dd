import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { unbatchedListing } from "../core/settlement/store.ts";

/** Marks the move as done, so a table is scanned for old leaf items once, not at every start. */
const DONE = { PK: "MIGRATION#settlement-leaves", SK: "DONE" };

/**
 * Tables written before receipts waited on their job's result item kept each receipt's settlement leaf as its own
 * item (`SETTLELEAF#<receipt id>`, written by a consumer). Each one moves onto its job's result item: a leaf a batch
 * claimed names that batch there (`settlementBatchId`, what the proof route reads); an unclaimed one is listed as
 * unbatched (what the sealer reads). Then the old item goes. Conditional, so a rerun or a racing sealer is safe.
 */
export async function moveSettlementLeaves(doc: DynamoDBDocumentClient, tableName: string): Promise<number> {
  if ((await doc.send(new GetCommand({ TableName: tableName, Key: DONE }))).Item) return 0;
  let moved = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: "entity = :e",
        ExpressionAttributeValues: { ":e": "settlementLeaf" },
        ExclusiveStartKey: start,
      }),
    );
    for (const leaf of page.Items ?? []) {
      const jobId = String(leaf.jobId);
      const claimed = typeof leaf.batchId === "string";
      const listing = unbatchedListing(jobId, new Date(String(leaf.recordedAt)));
      await doc
        .send(
          new UpdateCommand({
            TableName: tableName,
            Key: { PK: `JOB#${jobId}`, SK: "RESULT" },
            UpdateExpression: claimed ? "SET settlementBatchId = :b" : "SET GSI4PK = :pk, GSI4SK = :sk",
            ConditionExpression: "attribute_exists(receiptJson) AND attribute_not_exists(settlementBatchId)",
            ExpressionAttributeValues: claimed
              ? { ":b": leaf.batchId }
              : { ":pk": listing.GSI4PK, ":sk": listing.GSI4SK },
          }),
        )
        .then(() => moved++)
        .catch((err: Error) => {
          if (err.name !== "ConditionalCheckFailedException") throw err;
        });
      await doc.send(new DeleteCommand({ TableName: tableName, Key: { PK: leaf.PK, SK: leaf.SK } }));
    }
    start = page.LastEvaluatedKey;
  } while (start);
  await doc.send(
    new PutCommand({ TableName: tableName, Item: { ...DONE, movedAt: new Date().toISOString() } }),
  );
  return moved;
}

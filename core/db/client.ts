import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";

let cached: DynamoDBDocumentClient | undefined;

/** One document client per process (Lambda instance), pointed at DynamoDB Local when configured. */
export function ddb(): DynamoDBDocumentClient {
  if (cached) return cached;
  const endpoint = config.dynamoEndpoint;
  const raw = new DynamoDBClient({
    region: config.region,
    ...(endpoint ? { endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
    maxAttempts: 5,
  });
  cached = DynamoDBDocumentClient.from(raw, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return cached;
}

export function resetDdbClient(): void {
  cached = undefined;
}

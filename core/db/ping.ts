import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "./client.ts";

/** A cheap read that proves the table answers (0.5 RCU). */
export async function pingTable(): Promise<void> {
  await ddb().send(new GetCommand({ TableName: config.tableName, Key: { PK: "HEALTH", SK: "HEALTH" } }));
}

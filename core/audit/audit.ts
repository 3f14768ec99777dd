import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { Envelope } from "../../events/catalog.ts";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";

/**
 * The audit trail is fed from the bus (rule `audit-trail`). Writing is idempotent on the event id, so a duplicate
 * delivery leaves one entry.
 */
export async function recordAudit(event: Envelope): Promise<void> {
  const day = event.occurred_at.slice(0, 10);
  await ddb()
    .send(
      new PutCommand({
        TableName: config.tableName,
        Item: {
          ...keys.audit(day, event.occurred_at, event.id),
          entity: "audit",
          eventId: event.id,
          type: event.type,
          accountId: event.account_id,
          subject: event.subject,
          correlationId: event.correlation_id,
          occurredAt: event.occurred_at,
          data: event.data,
        },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

export async function auditForDay(day: string) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": keys.audit(day, "", "").PK },
    }),
  );
  return out.Items ?? [];
}

import { inject } from "vitest";

// Points core's clients (used by tests for direct table access) at the stack the global setup started.
const stack = inject("stack");
if (stack) {
  process.env.COORD_TABLE_NAME = stack.tableName;
  process.env.COORD_DYNAMO_ENDPOINT = stack.dynamoEndpoint;
  process.env.COORD_SQS_ENDPOINT = stack.sqsEndpoint;
  process.env.COORD_QUEUE_PREFIX = "coord";
}

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";

// The CLI keeps its files (profiles, miner signing keys) under $XDG_CONFIG_HOME/coord: a fresh one per test worker,
// so that no test reads or writes the developer's own, and the processes tests spawn inherit it.
process.env.XDG_CONFIG_HOME = mkdtempSync(join(tmpdir(), "coord-test-config-"));

// Points core's clients (used by tests for direct table access) at the stack the global setup started.
const stack = inject("stack");
if (stack) {
  process.env.COORD_TABLE_NAME = stack.tableName;
  process.env.COORD_DYNAMO_ENDPOINT = stack.dynamoEndpoint;
  process.env.COORD_SQS_ENDPOINT = stack.sqsEndpoint;
  process.env.COORD_QUEUE_PREFIX = "coord";
}

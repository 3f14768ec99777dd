/**
 * The single table, defined once. `stacks/table.ts` turns this into an SST Dynamo component and `local/` into a
 * CreateTable call against DynamoDB Local, so the two can never drift.
 */
export const TABLE = {
  partitionKey: "PK",
  sortKey: "SK",
  ttlAttribute: "expiresAt",
  stream: "NEW_AND_OLD_IMAGES",
  /** Overloaded secondary indexes. Each exists for an access pattern listed in ACCESS_PATTERNS.md. */
  indexes: {
    GSI1: { partitionKey: "GSI1PK", sortKey: "GSI1SK" },
    GSI2: { partitionKey: "GSI2PK", sortKey: "GSI2SK" },
    GSI3: { partitionKey: "GSI3PK", sortKey: "GSI3SK" },
  },
} as const;

export type IndexName = keyof typeof TABLE.indexes;

export const ATTRIBUTES = ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK"] as const;

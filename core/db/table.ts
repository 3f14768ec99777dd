/**
 * The single table, defined once. `stacks/table.ts` turns this into an SST Dynamo component and `local/` into a
 * CreateTable call against DynamoDB Local, so the two can never drift.
 */
export const TABLE = {
  partitionKey: "PK",
  sortKey: "SK",
  ttlAttribute: "expiresAt",
  stream: "NEW_AND_OLD_IMAGES",
  /**
   * Overloaded secondary indexes. Each exists for an access pattern listed in ACCESS_PATTERNS.md, and projects only
   * what its readers need, since every projected attribute is paid for on every write of the item:
   * - GSI1 (ready queue, and listings of keys and pools) projects everything: a claim needs the whole job, and the
   *   ready-queue entry exists only while the job is queued (written once, removed once);
   * - GSI2 (an account's jobs, miners by status) projects keys only: listings read the items they page over, and a
   *   job's entry is written once, at submit, not on every transition;
   * - GSI3 (the deadline index) projects the attributes that never change (id, service, account): a status
   *   change rewrites no entry, and the entry's key (a lower bound of the next deadline, core/jobs/item.ts) moves
   *   only when a deadline comes earlier than it;
   * - GSI4 (listings of accounts and of an account's miners; receipts waiting for a settlement batch) projects keys
   *   only: accounts and miners change on every job (balances, slots), and with keys only and keys that never
   *   change, those changes write no index at all; a waiting receipt's entry is one small write in the completion.
   */
  indexes: {
    GSI1: { partitionKey: "GSI1PK", sortKey: "GSI1SK", projection: "ALL" },
    GSI2: { partitionKey: "GSI2PK", sortKey: "GSI2SK", projection: "KEYS_ONLY" },
    GSI3: { partitionKey: "GSI3PK", sortKey: "GSI3SK", projection: ["id", "service", "accountId"] },
    GSI4: { partitionKey: "GSI4PK", sortKey: "GSI4SK", projection: "KEYS_ONLY" },
  },
} as const;

export type IndexName = keyof typeof TABLE.indexes;
export type Projection = "ALL" | "KEYS_ONLY" | readonly string[];

export const ATTRIBUTES = [
  "PK",
  "SK",
  "GSI1PK",
  "GSI1SK",
  "GSI2PK",
  "GSI2SK",
  "GSI3PK",
  "GSI3SK",
  "GSI4PK",
  "GSI4SK",
] as const;

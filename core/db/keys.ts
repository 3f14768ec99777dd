/**
 * Key builders for the single table. Every item's keys are built here and nowhere else; ACCESS_PATTERNS.md lists
 * what each key shape serves.
 */
export const keys = {
  account: (id: string) => ({ PK: `ACCOUNT#${id}`, SK: "ACCOUNT" }),
  accountsByCreation: (createdAt: string, id: string) => ({
    GSI1PK: "ACCOUNTS",
    GSI1SK: `${createdAt}#${id}`,
  }),
  apiKey: (hash: string) => ({ PK: `KEY#${hash}`, SK: "KEY" }),
  /** Key id -> key hash, so a key can be revoked or rotated by its public id (strongly consistent, unlike a GSI). */
  apiKeyRef: (keyId: string) => ({ PK: `KEYID#${keyId}`, SK: "KEYID" }),
  apiKeyByAccount: (accountId: string, keyId: string) => ({
    GSI1PK: `ACCOUNT#${accountId}#KEYS`,
    GSI1SK: keyId,
  }),
  /** Outbox items double as a subject's event history: PK of the subject, SK ordered by sequence. */
  event: (subjectPk: string, seq: string) => ({ PK: subjectPk, SK: `EVT#${seq}` }),
  ledgerEntry: (accountId: string, entryId: string) => ({
    PK: `ACCOUNT#${accountId}`,
    SK: `LEDGER#${entryId}`,
  }),
  audit: (day: string, at: string, id: string) => ({ PK: `AUDIT#${day}`, SK: `${at}#${id}` }),
  idempotency: (accountId: string, key: string) => ({ PK: `IDEM#${accountId}#${key}`, SK: "IDEM" }),
  rateLimit: (bucket: string) => ({ PK: `RATE#${bucket}`, SK: "RATE" }),
  job: (id: string) => ({ PK: `JOB#${id}`, SK: "JOB" }),
  jobInput: (id: string) => ({ PK: `JOB#${id}`, SK: "INPUT" }),
  jobResult: (id: string) => ({ PK: `JOB#${id}`, SK: "RESULT" }),
  /** Sparse ready queue (GSI1): present only while the job is claimable. Higher priority sorts first. */
  readyQueue: (service: string, shard: number, priority: number, readyAt: string, jobId: string) => ({
    GSI1PK: `QUEUE#${service}#${shard}`,
    GSI1SK: `${9 - priority}#${readyAt}#${jobId}`,
  }),
  /** An account's jobs, newest last (GSI2). */
  jobsByAccount: (accountId: string, createdAt: string, jobId: string) => ({
    GSI2PK: `ACCOUNT#${accountId}#JOBS`,
    GSI2SK: `${createdAt}#${jobId}`,
  }),
  /** Sparse deadline index (GSI3): every non-terminal job by its next deadline, for the sweep. */
  deadline: (shard: number, at: string, id: string) => ({
    GSI3PK: `DEADLINE#${shard}`,
    GSI3SK: `${at}#${id}`,
  }),
  miner: (id: string) => ({ PK: `MINER#${id}`, SK: "MINER" }),
  minersByAccount: (accountId: string, name: string) => ({
    GSI1PK: `ACCOUNT#${accountId}#MINERS`,
    GSI1SK: name,
  }),
  /** Miners by status (GSI2), sharded; online miners sort by last heartbeat so the sweep finds the silent ones. */
  minersByStatus: (status: string, shard: number, sortKey: string) => ({
    GSI2PK: `MINERS#${status}#${shard}`,
    GSI2SK: sortKey,
  }),
  /** Which service queues may be non-empty: a hint maintained from the stream (see core/jobs/queue-summary.ts). */
  queueSummary: () => ({ PK: "QUEUES", SK: "SUMMARY" }),
  consumed: (consumer: string, eventId: string) => ({
    PK: `CONSUMED#${consumer}#${eventId}`,
    SK: "CONSUMED",
  }),
} as const;

export function seqKey(n: number): string {
  return String(n).padStart(10, "0");
}

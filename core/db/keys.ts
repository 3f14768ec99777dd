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
  consumed: (consumer: string, eventId: string) => ({
    PK: `CONSUMED#${consumer}#${eventId}`,
    SK: "CONSUMED",
  }),
} as const;

export function seqKey(n: number): string {
  return String(n).padStart(10, "0");
}

/**
 * Key builders for the single table. Every item's keys are built here and nowhere else; ACCESS_PATTERNS.md lists
 * what each key shape serves.
 */
export const keys = {
  /** A published receipt signing key (core/receipts): all of them in one small partition, listed together. */
  receiptKey: (keyId: string) => ({ PK: "RECEIPTKEYS", SK: keyId }),
  /** A single-use challenge a miner signs to prove it holds the key it registers (core/receipts/challenge.ts). */
  minerKeyChallenge: (challenge: string) => ({ PK: `KEYCHALLENGE#${challenge}`, SK: "CHALLENGE" }),
  account: (id: string) => ({ PK: `ACCOUNT#${id}`, SK: "ACCOUNT" }),
  /** Every account, by creation (GSI4, keys only: balance updates write no index). */
  accountsByCreation: (createdAt: string, id: string) => ({
    GSI4PK: "ACCOUNTS",
    GSI4SK: `${createdAt}#${id}`,
  }),
  apiKey: (hash: string) => ({ PK: `KEY#${hash}`, SK: "KEY" }),
  /** Keys revoked or rotated in a ten-minute window (core/accounts/key-cache.ts): what instances' caches drop. */
  keyFeed: (window: string) => ({ PK: `KEYFEED#${window}`, SK: "KEYFEED" }),
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
  /** A Stripe Checkout session the coordinator created (core/payments). */
  paymentSession: (sessionId: string) => ({ PK: `PAYMENT#${sessionId}`, SK: "SESSION" }),
  /** Which session a Stripe payment intent paid (a refund names the charge's payment intent, not the session). */
  paymentIntent: (paymentIntentId: string) => ({ PK: `PI#${paymentIntentId}`, SK: "SESSION" }),
  /** A miner account's payout request (core/payouts). */
  payout: (id: string) => ({ PK: `PAYOUT#${id}`, SK: "PAYOUT" }),
  /** Payouts by status, oldest first (GSI1: the operators' queue). */
  payoutsByStatus: (status: string, createdAt: string, id: string) => ({
    GSI1PK: `PAYOUTS#${status}`,
    GSI1SK: `${createdAt}#${id}`,
  }),
  /** An account's payouts, newest last (GSI2, keys only). */
  payoutsByAccount: (accountId: string, createdAt: string, id: string) => ({
    GSI2PK: `ACCOUNT#${accountId}#PAYOUTS`,
    GSI2SK: `${createdAt}#${id}`,
  }),
  /** A Stripe webhook event, recorded once (its id is Stripe's). */
  stripeEvent: (eventId: string) => ({ PK: `STRIPE#${eventId}`, SK: "EVENT" }),
  /** An account's miners by name (GSI4, keys only: slot and heartbeat updates write no index). */
  minersByAccount: (accountId: string, name: string) => ({
    GSI4PK: `ACCOUNT#${accountId}#MINERS`,
    GSI4SK: name,
  }),
  /** Miners by status (GSI2), sharded; online miners sort by last heartbeat so the sweep finds the silent ones. */
  minersByStatus: (status: string, shard: number, sortKey: string) => ({
    GSI2PK: `MINERS#${status}#${shard}`,
    GSI2SK: sortKey,
  }),
  /** A miner's open doorbell socket on AWS (core/doorbell/store.ts), beside the miner: `ofMiner` is one Query. */
  minerConnection: (minerId: string, connectionId: string) => ({
    PK: `MINER#${minerId}`,
    SK: `CONN#${connectionId}`,
  }),
  /** The same socket by its id alone, which is all `$default` and `$disconnect` know: its miner and services. */
  connection: (connectionId: string) => ({ PK: `CONN#${connectionId}`, SK: "CONN" }),
  /** The sockets serving a service (one item per service), sharded by miner, oldest connection first. */
  doorbell: (service: string, shard: number, connectedAt: string, connectionId: string) => ({
    PK: `DOORBELL#${service}#${shard}`,
    SK: `${connectedAt}#${connectionId}`,
  }),
  /** A private pool (core/pools): name, owner, `acceptsPublic`, member count, version. */
  pool: (id: string) => ({ PK: `POOL#${id}`, SK: "POOL" }),
  /** "Is account X in pool P" is one GetItem on this key; the owner has one too (role `owner`). */
  poolMember: (poolId: string, accountId: string) => ({ PK: `POOL#${poolId}`, SK: `MEMBER#${accountId}` }),
  /** The pools an account owns or belongs to (GSI1 on membership items), oldest pool first by id. */
  poolsByAccount: (accountId: string, poolId: string) => ({
    GSI1PK: `ACCOUNT#${accountId}#POOLS`,
    GSI1SK: poolId,
  }),
  /** The pool's roster of miners (written with the miner's registration), for `accepts_public` fan-out. */
  poolMiner: (poolId: string, minerId: string) => ({ PK: `POOL#${poolId}`, SK: `MINER#${minerId}` }),
  /** Which service queues may be non-empty: a hint maintained from the stream (see core/jobs/queue-summary.ts). */
  queueSummary: () => ({ PK: "QUEUES", SK: "SUMMARY" }),
  /** An account's webhook endpoints sit in the account's partition (listed by `begins_with WHEP#`). */
  webhookEndpoint: (accountId: string, endpointId: string) => ({
    PK: `ACCOUNT#${accountId}`,
    SK: `WHEP#${endpointId}`,
  }),
  /** The account's default webhook secret (signs per-job `webhook_url` deliveries). */
  webhookSecret: (accountId: string) => ({ PK: `ACCOUNT#${accountId}`, SK: "WHSECRET" }),
  /**
   * One message to one webhook target (an endpoint id, or a job id for a job's `webhook_url`): its delivery log
   * entry, newest first by message id (`msg_<ulid of the event>`). The key makes a duplicate event one delivery.
   */
  webhookDelivery: (targetId: string, messageId: string) => ({ PK: `WHDLV#${targetId}`, SK: messageId }),
  /** When a job's last progress webhook went out (throttle). */
  webhookThrottle: (jobId: string) => ({ PK: `WHTHROTTLE#${jobId}`, SK: "THROTTLE" }),
  /** A settlement batch (core/settlement): status, leaf count, root, its anchoring transaction and block. */
  settlementBatch: (batchId: string) => ({ PK: `SETTLEBATCH#${batchId}`, SK: "BATCH" }),
  /** A batch being sealed: the receipts its sealer chose (deleted by the seal), so a crashed seal can be finished. */
  settlementSealing: (batchId: string) => ({ PK: `SETTLEBATCH#${batchId}`, SK: "SEALING" }),
  /** A sealed batch's leaves, sorted, in one item: what proofs are computed from. */
  settlementTree: (batchId: string) => ({ PK: `SETTLEBATCH#${batchId}`, SK: "TREE" }),
  /**
   * A job's receipt while no settlement batch has claimed it (GSI4, keys only, sparse: on the job's result item,
   * written by the completion's own transaction and removed by the claim), oldest first by issue time (epoch ms:
   * short, since the completion writes it on an item near 1 KB), sharded by job.
   */
  settlementUnbatched: (shard: number, issuedAtMs: number | "") => ({
    GSI4PK: `UNBATCHED#${shard}`,
    // 13 digits until the year 2286: sorts as text.
    GSI4SK: String(issuedAtMs),
  }),
  /** An artifact (core/artifacts): an upload, or a job's output. */
  artifact: (id: string) => ({ PK: `ARTIFACT#${id}`, SK: "ARTIFACT" }),
  /** An anchoring transaction -> its batch (the chain webhook names transactions). */
  settlementTx: (txHash: string) => ({ PK: `SETTLETX#${txHash}`, SK: "TX" }),
  /**
   * Batches with work for the settlement cron (GSI1): `sealing` (a seal to finish if its sealer died), `anchor`
   * (pending), `watch` (anchored or confirmed, not yet final).
   */
  settlementWork: (queue: "sealing" | "anchor" | "watch", at: string, batchId: string) => ({
    GSI1PK: `SETTLEMENT#${queue}`,
    GSI1SK: `${at}#${batchId}`,
  }),
  consumed: (consumer: string, eventId: string) => ({
    PK: `CONSUMED#${consumer}#${eventId}`,
    SK: "CONSUMED",
  }),
} as const;

export function seqKey(n: number): string {
  return String(n).padStart(10, "0");
}

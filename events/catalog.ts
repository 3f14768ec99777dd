import * as v from "valibot";

/**
 * The event catalog: one versioned valibot schema per detail-type. The outbox writes `data` in the same transaction
 * as the state change; the relay validates the envelope against this catalog before it reaches the bus, and every
 * consumer parses it again on the way in. It lists only what the coordinator emits (tests/docs.test.ts checks that
 * each type has an emitter).
 */
const jobRef = {
  job_id: v.string(),
  service: v.string(),
  status: v.string(),
  attempt: v.number(),
  /** The job's own `webhook_url`, when it has one: the webhook consumer delivers without reading the job. */
  webhook_url: v.optional(v.string()),
};

export const EVENT_SCHEMAS = {
  "account.created.v1": v.object({ account_id: v.string(), name: v.string(), kind: v.string() }),
  "account.updated.v1": v.object({
    account_id: v.string(),
    /** The account's own threshold, or null: back to the default (COORD_LOW_BALANCE_THRESHOLD). */
    low_balance_threshold: v.nullable(v.number()),
  }),
  "account.low_balance.v1": v.object({
    account_id: v.string(),
    available: v.number(),
    held: v.number(),
    threshold: v.number(),
  }),
  "api_key.created.v1": v.object({
    account_id: v.string(),
    key_id: v.string(),
    scopes: v.array(v.string()),
    expires_at: v.optional(v.string()),
  }),
  "api_key.revoked.v1": v.object({ account_id: v.string(), key_id: v.string() }),
  "api_key.delegated.v1": v.object({
    account_id: v.string(),
    key_id: v.string(),
    parent_key_id: v.string(),
    scopes: v.array(v.string()),
    expires_at: v.optional(v.string()),
  }),
  "api_key.rotated.v1": v.object({
    account_id: v.string(),
    key_id: v.string(),
    previous_key_id: v.string(),
    previous_expires_at: v.string(),
  }),
  "balance.adjusted.v1": v.object({ account_id: v.string(), amount: v.number(), reason: v.string() }),
  "payment.credited.v1": v.object({
    session_id: v.string(),
    account_id: v.string(),
    amount: v.number(),
    currency: v.string(),
    credits: v.number(),
    stripe_event_id: v.string(),
  }),
  "payout.requested.v1": v.object({ payout_id: v.string(), account_id: v.string(), amount: v.number() }),
  "payout.approved.v1": v.object({ payout_id: v.string(), account_id: v.string(), amount: v.number() }),
  "payout.rejected.v1": v.object({
    payout_id: v.string(),
    account_id: v.string(),
    amount: v.number(),
    reason: v.string(),
  }),
  "payment.refunded.v1": v.object({
    session_id: v.string(),
    account_id: v.string(),
    /** Credits taken back by this refund, and by all refunds of the payment so far. */
    credits: v.number(),
    refunded_credits: v.number(),
    stripe_event_id: v.string(),
  }),
  "payment.reconcile_failed.v1": v.object({
    session_id: v.string(),
    account_id: v.string(),
    expected: v.object({ amount: v.number(), currency: v.string(), account_id: v.string() }),
    received: v.object({
      amount: v.nullable(v.number()),
      currency: v.nullable(v.string()),
      account_id: v.nullable(v.string()),
    }),
    stripe_event_id: v.string(),
  }),
  "job.submitted.v1": v.object({
    ...jobRef,
    priority: v.number(),
    max_price: v.number(),
    /** When the queue TTL ends (the job timer's first due time). */
    queue_deadline: v.optional(v.string()),
    /** SHA-256 of the input's canonical JSON (RFC 8785), as the receipt names it. */
    input_sha256: v.optional(v.string()),
    /** The artifacts the input references, as measured when it was submitted (the receipt names them). */
    input_artifacts: v.optional(
      v.array(
        v.object({
          role: v.literal("input"),
          path: v.string(),
          artifact_id: v.string(),
          sha256: v.string(),
          bytes: v.number(),
          content_type: v.nullable(v.string()),
        }),
      ),
    ),
  }),
  "job.assigned.v1": v.object({
    ...jobRef,
    miner_id: v.string(),
    lease_expires_at: v.string(),
    /** When the execution timeout ends. */
    timeout_at: v.optional(v.string()),
  }),
  "job.started.v1": v.object({ ...jobRef, miner_id: v.string() }),
  "job.progress.v1": v.object({ ...jobRef, progress: v.number(), message: v.optional(v.string()) }),
  "job.requeued.v1": v.object({ ...jobRef, reason: v.string(), queue_deadline: v.optional(v.string()) }),
  "job.completed.v1": v.object({
    ...jobRef,
    miner_id: v.string(),
    units: v.number(),
    price: v.number(),
    receipt_id: v.optional(v.string()),
    /** SHA-256 of the receipt document's canonical JSON: the leaf settlement anchors. */
    receipt_sha256: v.optional(v.string()),
  }),
  "job.failed.v1": v.object({ ...jobRef, error_code: v.string(), error_message: v.optional(v.string()) }),
  "job.cancelled.v1": v.object({ ...jobRef, reason: v.optional(v.string()) }),
  "receipt.issued.v1": v.object({
    receipt_id: v.string(),
    job_id: v.string(),
    service: v.string(),
    miner_id: v.string(),
    amount: v.number(),
    /** SHA-256 of the receipt document's canonical JSON (RFC 8785): what settlement anchors. */
    receipt_sha256: v.string(),
  }),
  "settlement.anchored.v1": v.object({
    batch_id: v.string(),
    /** The batch's Merkle root (docs/settlement.md), 0x hex. */
    root: v.string(),
    leaves: v.number(),
    chain_id: v.number(),
    transaction_hash: v.string(),
    /** The batch's anchoring attempt (1 first; each re-anchor after a reorg adds one). */
    attempt: v.number(),
  }),
  "settlement.replaced.v1": v.object({
    batch_id: v.string(),
    root: v.string(),
    leaves: v.number(),
    chain_id: v.number(),
    /**
     * The new transaction: at the nonce of the one it replaces, or at a lower one when that one waited on a nonce
     * left free below it.
     */
    transaction_hash: v.string(),
    replaces: v.string(),
    nonce: v.number(),
    /** What the new transaction offers at most per gas, decimal wei. */
    max_fee_per_gas: v.string(),
    /** `stuck`: the node still held the old transaction unmined; `dropped`: the node no longer knew it. */
    reason: v.picklist(["stuck", "dropped"]),
  }),
  "settlement.confirmed.v1": v.object({
    batch_id: v.string(),
    root: v.string(),
    leaves: v.number(),
    chain_id: v.number(),
    transaction_hash: v.string(),
    block_number: v.number(),
    block_hash: v.string(),
    confirmations: v.number(),
  }),
  "settlement.reverted.v1": v.object({
    batch_id: v.string(),
    root: v.string(),
    leaves: v.number(),
    chain_id: v.number(),
    /** The transaction that no longer anchors the batch, and its block when it had been seen in one. */
    transaction_hash: v.string(),
    block_number: v.nullable(v.number()),
    reason: v.picklist(["reorged", "dropped", "failed"]),
  }),
  "job.refunded.v1": v.object({
    ...jobRef,
    amount: v.number(),
    refunded_total: v.number(),
    price: v.number(),
    from_miner: v.number(),
    from_fee: v.number(),
    reason: v.string(),
  }),
  "job.expired.v1": v.object({ ...jobRef }),
  "job.timed_out.v1": v.object({ ...jobRef }),
  "miner.registered.v1": v.object({
    miner_id: v.string(),
    account_id: v.string(),
    services: v.array(v.string()),
  }),
  "miner.offline.v1": v.object({ miner_id: v.string(), account_id: v.string() }),
  "miner.moderated.v1": v.object({
    miner_id: v.string(),
    account_id: v.string(),
    action: v.picklist(["drain", "ban", "unban"]),
  }),
  "pool.created.v1": v.object({
    pool_id: v.string(),
    owner_account_id: v.string(),
    name: v.string(),
    accepts_public: v.boolean(),
  }),
  "pool.updated.v1": v.object({ pool_id: v.string(), name: v.string(), accepts_public: v.boolean() }),
  "pool.member_added.v1": v.object({ pool_id: v.string(), account_id: v.string() }),
  "pool.member_removed.v1": v.object({ pool_id: v.string(), account_id: v.string(), reason: v.string() }),
  "webhook_endpoint.disabled.v1": v.object({
    account_id: v.string(),
    endpoint_id: v.string(),
    url: v.string(),
    reason: v.string(),
  }),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type EventData<T extends EventType> = v.InferOutput<(typeof EVENT_SCHEMAS)[T]>;

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

/**
 * One line per detail-type: what happened. docs/events.md is generated from this and the schemas
 * (`npx tsx scripts/gen-event-docs.ts`); a type without a line is documented as "(undocumented)".
 */
export const EVENT_DESCRIPTIONS: Partial<Record<EventType, string>> = {
  "account.created.v1": "An admin created an account.",
  "account.updated.v1": "An account changed its settings (its low-balance threshold).",
  "account.low_balance.v1":
    "The account's available balance fell below its low-balance threshold: once per crossing (it must rise to the threshold or above before the next).",
  "api_key.created.v1": "A root API key was minted for an account (the key itself never appears in events).",
  "api_key.revoked.v1": "An API key was revoked (its delegated keys stop working with it).",
  "api_key.delegated.v1": "A key holder minted a narrower key delegated from its own.",
  "api_key.rotated.v1":
    "A key was replaced by a new one; the previous key works until `previous_expires_at`.",
  "balance.adjusted.v1": "An admin credited (amount > 0) or debited an account through the ledger.",
  "payment.credited.v1":
    "A Stripe Checkout top-up was paid: the account was credited, once per session, in the transaction that recorded the Stripe event.",
  "payout.requested.v1":
    "A miner account asked to withdraw earnings: the amount moved from available to held.",
  "payout.approved.v1":
    "An operator approved a payout: the held amount left the miner's account for the payout clearing account.",
  "payout.rejected.v1": "An operator rejected a payout: the held amount is available again.",
  "payment.refunded.v1":
    "Stripe refunded (part of) a credited top-up: the credits it bought were taken back through the ledger, once per refunded amount; the balance may go below zero.",
  "payment.reconcile_failed.v1":
    "A paid Stripe session did not match what the coordinator recorded at checkout (amount, currency or account): nothing was credited; an operator must look.",
  "job.submitted.v1":
    "A job was accepted and queued (also when a client retries a failed job: attempt restarts).",
  "job.assigned.v1":
    "A miner claimed the job: it holds a lease until `lease_expires_at` (attempt = claim count).",
  "job.started.v1": "The miner holding the job reported that it started.",
  "job.progress.v1": "The miner reported progress (0..1). Webhooks send at most one per job per 500 ms.",
  "job.requeued.v1":
    "The job went back to the queue: a retryable failure or a lapsed lease with attempts left.",
  "job.completed.v1": "The job finished with output; `units` and `price` are what the client was charged.",
  "job.failed.v1": "The job failed for good (a non-retryable failure, or no attempts left).",
  "job.cancelled.v1":
    "The client cancelled the job, or an operator did (then with `reason`, and an `actor` in the envelope).",
  "receipt.issued.v1":
    "A completed job's signed receipt exists (written by the completion's own transaction; derived from its job.completed.v1, same correlation id).",
  "settlement.anchored.v1":
    "A sealed batch of receipts had its Merkle root sent on chain in a transaction (not yet confirmed).",
  "settlement.replaced.v1":
    "A batch's anchoring transaction waited unmined past `COORD_CHAIN_REPLACE_SECONDS` (its fee too low, or dropped from the node's pool): a new transaction at the same nonce, offering more per gas, replaces it. Whichever of them is mined anchors the batch.",
  "settlement.confirmed.v1":
    "A batch's anchoring transaction is `COORD_CHAIN_CONFIRMATIONS` blocks deep on the canonical chain, as the coordinator read it from the chain: its receipts' proofs are final unless a reorg reverts it.",
  "settlement.reverted.v1":
    "A batch's anchoring transaction left the canonical chain (`reorged`), failed, or was `dropped`: the batch is pending again and will be re-anchored in a new transaction.",
  "job.refunded.v1":
    "An operator refunded (part of) a completed job's charge to the client, taken back from the miner's earning and the platform fee in proportion.",
  "job.expired.v1": "The job waited in the queue past its `ttl_seconds` without being claimed.",
  "job.timed_out.v1": "The job ran past its `timeout_seconds`.",
  "miner.registered.v1": "A miner registered (or re-registered) the services it runs.",
  "miner.offline.v1": "A miner stopped heartbeating and was marked offline.",
  "miner.moderated.v1": "An operator drained, banned or unbanned a miner (admin API).",
  "pool.created.v1": "A miner account created a private pool (it owns the pool; its miners may join it).",
  "pool.updated.v1": "A pool's owner renamed it or changed whether its miners also take public jobs.",
  "pool.member_added.v1": "A pool's owner added a client account: its jobs may now target the pool.",
  "pool.member_removed.v1":
    "An account left a pool (`reason: left`) or its owner removed it (`removed`): new jobs may no longer target it.",
  "webhook_endpoint.disabled.v1":
    "A webhook endpoint was disabled after consecutive messages failed every delivery attempt.",
};

/** The envelope every event carries on the bus (EventBridge `detail`). */
export const EnvelopeSchema = v.object({
  id: v.string(),
  type: v.picklist(EVENT_TYPES),
  occurred_at: v.string(),
  account_id: v.optional(v.string()),
  subject: v.string(),
  correlation_id: v.optional(v.string()),
  /** Who caused the event (the authenticated account and key), when a caller did; absent for system actions. */
  actor: v.optional(v.object({ account_id: v.string(), key_id: v.string() })),
  /**
   * Order within the subject, when the subject is versioned: for job events the job's version after the
   * transition (1 = submitted). Delivery is at least once and not ordered; consumers that care order by `seq`.
   */
  seq: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  data: v.record(v.string(), v.unknown()),
});
export type Envelope = v.InferOutput<typeof EnvelopeSchema>;

export function isEventType(t: string): t is EventType {
  return t in EVENT_SCHEMAS;
}

/** Validates an envelope and its data against the catalog; throws with the offending paths. */
export function validateEnvelope(raw: unknown): Envelope {
  const env = v.parse(EnvelopeSchema, raw);
  v.parse(EVENT_SCHEMAS[env.type], env.data);
  return env;
}

export const EVENT_SOURCE = "coordinator";

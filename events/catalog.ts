import * as v from "valibot";

/**
 * The event catalog: one versioned valibot schema per detail-type. The outbox writes `data` in the same transaction
 * as the state change; the relay validates the envelope against this catalog before it reaches the bus, and every
 * consumer parses it again on the way in.
 */
const jobRef = {
  job_id: v.string(),
  service: v.string(),
  status: v.string(),
  attempt: v.number(),
};

export const EVENT_SCHEMAS = {
  "account.created.v1": v.object({ account_id: v.string(), name: v.string(), kind: v.string() }),
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
  "job.submitted.v1": v.object({ ...jobRef, priority: v.number(), max_price: v.number() }),
  "job.assigned.v1": v.object({ ...jobRef, miner_id: v.string(), lease_expires_at: v.string() }),
  "job.started.v1": v.object({ ...jobRef, miner_id: v.string() }),
  "job.progress.v1": v.object({ ...jobRef, progress: v.number(), message: v.optional(v.string()) }),
  "job.requeued.v1": v.object({ ...jobRef, reason: v.string() }),
  "job.completed.v1": v.object({ ...jobRef, miner_id: v.string(), units: v.number(), price: v.number() }),
  "job.failed.v1": v.object({ ...jobRef, error_code: v.string(), error_message: v.optional(v.string()) }),
  "job.cancelled.v1": v.object({ ...jobRef }),
  "job.expired.v1": v.object({ ...jobRef }),
  "job.timed_out.v1": v.object({ ...jobRef }),
  "miner.registered.v1": v.object({
    miner_id: v.string(),
    account_id: v.string(),
    services: v.array(v.string()),
  }),
  "miner.offline.v1": v.object({ miner_id: v.string(), account_id: v.string() }),
  "receipt.issued.v1": v.object({ job_id: v.string(), receipt_id: v.string() }),
  "payment.credited.v1": v.object({ account_id: v.string(), amount: v.number(), payment_id: v.string() }),
  "settlement.confirmed.v1": v.object({ batch_id: v.string(), tx_hash: v.string() }),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type EventData<T extends EventType> = v.InferOutput<(typeof EVENT_SCHEMAS)[T]>;

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

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

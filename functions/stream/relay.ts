import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { lowBalanceEvents } from "../../core/accounts/low-balance.ts";
import { derivedId } from "../../core/ids.ts";
import { inPlaceEvents } from "../../core/jobs/in-place.ts";
import { type Envelope, validateEnvelope } from "../../events/catalog.ts";
import type { Publisher } from "../../events/publisher.ts";
import { log } from "../log.ts";
import { changesOf, type StreamChange } from "./image.ts";

/** The subject's sequence from an outbox item's sort key (`EVT#0000000005` -> 5); none for time-keyed events. */
export function seqOf(sk: unknown): number | undefined {
  const m = typeof sk === "string" ? /^EVT#(\d{10})$/.exec(sk) : null;
  const n = m ? Number(m[1]) : 0;
  return n > 0 ? n : undefined;
}

/** Builds the bus envelope from an outbox item's stream image. */
export function envelopeFromItem(item: Record<string, unknown>): Envelope {
  return validateEnvelope({
    id: item.eventId,
    type: item.type,
    occurred_at: item.occurredAt,
    subject: item.subject,
    account_id: item.accountId,
    correlation_id: item.correlationId,
    actor: item.actor,
    seq: seqOf(item.SK),
    data: item.data,
  });
}

/**
 * The events a batch of stream records carries, in stream order: every outbox item INSERT (entity = "event") that is
 * not already published, every event an in-place transition recorded on its item (core/jobs/in-place.ts), and an
 * account's low-balance crossing (core/accounts/low-balance.ts).
 */
export function eventsOf(changes: StreamChange[]): { seq: string; env: Envelope }[] {
  const events: { seq: string; env: Envelope }[] = [];
  for (const change of changes) {
    const item = change.newImage;
    if (change.eventName === "MODIFY" && item?.entity === "job") {
      for (const e of inPlaceEvents([change])) {
        events.push({
          seq: change.seq,
          env: validateEnvelope({
            id: e.id,
            type: e.type,
            occurred_at: e.at?.toISOString(),
            subject: e.subject,
            account_id: e.accountId,
            correlation_id: e.correlationId,
            seq: e.seq,
            data: e.data,
          }),
        });
      }
      continue;
    }
    if (change.eventName === "MODIFY" && item?.entity === "account") {
      for (const e of lowBalanceEvents([change])) {
        events.push({
          seq: change.seq,
          env: validateEnvelope({
            id: e.id,
            type: "account.low_balance.v1",
            occurred_at: e.at.toISOString(),
            subject: e.accountId,
            account_id: e.accountId,
            data: e.data,
          }),
        });
      }
      continue;
    }
    if (change.eventName !== "INSERT" || item?.entity !== "event" || item.relayed === true) continue;
    try {
      const env = envelopeFromItem(item);
      events.push({ seq: change.seq, env });
      const issued = receiptIssued(env);
      if (issued) events.push({ seq: change.seq, env: issued });
    } catch (err) {
      log.error("outbox item fails the event catalog; skipped", {
        err: String(err),
        eventId: item.eventId,
      });
    }
  }
  return events;
}

/**
 * A completion's receipt is in its own transaction (the result item), and its `receipt.issued.v1` is derived here
 * from the completion's event rather than written as a second outbox item: no extra item on the hot path, and the
 * same id however often the batch is relayed.
 */
function receiptIssued(env: Envelope): Envelope | undefined {
  if (env.type !== "job.completed.v1") return undefined;
  const data = env.data as {
    job_id: string;
    service: string;
    miner_id: string;
    price: number;
    receipt_id?: string;
    receipt_sha256?: string;
  };
  if (!data.receipt_id || !data.receipt_sha256) return undefined;
  return validateEnvelope({
    id: derivedId("evt", Date.parse(env.occurred_at), `${data.receipt_id}#issued`),
    type: "receipt.issued.v1",
    occurred_at: env.occurred_at,
    subject: data.receipt_id,
    account_id: env.account_id,
    correlation_id: env.correlation_id,
    data: {
      receipt_id: data.receipt_id,
      job_id: data.job_id,
      service: data.service,
      miner_id: data.miner_id,
      amount: data.price,
      receipt_sha256: data.receipt_sha256,
    },
  });
}

export interface RelayOptions {
  /** Publish rounds per invocation: the first, then retries of only the entries that failed. Default 4. */
  attempts?: number;
  /** Back-off before the first retry (doubled each round, with jitter). Default 100 ms. */
  baseDelayMs?: number;
}

/**
 * Publishes `events`, retrying only the entries that failed (PutEvents answers per entry), with exponential
 * back-off and jitter. A publisher that throws fails the whole round. Returns what still failed after the last
 * round.
 */
export async function publishWithRetries(
  publisher: Publisher,
  events: Envelope[],
  opts: RelayOptions = {},
): Promise<Envelope[]> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 100;
  let pending = events;
  for (let round = 1; pending.length > 0; round++) {
    try {
      pending = (await publisher.publish(pending)).failed;
    } catch (err) {
      log.warn("publisher threw; every entry of the round counts as failed", { err: String(err) });
    }
    if (pending.length === 0 || round >= attempts) break;
    const delay = base * 2 ** (round - 1);
    await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay));
  }
  return pending;
}

/**
 * The outbox relay: every event of the batch (`eventsOf`) becomes one bus event.
 * - Events go out in stream order, in PutEvents batches (the publisher splits by 10 entries / 256 KB); only the
 *   entries that failed are retried, a few rounds with back-off, within the invocation.
 * - Whatever still failed is reported as a batch item failure from the first failed record on: the stream keeps
 *   those records and retries them (and everything after, keeping the shard's order). Nothing is acknowledged
 *   before it is on the bus, so a crash or a bus outage loses nothing; already-published events after the failed
 *   one are published again, which consumers tolerate (at least once, idempotent by event id).
 * - Order: the bus and standard queues do not keep order, so consumers must not assume it; job events carry `seq`
 *   (the job's version) for those that care (docs/events.md).
 * - An item whose envelope fails the catalog is a bug: logged and skipped rather than blocking the shard (it stays
 *   in the table as history).
 */
export function makeRelayHandler(publisher: Publisher, opts: RelayOptions = {}) {
  return (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> =>
    relayChanges(publisher, changesOf(event), opts);
}

/** The relay over already-parsed stream records (the stream handler parses each record once for all its parts). */
export async function relayChanges(
  publisher: Publisher,
  changes: StreamChange[],
  opts: RelayOptions = {},
): Promise<DynamoDBBatchResponse> {
  return relayEvents(publisher, eventsOf(changes), opts);
}

/** Publishes a batch's events (`eventsOf`); what still failed is reported from its stream record on. */
export async function relayEvents(
  publisher: Publisher,
  pending: { seq: string; env: Envelope }[],
  opts: RelayOptions = {},
): Promise<DynamoDBBatchResponse> {
  if (pending.length === 0) return { batchItemFailures: [] };
  const failed = await publishWithRetries(
    publisher,
    pending.map((p) => p.env),
    opts,
  );
  if (failed.length === 0) return { batchItemFailures: [] };
  const failedIds = new Set(failed.map((f) => f.id));
  const first = pending.find((p) => failedIds.has(p.env.id)) ?? pending[0];
  log.warn("relay publish failed; the stream will retry from the first failed record", {
    failed: failed.length,
    first_event_id: first?.env.id,
  });
  return { batchItemFailures: first ? [{ itemIdentifier: first.seq }] : [] };
}

import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { type Envelope, validateEnvelope } from "../../events/catalog.ts";
import type { Publisher } from "../../events/publisher.ts";
import { log } from "../log.ts";
import { imageOf } from "./image.ts";

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
    data: item.data,
  });
}

/**
 * The outbox relay: every INSERT of an outbox item (entity = "event") becomes one bus event. Failed publishes are
 * reported as batch item failures from the first failed record on, so the stream retries them (and everything
 * after, keeping order); already-published events may be published again, which consumers tolerate (at least once).
 * An item whose envelope fails the catalog is a bug: it is logged and skipped rather than blocking the shard.
 */
export function makeRelayHandler(publisher: Publisher) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const pending: { seq: string; env: Envelope }[] = [];
    for (const record of event.Records) {
      if (record.eventName !== "INSERT" || !record.dynamodb?.NewImage) continue;
      const item = imageOf(record.dynamodb.NewImage) ?? {};
      if (item.entity !== "event") continue;
      try {
        pending.push({ seq: record.dynamodb.SequenceNumber ?? "", env: envelopeFromItem(item) });
      } catch (err) {
        log.error("outbox item fails the event catalog; skipped", {
          err: String(err),
          eventId: item.eventId,
        });
      }
    }
    if (pending.length === 0) return { batchItemFailures: [] };
    const { failed } = await publisher.publish(pending.map((p) => p.env));
    if (failed.length === 0) return { batchItemFailures: [] };
    const failedIds = new Set(failed.map((f) => f.id));
    const first = pending.find((p) => failedIds.has(p.env.id));
    log.warn("relay publish failed; stream will retry", { failed: failed.length });
    return { batchItemFailures: first ? [{ itemIdentifier: first.seq }] : [] };
  };
}

import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { type Envelope, validateEnvelope } from "../../events/catalog.ts";
import type { BusEvent } from "../../events/publisher.ts";

/** Parses an SQS record carrying an EventBridge event and validates its envelope against the catalog. */
export function envelopeOf(record: SQSRecord): Envelope {
  const busEvent = JSON.parse(record.body) as BusEvent;
  return validateEnvelope(busEvent.detail);
}

/**
 * A queue consumer with partial batch responses: each record is handled on its own and only the failed ones are
 * reported, so only they are redelivered (and, past maxReceiveCount, land in the DLQ). Handlers must be idempotent:
 * delivery is at least once.
 */
export function makeConsumer(handle: (event: Envelope, record: SQSRecord) => Promise<void>) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      (record: SQSRecord) => handle(envelopeOf(record), record),
      processor,
      {
        throwOnFullBatchFailure: false,
      },
    );
  };
}

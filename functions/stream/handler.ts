import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { markReady, servicesBecomingReady } from "../../core/jobs/queue-summary.ts";
import { countEvents } from "../../core/metrics/metrics.ts";
import { EventBridgePublisher, type Publisher } from "../../events/publisher.ts";
import { changesOf } from "./image.ts";
import { relayChanges } from "./relay.ts";

/**
 * The table's one stream consumer: counts events per minute (admin stats), keeps the queue summary (which service
 * queues have claimable jobs) and relays outbox items to the bus. A retried batch re-marks (harmless) and recounts
 * (the counters are approximate by design).
 */
export function makeStreamHandler(publisher: Publisher) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const changes = changesOf(event);
    await countEvents(
      changes
        .filter((i) => i.eventName === "INSERT" && i.newImage?.entity === "event")
        .map((i) => ({ type: String(i.newImage?.type), occurredAt: String(i.newImage?.occurredAt) })),
    );
    await markReady(servicesBecomingReady(changes));
    return relayChanges(publisher, changes);
  };
}

export const handler = makeStreamHandler(new EventBridgePublisher(process.env.COORD_BUS_NAME ?? "default"));

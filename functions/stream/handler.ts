import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { markReady, servicesBecomingReady } from "../../core/jobs/queue-summary.ts";
import { EventBridgePublisher, type Publisher } from "../../events/publisher.ts";
import { imageOf } from "./image.ts";
import { makeRelayHandler } from "./relay.ts";

/**
 * The table's one stream consumer: keeps the queue summary (which service queues have claimable jobs) and relays
 * outbox items to the bus. Marking first means a retried batch re-marks, which is harmless.
 */
export function makeStreamHandler(publisher: Publisher) {
  const relay = makeRelayHandler(publisher);
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    await markReady(
      servicesBecomingReady(
        event.Records.map((r) => ({
          oldImage: imageOf(r.dynamodb?.OldImage),
          newImage: imageOf(r.dynamodb?.NewImage),
        })),
      ),
    );
    return relay(event);
  };
}

export const handler = makeStreamHandler(new EventBridgePublisher(process.env.COORD_BUS_NAME ?? "default"));

import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { setConnections } from "../../core/doorbell/connections.ts";
import { ringForChanges } from "../../core/doorbell/ring.ts";
import { markReady, queuesBecomingReady } from "../../core/jobs/queue-summary.ts";
import { countEvents } from "../../core/metrics/metrics.ts";
import { EventBridgePublisher, type Publisher } from "../../events/publisher.ts";
import { log } from "../log.ts";
import { AwsConnections } from "../ws/aws-connections.ts";
import { changesOf } from "./image.ts";
import { observeEvents } from "./observe.ts";
import { eventsOf, relayEvents } from "./relay.ts";

/**
 * The table's one stream consumer: finds the batch's events (outbox items, and events in-place transitions recorded on
 * job items), counts them per minute (admin stats), keeps the queue summary (which queue shards have claimable jobs)
 * rings the doorbell of connected miners for newly ready jobs and pushes stop orders (core/doorbell/ring.ts), and
 * relays the events to the bus. A retried batch re-marks (harmless) and recounts (the counters are approximate by
 * design).
 */
export function makeStreamHandler(publisher: Publisher) {
  return async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
    const changes = changesOf(event);
    const events = eventsOf(changes);
    await countEvents(events.map(({ env }) => ({ type: env.type, occurredAt: env.occurred_at })));
    observeEvents(events);
    await markReady(queuesBecomingReady(changes));
    // Rings and pushed stops are hints (the ready queue and the heartbeat are the truth): never fail the batch.
    await ringForChanges(changes).catch((err) => log.warn("doorbell ring failed", { err: String(err) }));
    return relayEvents(publisher, events);
  };
}

export const handler = makeStreamHandler(new EventBridgePublisher(process.env.COORD_BUS_NAME ?? "default"));

// On AWS the rings go out through API Gateway to sockets held by the WebSocket API (stacks/doorbell.ts); without the
// endpoint no registry is set and nothing rings (miners fall back to long-polls).
if (process.env.COORD_DOORBELL_ENDPOINT)
  setConnections(new AwsConnections(process.env.COORD_DOORBELL_ENDPOINT));

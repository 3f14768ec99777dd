import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { type Envelope, EVENT_SOURCE } from "./catalog.ts";

/** What the outbox relay needs from a bus. EventBridge on AWS, the local bus offline. */
export interface Publisher {
  /** Publishes every envelope; returns those that could not be published (to be retried by the caller). */
  publish(events: Envelope[]): Promise<{ failed: Envelope[] }>;
}

/** The EventBridge event as a rule target (SQS) receives it. */
export interface BusEvent {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Envelope;
}

export function toEntry(env: Envelope, busName: string): PutEventsRequestEntry {
  return {
    EventBusName: busName,
    Source: EVENT_SOURCE,
    DetailType: env.type,
    Time: new Date(env.occurred_at),
    Detail: JSON.stringify(env),
    Resources: [],
  };
}

/** PutEvents takes at most 10 entries; failed entries come back per index and are returned for retry. */
export class EventBridgePublisher implements Publisher {
  constructor(
    private readonly busName: string,
    private readonly client = new EventBridgeClient({}),
  ) {}

  async publish(events: Envelope[]): Promise<{ failed: Envelope[] }> {
    const failed: Envelope[] = [];
    for (let i = 0; i < events.length; i += 10) {
      const chunk = events.slice(i, i + 10);
      try {
        const out = await this.client.send(
          new PutEventsCommand({ Entries: chunk.map((e) => toEntry(e, this.busName)) }),
        );
        out.Entries?.forEach((entry, idx) => {
          const ev = chunk[idx];
          if (entry.ErrorCode && ev) failed.push(ev);
        });
      } catch {
        failed.push(...chunk);
      }
    }
    return { failed };
  }
}

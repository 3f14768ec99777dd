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

/**
 * The event exactly as an EventBridge rule hands it to an SQS target. The local bus sends this; tests use it to
 * play the bus (duplicates, poison messages).
 */
export function toBusEvent(env: Envelope, region = "us-east-1"): BusEvent {
  return {
    version: "0",
    id: env.id,
    "detail-type": env.type,
    source: EVENT_SOURCE,
    account: "000000000000",
    time: env.occurred_at,
    region,
    resources: [],
    detail: env,
  };
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

/** PutEvents limits: 10 entries and 256 KB per request (entry size as EventBridge counts it, roughly). */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;

function entrySize(entry: PutEventsRequestEntry): number {
  return (
    Buffer.byteLength(entry.Detail ?? "") +
    Buffer.byteLength(entry.DetailType ?? "") +
    Buffer.byteLength(entry.Source ?? "") +
    (entry.Time ? 14 : 0)
  );
}

/** Splits events into PutEvents requests that respect both limits, keeping their order. */
export function chunkForPutEvents(events: Envelope[], busName: string) {
  const chunks: { events: Envelope[]; entries: PutEventsRequestEntry[] }[] = [];
  let current: { events: Envelope[]; entries: PutEventsRequestEntry[]; bytes: number } | undefined;
  for (const env of events) {
    const entry = toEntry(env, busName);
    const size = entrySize(entry);
    if (!current || current.entries.length >= MAX_ENTRIES || current.bytes + size > MAX_REQUEST_BYTES) {
      current = { events: [], entries: [], bytes: 0 };
      chunks.push(current);
    }
    current.events.push(env);
    current.entries.push(entry);
    current.bytes += size;
  }
  return chunks.map(({ events: e, entries }) => ({ events: e, entries }));
}

/**
 * Publishes to EventBridge in order-preserving PutEvents requests; entries that fail (per-entry error codes, or a
 * request that throws) come back for the caller to retry.
 */
export class EventBridgePublisher implements Publisher {
  constructor(
    private readonly busName: string,
    private readonly client = new EventBridgeClient({}),
  ) {}

  async publish(events: Envelope[]): Promise<{ failed: Envelope[] }> {
    const failed: Envelope[] = [];
    for (const chunk of chunkForPutEvents(events, this.busName)) {
      try {
        const out = await this.client.send(new PutEventsCommand({ Entries: chunk.entries }));
        out.Entries?.forEach((entry, idx) => {
          const ev = chunk.events[idx];
          if (entry.ErrorCode && ev) failed.push(ev);
        });
      } catch {
        failed.push(...chunk.events);
      }
    }
    return { failed };
  }
}

import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { afterAll, describe, expect, it } from "vitest";
import type { Envelope } from "../events/catalog.ts";
import { chunkForPutEvents, type Publisher, toBusEvent } from "../events/publisher.ts";
import { sqs as sqsClient } from "../functions/sqs.ts";
import { envelopeFromItem, makeRelayHandler } from "../functions/stream/relay.ts";
import { LocalBus } from "../local/bus.ts";
import { verifyWebhook } from "../sdk/webhooks.ts";
import { api, eventually, fundedClient, queryPk, stack, submitEcho } from "./fixture.ts";
import { type Receiver, startReceiver } from "./webhooks-receiver.ts";

const sqs = sqsClient();
const receivers: Receiver[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const region = () => `ev-${Math.random().toString(36).slice(2, 10)}`;

function record(item: Record<string, unknown>, seq: string): DynamoDBRecord {
  return {
    eventName: "INSERT",
    dynamodb: { NewImage: marshall(item, { removeUndefinedValues: true }) as never, SequenceNumber: seq },
  };
}

function fakeItem(n: number): Record<string, unknown> {
  return {
    PK: `ACCOUNT#acct_relay${n}`,
    SK: `EVT#2030-01-01T00:00:0${n}.000Z#evt_${n}`,
    entity: "event",
    eventId: `evt_relay_${n}_${Math.random().toString(36).slice(2)}`,
    type: "account.created.v1",
    subject: `acct_relay${n}`,
    occurredAt: new Date().toISOString(),
    data: { account_id: `acct_relay${n}`, name: "r", kind: "client" },
  };
}

/** A bus message; the poison test sends an envelope the catalog does not know. */
function busMessage(env: Envelope | Record<string, unknown>): string {
  return JSON.stringify(toBusEvent(env as Envelope));
}

describe("the outbox relay", () => {
  it("retries only the entries that failed, and acknowledges the batch once they got through", async () => {
    const items = [1, 2, 3].map(fakeItem);
    const calls: string[][] = [];
    const flaky: Publisher = {
      async publish(events) {
        calls.push(events.map((e) => e.id));
        return { failed: calls.length === 1 ? events.filter((e) => e.id === items[1]?.eventId) : [] };
      },
    };
    const relay = makeRelayHandler(flaky, { baseDelayMs: 1 });
    const out = await relay({
      Records: items.map((i, n) => record(i, String(n + 1))),
    } as DynamoDBStreamEvent);
    expect(out.batchItemFailures).toEqual([]);
    expect(calls).toEqual([items.map((i) => i.eventId), [items[1]?.eventId]]);
  });

  it("reports the first record it could not publish, so the stream retries from there", async () => {
    const items = [1, 2, 3].map(fakeItem);
    let rounds = 0;
    const stuck: Publisher = {
      async publish(events) {
        rounds++;
        return { failed: events.filter((e) => e.id !== items[0]?.eventId) };
      },
    };
    const out = await makeRelayHandler(stuck, { attempts: 3, baseDelayMs: 1 })({
      Records: items.map((i, n) => record(i, String(n + 1))),
    } as DynamoDBStreamEvent);
    expect(rounds).toBe(3);
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: "2" }]);
  });

  it("splits PutEvents requests at 10 entries and 256 KB, in order", () => {
    const small = Array.from({ length: 23 }, (_, i) => envelopeFromItem(fakeItem(i % 9)));
    expect(chunkForPutEvents(small, "bus").map((c) => c.entries.length)).toEqual([10, 10, 3]);
    const big = Array.from({ length: 3 }, (_, i) => ({
      ...envelopeFromItem(fakeItem(i)),
      data: { blob: "x".repeat(100_000) },
    }));
    const chunks = chunkForPutEvents(big, "bus");
    expect(chunks.map((c) => c.entries.length)).toEqual([2, 1]);
    expect(chunks.flatMap((c) => c.events.map((e) => e.id))).toEqual(big.map((e) => e.id));
  });

  it("a relay crash after the table write loses no event: the failed batch is kept, and its retry delivers once", async () => {
    const client = await fundedClient();
    const rx = await startReceiver();
    receivers.push(rx);
    const ep = await api<{ id: string; secret: string }>("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: rx.url, event_types: ["job.submitted.v1"] },
    });
    const sub = await submitEcho(client, { constraints: { regions: [region()] } });
    const item = (await queryPk(`JOB#${sub.body.id}`)).find((i) => i.type === "job.submitted.v1");
    if (!item) throw new Error("no outbox item");
    expect(envelopeFromItem(item).seq).toBe(1);

    // The bus is down (the publisher throws): the relay acknowledges nothing.
    const down: Publisher = {
      publish: async () => {
        throw new Error("EventBridge unavailable");
      },
    };
    const batch = { Records: [record(item, "100"), record(fakeItem(1), "101")] } as DynamoDBStreamEvent;
    const crashed = await makeRelayHandler(down, { attempts: 2, baseDelayMs: 1 })(batch);
    expect(crashed.batchItemFailures).toEqual([{ itemIdentifier: "100" }]);

    // The stream hands the same records again; with the bus back they go out, and the event arrives once (the real
    // stream relayed it too: the delivery is keyed by event id).
    const bus = new LocalBus(sqs, async (name) => stack.queueUrls[name]?.url as string);
    expect(await makeRelayHandler(bus)(batch)).toEqual({ batchItemFailures: [] });
    const got = await eventually(async () => rx.ofType("job.submitted.v1")[0], 10_000);
    await sleep(1500);
    expect(rx.ofType("job.submitted.v1")).toHaveLength(1);
    const event = verifyWebhook(ep.body.secret, got.headers as never, got.body);
    expect(event).toMatchObject({
      subject: sub.body.id,
      seq: 1,
      correlation_id: sub.headers.get("x-request-id"),
    });
  });
});

describe("dead letters", () => {
  interface Peek {
    messages: { message_id: string; error: string | null; event: { id: string; subject: string } | null }[];
  }
  const peek = async () =>
    (await api<Peek>("GET", "/v1/admin/dlq/webhooks?limit=100", { key: stack.adminKey })).body.messages;

  it("a poison event lands in the DLQ at once, peeking does not consume it, and the redrive endpoint replays it", async () => {
    const marker = `poison-${Math.random().toString(36).slice(2)}`;
    // A job.completed.v1 whose data breaks the catalog: no retry can fix it.
    const poison = {
      id: `evt_${marker}`,
      type: "job.completed.v1",
      occurred_at: new Date().toISOString(),
      subject: marker,
      account_id: "acct_none",
      data: { job_id: marker, units: "many" },
    };
    await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queueUrls.webhooks?.url, MessageBody: busMessage(poison) }),
    );
    const dead = await eventually(
      async () => (await peek()).find((m) => m.event?.subject === marker),
      10_000,
    );
    expect(dead.error).toMatch(/ValiError/);
    // Peeked, not consumed: it is still there.
    expect((await peek()).some((m) => m.message_id === dead.message_id)).toBe(true);

    // A good event that died during an outage, to show a redrive delivering.
    const client = await fundedClient();
    const rx = await startReceiver();
    receivers.push(rx);
    await api("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: rx.url, event_types: ["job.expired.v1"] },
    });
    const good: Envelope = {
      id: `evt_${marker}_good`,
      type: "job.expired.v1",
      occurred_at: new Date().toISOString(),
      subject: `job_${marker}`,
      account_id: client.id,
      data: { job_id: `job_${marker}`, service: "echo", status: "expired", attempt: 0 },
    };
    await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queueUrls.webhooks?.dlqUrl, MessageBody: busMessage(good) }),
    );
    const goodDead = await eventually(
      async () => (await peek()).find((m) => m.event?.id === good.id),
      10_000,
    );
    expect(rx.received).toHaveLength(0);

    const overview = await api<{ items: { queue: string; dlq: { messages: number } }[] }>(
      "GET",
      "/v1/admin/dlq",
      {
        key: stack.adminKey,
      },
    );
    expect(overview.body.items.find((q) => q.queue === "webhooks")?.dlq.messages).toBeGreaterThanOrEqual(2);

    const redrive = await api<{ moved: number }>("POST", "/v1/admin/dlq/webhooks/redrive", {
      key: stack.adminKey,
      body: { message_ids: [dead.message_id, goodDead.message_id] },
    });
    expect(redrive.status).toBe(200);
    expect(redrive.body.moved).toBe(2);
    // The good one is delivered...
    const got = await eventually(async () => rx.received[0], 10_000);
    expect(JSON.parse(got.body)).toMatchObject({ type: "job.expired.v1", id: good.id });
    // ...and the poison one was replayed through the consumer, which dead-lettered it again (a new message).
    const again = await eventually(
      async () => (await peek()).find((m) => m.event?.subject === marker && m.message_id !== dead.message_id),
      10_000,
    );
    expect(again.error).toMatch(/ValiError/);
    expect((await peek()).some((m) => m.event?.id === good.id)).toBe(false);
  });

  it("the DLQ routes are for admin keys, and name only known queues", async () => {
    const client = await fundedClient();
    expect((await api("GET", "/v1/admin/dlq/webhooks", { key: client.key })).status).toBe(403);
    expect((await api("POST", "/v1/admin/dlq/webhooks/redrive", { key: client.key })).status).toBe(403);
    expect((await api("GET", "/v1/admin/dlq/nope", { key: stack.adminKey })).status).toBe(404);
    const bad = await api<{ errors: { path: string }[] }>("GET", "/v1/admin/dlq/webhooks?limit=1000", {
      key: stack.adminKey,
    });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0]?.path).toBe("query.limit");
  });
});

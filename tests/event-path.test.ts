import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { type Envelope, EVENT_SCHEMAS } from "../events/catalog.ts";
import { toBusEvent } from "../events/publisher.ts";
import { makeConsumer } from "../functions/queues/consumer.ts";
import { sqs as sqsClient } from "../functions/sqs.ts";
import { QueuePoller } from "../local/queue-poller.ts";
import { api, createAccount, eventually, queryPk, stack } from "./fixture.ts";

const sqs = sqsClient();

function busMessage(env: Envelope): string {
  return JSON.stringify(toBusEvent(env));
}

function envelope(subject: string): Envelope {
  return {
    id: `evt_${subject}_${Math.random().toString(36).slice(2)}`,
    type: "account.created.v1",
    occurred_at: new Date().toISOString(),
    subject,
    data: { account_id: subject, name: subject, kind: "client" },
  };
}

async function scratchQueue(name: string, maxReceiveCount: number) {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes?.QueueArn;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: "1",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  return { url: q.QueueUrl as string, dlqUrl: dlq.QueueUrl as string };
}

describe("the event path", () => {
  it("an outbox event written in a transaction reaches its queue consumer exactly as its schema says", async () => {
    const name = `acme-${Date.now()}`;
    const res = await api<{ id: string }>("POST", "/v1/admin/accounts", {
      key: stack.adminKey,
      body: { name, kind: "client" },
    });
    expect(res.status).toBe(201);
    const day = new Date().toISOString().slice(0, 10);
    // The audit consumer (queue `audit`) writes what it received; find the entry for this account.
    const entry = await eventually(async () =>
      (await queryPk(`AUDIT#${day}`)).find(
        (i) => i.subject === res.body.id && i.type === "account.created.v1",
      ),
    );
    expect(v.parse(EVENT_SCHEMAS["account.created.v1"], entry.data)).toEqual({
      account_id: res.body.id,
      name,
      kind: "client",
    });
    // The request id travels as the correlation id from the HTTP request into the event.
    expect(entry.correlationId).toBe(res.headers.get("x-request-id"));
    // The outbox item itself stays beside the account as its event history.
    const history = await queryPk(`ACCOUNT#${res.body.id}`);
    expect(history.filter((i) => i.entity === "event").map((i) => i.type)).toEqual(["account.created.v1"]);
  });

  it("a duplicate delivery of an event leaves one audit entry", async () => {
    const { id } = await createAccount("client");
    const day = new Date().toISOString().slice(0, 10);
    const entry = await eventually(async () =>
      (await queryPk(`AUDIT#${day}`)).find((i) => i.subject === id && i.type === "account.created.v1"),
    );
    const env: Envelope = {
      id: entry.eventId,
      type: entry.type,
      occurred_at: entry.occurredAt,
      subject: id,
      account_id: id,
      data: entry.data,
    };
    await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queueUrls.audit?.url, MessageBody: busMessage(env) }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const entries = (await queryPk(`AUDIT#${day}`)).filter((i) => i.eventId === entry.eventId);
    expect(entries).toHaveLength(1);
  });

  it("a consumer that fails one record of a batch gets only that record redelivered, until the DLQ takes it", async () => {
    const { url, dlqUrl } = await scratchQueue(`scratch-${Date.now()}`, 3);
    const seen = new Map<string, number>();
    const handler = makeConsumer(async (event) => {
      seen.set(event.subject, (seen.get(event.subject) ?? 0) + 1);
      if (event.subject === "poison") throw new Error("cannot handle poison");
    });
    for (const subject of ["good-1", "poison", "good-2"]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: busMessage(envelope(subject)) }));
    }
    const poller = new QueuePoller(sqs, url, "arn:scratch", handler, { batchSize: 10, waitSeconds: 1 });
    poller.start();
    try {
      const dead = await eventually(
        async () =>
          (await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }))).Messages?.[0],
        20_000,
      );
      expect(JSON.parse(dead.Body ?? "{}").detail.subject).toBe("poison");
    } finally {
      await poller.stop();
    }
    expect(seen.get("good-1")).toBe(1);
    expect(seen.get("good-2")).toBe(1);
    expect(seen.get("poison")).toBe(3);
  });
});

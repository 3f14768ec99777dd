import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { DeliveryTask, TaskQueue } from "../../core/webhooks/deliveries.ts";
import { log } from "../log.ts";
import { queueUrl, sqs } from "../sqs.ts";

/** SQS's longest message delay; longer waits are chained (the consumer re-sends until the task is due). */
export const MAX_DELAY_SECONDS = 900;

/** Delivery tasks go to the `webhook-retries` queue, delayed until due (at most 900 s per hop). */
export const sqsTaskQueue: TaskQueue = {
  async send(task: DeliveryTask): Promise<void> {
    const delay = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil((task.due_at - Date.now()) / 1000)));
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: await queueUrl("webhook-retries"),
        MessageBody: JSON.stringify(task),
        DelaySeconds: delay,
      }),
    );
  },
};

/** A message no retry can fix (it does not parse, or fails the catalog): it goes straight to the DLQ. */
export class PoisonMessage extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PoisonMessage";
  }
}

/** Message attributes a dead-lettered message carries (the DLQ admin routes show them, and drop them on redrive). */
export const DLQ_ATTRIBUTES = { error: "coord-error", source: "coord-source-queue", at: "coord-dead-at" };

/**
 * Moves a poison record to its queue's DLQ at once (rather than after maxReceiveCount wasted receives), with the
 * reason as message attributes. Returns false if that fails: the record is then reported as failed and takes the
 * queue's own redrive path to the DLQ.
 */
async function deadLetter(queue: string, record: SQSRecord, reason: string): Promise<boolean> {
  try {
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: await queueUrl(`${queue}-dlq`),
        MessageBody: record.body,
        MessageAttributes: {
          [DLQ_ATTRIBUTES.error]: { DataType: "String", StringValue: reason.slice(0, 1000) },
          [DLQ_ATTRIBUTES.source]: { DataType: "String", StringValue: queue },
          [DLQ_ATTRIBUTES.at]: { DataType: "String", StringValue: new Date().toISOString() },
        },
      }),
    );
    log.warn("poison message dead-lettered", { queue, message_id: record.messageId, reason });
    return true;
  } catch (err) {
    log.error("could not dead-letter a poison message", { queue, err: String(err) });
    return false;
  }
}

/**
 * A queue consumer with partial batch responses (Powertools) that tells poison from transient failures: `parse`
 * throwing means the message can never succeed, so it is dead-lettered at once; `handle` throwing is transient and
 * the record is reported failed (SQS redelivers it after the visibility timeout, and past maxReceiveCount the
 * queue's redrive policy moves it to the DLQ). Handlers are idempotent: delivery is at least once.
 */
export function makePoisonAwareConsumer<T>(
  queue: string,
  parse: (record: SQSRecord) => T,
  handle: (message: T, record: SQSRecord) => Promise<void>,
) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const processor = new BatchProcessor(EventType.SQS);
    return processPartialResponse(
      event,
      async (record: SQSRecord) => {
        let message: T;
        try {
          message = parse(record);
        } catch (err) {
          if (await deadLetter(queue, record, `${(err as Error).name}: ${(err as Error).message}`)) return;
          throw err;
        }
        await handle(message, record);
      },
      processor,
      { throwOnFullBatchFailure: false },
    );
  };
}

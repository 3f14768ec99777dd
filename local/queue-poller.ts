import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";

export type SqsHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

/**
 * Plays the role of Lambda's SQS event source mapping with ReportBatchItemFailures: long-polls a queue, hands each
 * batch to the handler, deletes what succeeded and leaves the failed records to reappear after the visibility
 * timeout (the queue's redrive policy moves them to the DLQ after maxReceiveCount). A handler that throws fails the
 * whole batch.
 */
export class QueuePoller {
  private running = false;
  private loop?: Promise<void>;
  private abort = new AbortController();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly queueArn: string,
    private readonly handler: SqsHandler,
    private readonly opts: { batchSize?: number; waitSeconds?: number; onError?: (e: unknown) => void } = {},
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
  }

  private toEvent(messages: Message[]): SQSEvent {
    return {
      Records: messages.map((m) => ({
        messageId: m.MessageId ?? "",
        receiptHandle: m.ReceiptHandle ?? "",
        body: m.Body ?? "",
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: "local",
          ApproximateFirstReceiveTimestamp:
            m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? "",
        eventSource: "aws:sqs",
        eventSourceARN: this.queueArn,
        awsRegion: "us-east-1",
      })),
    };
  }

  /** Receives one batch and processes it; returns how many messages came. */
  async pollOnce(): Promise<number> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.min(this.opts.batchSize ?? 10, 10),
        WaitTimeSeconds: this.opts.waitSeconds ?? 1,
        MessageSystemAttributeNames: ["All"],
      }),
      { abortSignal: this.abort.signal },
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return 0;
    let failedIds: Set<string>;
    try {
      const result = await this.handler(this.toEvent(messages));
      failedIds = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      this.opts.onError?.(err);
      failedIds = new Set(messages.map((m) => m.MessageId ?? ""));
    }
    const done = messages.filter((m) => !failedIds.has(m.MessageId ?? ""));
    if (done.length > 0) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
        }),
      );
    }
    return messages.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.pollOnce();
      } catch (err) {
        if (!this.running) break;
        this.opts.onError?.(err);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}

/**
 * Every SQS queue, defined once. Each has a DLQ with a redrive policy; `stacks/queues.ts` and `local/` both build
 * from this table. `handler` is the consumer's module under functions/queues (export `handler`).
 */
export interface QueueDef {
  /** Logical name; the physical queue is `<prefix>-<name>`, its DLQ `<prefix>-<name>-dlq`. */
  name: string;
  handler: string;
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
  batchSize: number;
}

export const QUEUES = [
  {
    name: "audit",
    handler: "functions/queues/audit.ts",
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    batchSize: 10,
  },
  {
    // Client webhooks: fans each event out to the account's endpoints and the job's webhook_url, and makes the
    // first attempt of each delivery (functions/queues/webhooks.ts). A visibility of 90 s covers a 10 s attempt
    // (the consumer's timeout is a sixth of it, stacks/queues.ts).
    name: "webhooks",
    handler: "functions/queues/webhooks.ts",
    visibilityTimeoutSeconds: 90,
    maxReceiveCount: 5,
    batchSize: 10,
  },
  {
    // Later delivery attempts, as delayed messages (DelaySeconds <= 900; longer waits are chained).
    name: "webhook-retries",
    handler: "functions/queues/webhooks-retry.ts",
    visibilityTimeoutSeconds: 90,
    maxReceiveCount: 5,
    batchSize: 10,
  },
  {
    // Job timers: job events start a chain of delayed messages that applies queue-TTL and lease deadlines on time
    // (functions/queues/job-timers.ts); the cron sweep is the backstop.
    name: "job-timers",
    handler: "functions/queues/job-timers.ts",
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 5,
    batchSize: 10,
  },
] as const satisfies readonly QueueDef[];

export type QueueName = (typeof QUEUES)[number]["name"];

export function dlqName(prefix: string, name: string): string {
  return `${prefix}-${name}-dlq`;
}

export function queueName(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

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
] as const satisfies readonly QueueDef[];

export type QueueName = (typeof QUEUES)[number]["name"];

export function dlqName(prefix: string, name: string): string {
  return `${prefix}-${name}-dlq`;
}

export function queueName(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

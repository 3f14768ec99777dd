import { dlqName, QUEUES, type QueueDef, queueName } from "../events/queues.ts";
import { pascal, queueEntry, upperSnake } from "./entries.ts";
import { createFunction, type FunctionContext } from "./functions.ts";

/** Dead letters are kept for SQS's maximum, 14 days, to be inspected and redriven. */
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;
const SQS_NAME_LIMIT = 80;

export interface QueuePair {
  def: QueueDef;
  queue: sst.aws.Queue;
  dlq: sst.aws.Queue;
}

function physicalName(name: string): string {
  if (name.length > SQS_NAME_LIMIT) {
    throw new Error(
      `SQS queue name ${name} is longer than ${SQS_NAME_LIMIT} characters: use a shorter stage name`,
    );
  }
  return name;
}

/**
 * Every queue of events/queues.ts with its DLQ. Physical names follow `queueName`/`dlqName` with the prefix
 * `<app>-<stage>` (the same scheme the local stack uses with prefix `coord`), so `COORD_QUEUE_PREFIX` lookups work
 * as well as the `COORD_QUEUE_URL_<NAME>` variables the functions are given.
 */
export function createQueues(prefix: string): QueuePair[] {
  return QUEUES.map((def) => {
    const dlq = new sst.aws.Queue(`${pascal(def.name)}Dlq`, {
      transform: {
        queue: {
          name: physicalName(dlqName(prefix, def.name)),
          messageRetentionSeconds: DLQ_RETENTION_SECONDS,
        },
      },
    });
    const queue = new sst.aws.Queue(`${pascal(def.name)}Queue`, {
      visibilityTimeout: `${def.visibilityTimeoutSeconds} seconds`,
      dlq: { queue: dlq.arn, retry: def.maxReceiveCount },
      transform: { queue: { name: physicalName(queueName(prefix, def.name)) } },
    });
    return { def, queue, dlq };
  });
}

/** `COORD_QUEUE_URL_<NAME>` for every queue (functions/sqs.ts reads these before falling back to a lookup). */
export function queueEnvironment(queues: QueuePair[]): Record<string, $util.Input<string>> {
  return Object.fromEntries(
    queues.map(({ def, queue }) => [`COORD_QUEUE_URL_${upperSnake(def.name)}`, queue.url]),
  );
}

/**
 * The consumer function's timeout: AWS asks for a queue visibility timeout of at least six times the function
 * timeout, so that a batch retried after throttling is not redelivered while still in flight (and Lambda refuses a
 * function timeout above the visibility timeout outright).
 */
export function consumerTimeoutSeconds(def: QueueDef): number {
  return Math.min(def.visibilityTimeoutSeconds, Math.max(3, Math.floor(def.visibilityTimeoutSeconds / 6)));
}

/**
 * One Lambda consumer per queue, with partial batch responses (ReportBatchItemFailures): only the records a handler
 * reports as failed come back, and after `maxReceiveCount` receives they move to the DLQ.
 */
export function subscribeConsumers(queues: QueuePair[], context: FunctionContext): sst.aws.Function[] {
  return queues.map(({ def, queue }) => {
    const fn = createFunction(queueEntry(def), context, {
      description: `Consumes the ${def.name} queue`,
      memory: "512 MB",
      timeout: `${consumerTimeoutSeconds(def)} seconds`,
    });
    queue.subscribe(fn.arn, {
      batch: {
        size: def.batchSize,
        // Lambda requires a batching window for SQS batches above 10 records.
        ...(def.batchSize > 10 ? { window: "1 second" as const } : {}),
        partialResponses: true,
      },
    });
    return fn;
  });
}

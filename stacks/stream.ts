import { STREAM_FILTERS } from "../functions/stream/filters.ts";
import { STREAM_ENTRY } from "./entries.ts";
import { createFunction, type FunctionContext } from "./functions.ts";

/**
 * How the stream handler (outbox relay + queue summary) reads the table stream.
 * - Only the records it acts on reach it (functions/stream/filters.ts): Lambda event filtering costs nothing and
 *   spares an invocation for every other write.
 * - Batches of up to 100 records with no batching window: events are relayed, and new work is flagged to polling
 *   miners, as soon as they are written.
 * - The handler answers with batchItemFailures from the first record it could not publish (ReportBatchItemFailures),
 *   so a retry resumes there; a batch that throws is bisected to isolate the record at fault.
 * - Retries are bounded (attempts and record age) so that a record that never goes through stops blocking its
 *   shard; it is then reported to the failure queue. Stream records live 24 h: the age limit leaves most of that
 *   window to replay them from the shard and sequence numbers in the failure message (docs/deploy.md).
 * - TRIM_HORIZON: on a first deploy (or a re-created mapping) reading starts from the oldest record still in the
 *   stream, so no outbox item written before the mapping existed is skipped. Consumers are idempotent.
 */
export const STREAM_READING = {
  batchSize: 100,
  maximumBatchingWindowInSeconds: 0,
  bisectBatchOnFunctionError: true,
  maximumRetryAttempts: 20,
  maximumRecordAgeInSeconds: 6 * 3600,
  startingPosition: "TRIM_HORIZON",
} as const;

/** Failure records (metadata only: shard and sequence range, not the items) are kept 14 days. */
const FAILURE_RETENTION_SECONDS = 14 * 24 * 3600;

/** The table stream's consumer (DynamoDB stream -> EventBridge, queue summary) and its on-failure destination. */
export function createStreamHandler(table: sst.aws.Dynamo, context: FunctionContext) {
  const failures = new sst.aws.Queue("StreamFailures", {
    transform: { queue: { messageRetentionSeconds: FAILURE_RETENTION_SECONDS } },
  });
  const handler = createFunction(STREAM_ENTRY, context, {
    description: "Table stream: relays outbox items to the bus and keeps the queue summary",
    memory: "512 MB",
    timeout: "60 seconds",
    // Lambda writes to the on-failure destination with the function's role.
    link: [failures],
  });
  table.subscribe("StreamHandler", handler.arn, {
    filters: [...STREAM_FILTERS],
    transform: {
      eventSourceMapping: (args) => {
        args.batchSize = STREAM_READING.batchSize;
        args.maximumBatchingWindowInSeconds = STREAM_READING.maximumBatchingWindowInSeconds;
        args.bisectBatchOnFunctionError = STREAM_READING.bisectBatchOnFunctionError;
        args.maximumRetryAttempts = STREAM_READING.maximumRetryAttempts;
        args.maximumRecordAgeInSeconds = STREAM_READING.maximumRecordAgeInSeconds;
        args.startingPosition = STREAM_READING.startingPosition;
        args.functionResponseTypes = ["ReportBatchItemFailures"];
        args.destinationConfig = { onFailure: { destinationArn: failures.arn } };
      },
    },
  });
  return { handler, failures };
}

import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import * as v from "valibot";
import { fireTimer, Timer, timerFor } from "../../core/jobs/timers.ts";
import { validateEnvelope } from "../../events/catalog.ts";
import { queueUrl, sqs } from "../sqs.ts";

/** SQS delays stop at 15 minutes; longer waits hop. */
const MAX_DELAY_SECONDS = 900;

async function schedule(timer: Timer): Promise<void> {
  const delay = Math.ceil((Date.parse(timer.due_at) - Date.now()) / 1000);
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: await queueUrl("job-timers"),
      MessageBody: JSON.stringify({ timer }),
      DelaySeconds: Math.min(Math.max(delay, 0), MAX_DELAY_SECONDS),
    }),
  );
}

/**
 * The `job-timers` queue carries two kinds of message: job events from the bus (which start a timer chain) and the
 * chain's own delayed messages. Each record is handled on its own (partial batch response).
 */
async function handle(record: SQSRecord): Promise<void> {
  const body = JSON.parse(record.body) as { detail?: unknown; timer?: unknown };
  if (body.detail) {
    const env = validateEnvelope(body.detail);
    const start = timerFor(env.type, env.data as { job_id: string; attempt: number });
    if (start) await schedule(start);
    return;
  }
  const timer = v.parse(Timer, body.timer);
  if (Date.parse(timer.due_at) - Date.now() > 1000) return schedule(timer); // an SQS-delay hop of a long wait
  const outcome = await fireTimer(timer);
  if ("fireAgainAt" in outcome) await schedule({ ...timer, due_at: outcome.fireAgainAt });
}

export const handler = async (event: SQSEvent) =>
  processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), {
    throwOnFullBatchFailure: false,
  });

import * as v from "valibot";
import { DeliveryTask, runTask } from "../../core/webhooks/deliveries.ts";
import { makePoisonAwareConsumer, sqsTaskQueue } from "./webhooks-tasks.ts";

/**
 * The `webhook-retries` queue: delayed delivery attempts. A task not yet due (waits beyond SQS's 900 s delay) is
 * sent on again; a due one makes its attempt, which schedules the next on failure.
 */
export const handler = makePoisonAwareConsumer(
  "webhook-retries",
  (record) => v.parse(DeliveryTask, JSON.parse(record.body)),
  (task) => runTask(task, sqsTaskQueue),
);

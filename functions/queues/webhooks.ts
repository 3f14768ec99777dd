import { fanOut } from "../../core/webhooks/fanout.ts";
import { envelopeOf } from "./consumer.ts";
import { makePoisonAwareConsumer, sqsTaskQueue } from "./webhooks-tasks.ts";

/**
 * The `webhooks` queue (rule `client-webhooks`): fans each event out to the account's endpoints and the job's
 * `webhook_url` and makes each delivery's first attempt; later attempts go through `webhook-retries`. An event that
 * fails the catalog is poison (dead-lettered at once); anything else that throws is retried by SQS.
 */
export const handler = makePoisonAwareConsumer("webhooks", envelopeOf, async (env) => {
  await fanOut(env, sqsTaskQueue);
});

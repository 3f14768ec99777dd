import { RULES } from "../events/rules.ts";
import { pascal } from "./entries.ts";
import type { QueuePair } from "./queues.ts";

/** Events EventBridge could not deliver to a queue (after its own retries) are kept 14 days here. */
const BUS_DLQ_RETENTION_SECONDS = 14 * 24 * 3600;

export interface BusResources {
  bus: sst.aws.Bus;
  /** Dead letters of the rule targets (not of the consumers: each queue has its own DLQ for those). */
  deadLetters: sst.aws.Queue;
  rules: aws.cloudwatch.EventRule[];
}

/** A queue policy that lets only the given EventBridge rules send to the queue. */
function allowRules(name: string, queue: sst.aws.Queue, ruleArns: $util.Input<string>[]) {
  return new aws.sqs.QueuePolicy(name, {
    queueUrl: queue.url,
    policy: $jsonStringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "EventBridgeRules",
          Effect: "Allow",
          Principal: { Service: "events.amazonaws.com" },
          Action: "sqs:SendMessage",
          Resource: queue.arn,
          Condition: { ArnEquals: { "aws:SourceArn": ruleArns } },
        },
      ],
    }),
  });
}

/**
 * The event bus and one rule per entry of events/rules.ts (the same table the local bus routes by), each targeting
 * its queue. Built from EventRule/EventTarget rather than `Bus.subscribeQueue` so that each queue gets a single
 * policy scoped to the rules that feed it (subscribeQueue writes one open policy per subscription, and several
 * rules on one queue would overwrite each other's), and so that targets carry a retry policy and a dead-letter queue.
 */
export function createBus(queues: QueuePair[]): BusResources {
  const bus = new sst.aws.Bus("Bus");
  const deadLetters = new sst.aws.Queue("BusDlq", {
    transform: { queue: { messageRetentionSeconds: BUS_DLQ_RETENTION_SECONDS } },
  });

  const byQueue = new Map<string, $util.Output<string>[]>();
  const rules = RULES.map((rule) => {
    const target = queues.find((q) => q.def.name === rule.target);
    if (!target) throw new Error(`rule ${rule.name} targets unknown queue ${rule.target}`);
    const id = `${pascal(rule.name)}Rule`;
    const eventRule = new aws.cloudwatch.EventRule(id, {
      description: `${rule.name}: ${rule.pattern["detail-type"].join(", ")} -> ${rule.target}`,
      eventBusName: bus.name,
      eventPattern: JSON.stringify(rule.pattern),
    });
    new aws.cloudwatch.EventTarget(`${id}Target`, {
      eventBusName: bus.name,
      rule: eventRule.name,
      arn: target.queue.arn,
      // EventBridge's defaults, stated: retry for up to a day, then dead-letter.
      retryPolicy: { maximumEventAgeInSeconds: 24 * 3600, maximumRetryAttempts: 185 },
      deadLetterConfig: { arn: deadLetters.arn },
    });
    byQueue.set(rule.target, [...(byQueue.get(rule.target) ?? []), eventRule.arn]);
    return eventRule;
  });

  for (const { def, queue } of queues) {
    const ruleArns = byQueue.get(def.name);
    if (ruleArns) allowRules(`${pascal(def.name)}QueuePolicy`, queue, ruleArns);
  }
  if (rules.length > 0) {
    allowRules(
      "BusDlqPolicy",
      deadLetters,
      rules.map((r) => r.arn),
    );
  }
  return { bus, deadLetters, rules };
}

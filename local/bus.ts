import { SendMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { type Envelope, EVENT_SOURCE } from "../events/catalog.ts";
import { type Publisher, toBusEvent } from "../events/publisher.ts";
import { matches, RULES } from "../events/rules.ts";

/**
 * The local stand-in for EventBridge: the same rules table (events/rules.ts), delivering the same event shape an
 * EventBridge rule hands to an SQS target.
 */
export class LocalBus implements Publisher {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: (name: string) => Promise<string>,
    private readonly region = "us-east-1",
  ) {}

  async publish(events: Envelope[]): Promise<{ failed: Envelope[] }> {
    const byQueue = new Map<string, Envelope[]>();
    for (const env of events) {
      for (const rule of RULES) {
        if (!matches(rule, { source: EVENT_SOURCE, "detail-type": env.type, detail: env })) continue;
        const list = byQueue.get(rule.target) ?? [];
        list.push(env);
        byQueue.set(rule.target, list);
      }
    }
    const failed = new Map<string, Envelope>();
    for (const [queue, list] of byQueue) {
      const url = await this.queueUrl(queue);
      for (let i = 0; i < list.length; i += 10) {
        const chunk = list.slice(i, i + 10);
        try {
          const out = await this.sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: url,
              Entries: chunk.map((env, idx) => ({
                Id: String(idx),
                MessageBody: JSON.stringify(toBusEvent(env, this.region)),
              })),
            }),
          );
          for (const f of out.Failed ?? []) {
            const env = chunk[Number(f.Id)];
            if (env) failed.set(env.id, env);
          }
        } catch {
          for (const env of chunk) failed.set(env.id, env);
        }
      }
    }
    return { failed: [...failed.values()] };
  }
}

import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { startFauxqs } from "fauxqs";
import { dlqName, type QueueDef, queueName } from "../events/queues.ts";

export interface SqsLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/** The SQS emulator (fauxqs) in library mode, on a free port. Its state is in memory (see docs/local.md). */
export async function startSqsLocal(port = 0): Promise<SqsLocal> {
  const server = await startFauxqs({ port, logger: false, host: "127.0.0.1" });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

export interface CreatedQueue {
  def: QueueDef;
  url: string;
  dlqUrl: string;
}

/** Creates each queue and its DLQ with the redrive policy from events/queues.ts (idempotent, like CreateQueue). */
export async function ensureQueues(
  sqs: SQSClient,
  prefix: string,
  defs: readonly QueueDef[],
): Promise<CreatedQueue[]> {
  const created: CreatedQueue[] = [];
  for (const def of defs) {
    const dlq = await sqs.send(
      new CreateQueueCommand({
        QueueName: dlqName(prefix, def.name),
        Attributes: { MessageRetentionPeriod: "1209600" },
      }),
    );
    const dlqUrl = dlq.QueueUrl as string;
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }),
    );
    const q = await sqs.send(
      new CreateQueueCommand({
        QueueName: queueName(prefix, def.name),
        Attributes: {
          VisibilityTimeout: String(def.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: attrs.Attributes?.QueueArn,
            maxReceiveCount: def.maxReceiveCount,
          }),
        },
      }),
    );
    created.push({ def, url: q.QueueUrl as string, dlqUrl });
  }
  return created;
}

import { GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { config } from "../core/config.ts";
import { queueName } from "../events/queues.ts";

let client: SQSClient | undefined;

export function sqs(): SQSClient {
  if (client) return client;
  const endpoint = config.sqsEndpoint;
  client = new SQSClient({
    region: config.region,
    ...(endpoint ? { endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
  });
  return client;
}

export function queuePrefix(): string {
  return process.env.COORD_QUEUE_PREFIX ?? "coord";
}

const urls = new Map<string, string>();

/** Queue URL by logical name: from `COORD_QUEUE_URL_<NAME>` (set by the stack) or looked up once by name. */
export async function queueUrl(name: string): Promise<string> {
  const envName = `COORD_QUEUE_URL_${name.toUpperCase().replace(/-/g, "_")}`;
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  const cached = urls.get(name);
  if (cached) return cached;
  const out = await sqs().send(new GetQueueUrlCommand({ QueueName: queueName(queuePrefix(), name) }));
  if (!out.QueueUrl) throw new Error(`queue ${name} not found`);
  urls.set(name, out.QueueUrl);
  return out.QueueUrl;
}

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { serve } from "@hono/node-server";
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { generateApiKey } from "../core/accounts/api-key.ts";
import { flushMetrics } from "../core/metrics/metrics.ts";
import { assertSettings } from "../core/settings.ts";
import { QUEUES } from "../events/queues.ts";
import { SCHEDULES } from "../functions/cron/schedules.ts";
import { LocalBus } from "./bus.ts";
import { type LocalChain, startLocalChain } from "./chain.ts";
import { startCron } from "./cron.ts";
import { startDynamoLocal } from "./dynamo.ts";
import { QueuePoller, type SqsHandler } from "./queue-poller.ts";
import { ensureQueues, startSqsLocal } from "./queues.ts";
import { type S3Gate, startS3Gate } from "./s3-gate.ts";
import { StreamPoller } from "./stream-poller.ts";
import { ensureTable } from "./table.ts";

export interface LocalStackOptions {
  port?: number;
  host?: string;
  /** Keep data in memory only (COORD_EPHEMERAL=1). */
  ephemeral?: boolean;
  dataDir?: string;
  adminKey?: string;
  tableName?: string;
  /** Logs pollers' errors; defaults to stderr. */
  onError?: (where: string, err: unknown) => void;
}

export interface LocalStack {
  url: string;
  port: number;
  adminKey: string;
  tableName: string;
  dynamoEndpoint: string;
  sqsEndpoint: string;
  queueUrls: Record<string, { url: string; dlqUrl: string }>;
  /** The chain settlement anchors on (the local one unless COORD_CHAIN_RPC_URL named another) and its webhook key. */
  chain: ChainInfo;
  stop(): Promise<void>;
}

export interface ChainInfo {
  /** Unset only when COORD_CHAIN_RPC_URL was set without the anchoring key: settlement then seals but never anchors. */
  rpcUrl: string | undefined;
  chainId: number | undefined;
  /** The anchoring account (the transactions' sender). */
  anchorAddress: string | undefined;
  webhookSecret: string;
}

const root = new URL("..", import.meta.url);

async function importHandler<T>(modulePath: string): Promise<T> {
  const mod = (await import(new URL(modulePath, root).href)) as { handler: T };
  if (typeof mod.handler !== "function") throw new Error(`${modulePath} exports no handler`);
  return mod.handler;
}

/**
 * The receipt signing key offline: `COORD_RECEIPT_SIGNING_KEY` if set, else the one kept in `.coord/` (generated the
 * first time, so receipts issued before a restart stay verifiable with the same published key), else (ephemeral
 * stacks) a new one for this run.
 */
async function resolveReceiptKey(dataDir: string | undefined): Promise<void> {
  if (process.env.COORD_RECEIPT_SIGNING_KEY) return;
  const { newPrivateSeed } = await import("../core/receipts/ed25519.ts");
  if (!dataDir) {
    process.env.COORD_RECEIPT_SIGNING_KEY = newPrivateSeed();
    return;
  }
  const file = join(dataDir, "receipt-signing-key");
  if (!existsSync(file)) writeFileSync(file, `${newPrivateSeed()}\n`, { mode: 0o600 });
  process.env.COORD_RECEIPT_SIGNING_KEY = readFileSync(file, "utf8").trim();
}

/**
 * The chain: COORD_CHAIN_RPC_URL if set, else a local chain of our own (in memory, or kept under `<dataDir>/chain/`)
 * whose coordinates the in-process handlers read from the environment, as they would on AWS.
 */
async function resolveChain(dataDir: string | undefined): Promise<LocalChain | undefined> {
  if (process.env.COORD_CHAIN_RPC_URL) return undefined;
  const chain = await startLocalChain({ dataDir });
  Object.assign(process.env, {
    COORD_CHAIN_RPC_URL: chain.rpcUrl,
    COORD_CHAIN_ID: String(chain.chainId),
    COORD_ANCHOR_PRIVATE_KEY: chain.anchorPrivateKey,
  });
  return {
    ...chain,
    stop: async () => {
      await chain.stop();
      // A stack started later in this process starts its own chain rather than pointing at this stopped one.
      if (process.env.COORD_CHAIN_RPC_URL === chain.rpcUrl) {
        delete process.env.COORD_CHAIN_RPC_URL;
        delete process.env.COORD_CHAIN_ID;
        delete process.env.COORD_ANCHOR_PRIVATE_KEY;
      }
    },
  };
}

/** The chain webhook's signing key offline: COORD_CHAIN_WEBHOOK_SECRET, else kept in `.coord/` (or new per run). */
function resolveChainWebhookSecret(dataDir: string | undefined): string {
  if (process.env.COORD_CHAIN_WEBHOOK_SECRET) return process.env.COORD_CHAIN_WEBHOOK_SECRET;
  const fresh = () => randomBytes(32).toString("base64url");
  let secret = fresh();
  if (dataDir) {
    const file = join(dataDir, "chain-webhook-secret");
    if (!existsSync(file)) writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    secret = readFileSync(file, "utf8").trim();
  }
  process.env.COORD_CHAIN_WEBHOOK_SECRET = secret;
  return secret;
}

async function chainInfo(webhookSecret: string): Promise<ChainInfo> {
  const key = process.env.COORD_ANCHOR_PRIVATE_KEY;
  const { privateKeyToAccount } = await import("viem/accounts");
  const id = Number(process.env.COORD_CHAIN_ID);
  return {
    rpcUrl: process.env.COORD_CHAIN_RPC_URL,
    chainId: Number.isSafeInteger(id) && id > 0 ? id : undefined,
    anchorAddress: key ? privateKeyToAccount(key as `0x${string}`).address.toLowerCase() : undefined,
    webhookSecret,
  };
}

function resolveAdminKey(opts: LocalStackOptions, dataDir: string | undefined): string {
  if (opts.adminKey) return opts.adminKey;
  if (!dataDir) return generateApiKey("admin");
  const file = join(dataDir, "bootstrap-admin-key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const key = generateApiKey("admin");
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

/** The artifacts' bucket in the emulator's S3 and the gate in front of it; sets the storage's environment. */
async function startArtifactStorage(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<S3Gate> {
  process.env.COORD_ARTIFACT_BUCKET ??= "coordinator-artifacts";
  const s3 = new S3Client({ endpoint, forcePathStyle: true, region: "us-east-1", credentials });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: process.env.COORD_ARTIFACT_BUCKET }));
  } finally {
    s3.destroy();
  }
  const gate = await startS3Gate({ upstream: endpoint, region: "us-east-1", ...credentials });
  process.env.COORD_S3_ENDPOINT = endpoint;
  process.env.COORD_S3_PUBLIC_ENDPOINT = gate.url;
  return gate;
}

/**
 * The embedded runtime: DynamoDB Local + the SQS emulator + the local bus, the table and queues from their one
 * definition, the Hono app on Node, and the pollers that invoke the real Lambda handlers.
 */
export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  // Before anything starts: a malformed numeric setting is an error naming it, not a silently broken stack.
  assertSettings();
  const onError = opts.onError ?? ((where, err) => console.error(`[${where}]`, err));
  const dataDir = opts.ephemeral ? undefined : (opts.dataDir ?? join(process.cwd(), ".coord"));
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const tableName = opts.tableName ?? "coordinator";
  const queuePrefix = "coord";

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err) => onError("stop", err));
  };
  try {
    const [dynamo, sqsLocal, localChain] = await Promise.all([
      startDynamoLocal({ dataDir: dataDir && join(dataDir, "dynamodb") }),
      startSqsLocal(),
      resolveChain(dataDir),
    ]);
    stops.push(dynamo.stop, sqsLocal.stop);
    // Stopped after the cron and the consumers that use it (stops run in reverse).
    if (localChain) stops.push(localChain.stop);
    const chain = await chainInfo(resolveChainWebhookSecret(dataDir));

    // One instance: every writer (API, stream, consumers, sweep) announces work in this process, and every mark and
    // clear of the queue summary is made here (so this instance's copy of it is the table's), so waiting polls are
    // woken at once and the matcher's summary recheck and re-read are only a backstop (on Lambda they carry work
    // between instances, every 250 ms): an idle poll reads nothing.
    process.env.COORD_POLL_RECHECK_MS ??= "2000";
    process.env.COORD_SUMMARY_CACHE_MS ??= "30000";
    Object.assign(process.env, {
      COORD_TABLE_NAME: tableName,
      COORD_DYNAMO_ENDPOINT: dynamo.endpoint,
      COORD_SQS_ENDPOINT: sqsLocal.endpoint,
      COORD_QUEUE_PREFIX: queuePrefix,
      AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
    });

    const credentials = { accessKeyId: "local", secretAccessKey: "local" };
    const dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region: "us-east-1", credentials });
    const sqs = new SQSClient({ endpoint: sqsLocal.endpoint, region: "us-east-1", credentials });
    stops.push(async () => {
      dynamoClient.destroy();
      sqs.destroy();
    });

    const streamArn = await ensureTable(dynamoClient, tableName);
    const queues = await ensureQueues(sqs, queuePrefix, QUEUES);
    // Artifacts: the S3 of the same emulator, behind a gate that checks presigned URLs as S3 does (expiry,
    // signature); presigned URLs are signed for the gate's address, which clients and miners reach.
    const gate = await startArtifactStorage(sqsLocal.endpoint, credentials);
    stops.push(gate.stop);
    const queueUrls = Object.fromEntries(queues.map((q) => [q.def.name, { url: q.url, dlqUrl: q.dlqUrl }]));

    const { ensureBootstrapAdmin } = await import("../core/accounts/accounts.ts");
    const adminKey = resolveAdminKey(opts, dataDir);
    await ensureBootstrapAdmin(adminKey);
    await resolveReceiptKey(dataDir);
    const { publishedSigningKey } = await import("../core/receipts/signing-key.ts");
    await publishedSigningKey();

    // Event path: stream -> relay handler -> local bus (same rules) -> queues -> consumer handlers.
    const bus = new LocalBus(sqs, async (name) => {
      const q = queueUrls[name];
      if (!q) throw new Error(`no queue ${name}`);
      return q.url;
    });
    const { makeStreamHandler } = await import("../functions/stream/handler.ts");
    const relay: (e: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse> = makeStreamHandler(bus);
    // The stream's on-failure destination, as on AWS (StreamFailures): a record given up on is kept here.
    const failures = await sqs.send(new CreateQueueCommand({ QueueName: `${queuePrefix}-stream-failures` }));
    const streamPoller = new StreamPoller(dynamo.endpoint, streamArn, relay, {
      onDiscard: async (record) => {
        await sqs.send(
          new SendMessageCommand({ QueueUrl: failures.QueueUrl, MessageBody: JSON.stringify(record) }),
        );
      },
      checkpointFile: dataDir && join(dataDir, "stream-checkpoint.json"),
      onError: (err) => onError("stream", err),
    });
    streamPoller.start();
    // After the poller stops (stops run in reverse): the event counters it gathered are written out.
    stops.push(() => flushMetrics());
    stops.push(() => streamPoller.stop());

    for (const q of queues) {
      const handler = await importHandler<SqsHandler>(q.def.handler);
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ["QueueArn"] }),
      );
      const poller = new QueuePoller(sqs, q.url, attrs.Attributes?.QueueArn ?? "", handler, {
        batchSize: q.def.batchSize,
        onError: (err) => onError(`queue:${q.def.name}`, err),
      });
      poller.start();
      stops.push(() => poller.stop());
    }

    const cron = await Promise.all(
      SCHEDULES.map(async (schedule) => ({
        schedule,
        handler: await importHandler<() => Promise<unknown>>(schedule.handler),
      })),
    );
    stops.push(startCron(cron, (name, err) => onError(`cron:${name}`, err)));

    const { createApp } = await import("../functions/api/app.ts");
    const app = createApp();
    const host = opts.host ?? "127.0.0.1";
    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: opts.port ?? 0, hostname: host }, () => resolve(s));
      s.once("error", reject);
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    // The doorbell (miners' WebSocket) on the same server; its sockets close before the server does.
    const { attachDoorbell } = await import("./doorbell.ts");
    const doorbell = attachDoorbell(server as unknown as Server);
    stops.push(async () => doorbell.close());
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
      port,
      adminKey,
      tableName,
      dynamoEndpoint: dynamo.endpoint,
      sqsEndpoint: sqsLocal.endpoint,
      queueUrls,
      chain,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

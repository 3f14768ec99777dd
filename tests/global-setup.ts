import type { TestProject } from "vitest/node";
import { startLocalStack } from "../local/stack.ts";
import { startStripeStandIn } from "./stripe-stand-in.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: {
      url: string;
      adminKey: string;
      tableName: string;
      dynamoEndpoint: string;
      sqsEndpoint: string;
      queueUrls: Record<string, { url: string; dlqUrl: string }>;
    };
    /** The Stripe stand-in (tests/stripe-stand-in.ts) the stack's Stripe SDK talks to, and the webhook secrets. */
    stripe: { url: string; webhookSecret: string; previousWebhookSecret: string };
    /** The local chain settlement anchors on (local/chain.ts): its RPC URL, the anchoring account, the webhook key. */
    chain: { rpcUrl: string; chainId: number; anchorAddress: string; webhookSecret: string };
  }
}

/** Starts the real local stack once per test run (ephemeral, random ports) and hands its coordinates to tests. */
export default async function setup(project: TestProject) {
  // The `write` class gets the smallest burst the design allows (100) and a slow refill, so that
  // tests/ratelimit.test.ts can exceed it quickly; every other class keeps its generous default.
  process.env.COORD_RATE_WRITE ??= "100/1";
  // Short leases and heartbeats so lease-lapse behaviour is observable in seconds; the sweep runs every second.
  process.env.COORD_LEASE_SECONDS ??= "3";
  process.env.COORD_HEARTBEAT_SECONDS ??= "1";
  // Webhook receivers in tests are local HTTP servers on 127.0.0.1; retries come a second apart (five attempts), and
  // an endpoint is disabled after two messages in a row failed every attempt.
  process.env.COORD_WEBHOOK_ALLOW_PRIVATE ??= "1";
  process.env.COORD_WEBHOOK_RETRY_SCHEDULE ??= "1,1,1,1";
  process.env.COORD_WEBHOOK_DISABLE_AFTER ??= "2";
  // Stripe cannot be reached from here: the stack's real Stripe SDK talks to a stand-in speaking Stripe's wire format.
  const stripe = await startStripeStandIn();
  process.env.COORD_STRIPE_SECRET_KEY ??= "sk_test_stand_in";
  process.env.COORD_STRIPE_API_BASE ??= stripe.url;
  process.env.COORD_STRIPE_WEBHOOK_SECRET ??= "whsec_test_current";
  process.env.COORD_STRIPE_WEBHOOK_SECRET_PREVIOUS ??= "whsec_test_previous";
  process.env.COORD_CREDIT_RATES ??= "usd:10000,eur:11000";
  // Settlement in seconds: batches close after 1 s (or 16 receipts), the local chain mines a block every 0.5 s and a
  // batch is confirmed 2 blocks deep, re-checked for reorgs until 40 deep; an anchor unmined for 3 s is replaced.
  process.env.COORD_SETTLEMENT_BATCH_SECONDS ??= "1";
  process.env.COORD_SETTLEMENT_BATCH_SIZE ??= "16";
  process.env.COORD_LOCAL_CHAIN_BLOCK_SECONDS ??= "0.5";
  process.env.COORD_CHAIN_CONFIRMATIONS ??= "2";
  process.env.COORD_CHAIN_FINALITY_BLOCKS ??= "40";
  process.env.COORD_CHAIN_REPLACE_SECONDS ??= "3";
  // Artifacts: whisper.transcribe takes audio of at most 1 KiB here, so that an oversized upload is cheap to make.
  process.env.COORD_SERVICE_ARTIFACT_LIMITS ??= JSON.stringify({
    "whisper.transcribe": { max_mb: 1 / 1024 },
  });
  // The stack's own local chain, whatever the shell says: the tests snapshot and revert it.
  delete process.env.COORD_CHAIN_RPC_URL;
  const stack = await startLocalStack({ ephemeral: true, port: 0 });
  project.provide("stack", {
    url: stack.url,
    adminKey: stack.adminKey,
    tableName: stack.tableName,
    dynamoEndpoint: stack.dynamoEndpoint,
    sqsEndpoint: stack.sqsEndpoint,
    queueUrls: stack.queueUrls,
  });
  project.provide("stripe", {
    url: stripe.url,
    webhookSecret: process.env.COORD_STRIPE_WEBHOOK_SECRET,
    previousWebhookSecret: process.env.COORD_STRIPE_WEBHOOK_SECRET_PREVIOUS,
  });
  const { rpcUrl, chainId, anchorAddress, webhookSecret } = stack.chain;
  if (!rpcUrl || !chainId || !anchorAddress) throw new Error("the test stack has no chain");
  project.provide("chain", { rpcUrl, chainId, anchorAddress, webhookSecret });
  return async () => {
    await stack.stop();
    await stripe.close();
  };
}

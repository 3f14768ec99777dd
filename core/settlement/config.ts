import { setting } from "../settings.ts";

/**
 * Settlement's configuration, from the environment (docs/settlement.md):
 * - `COORD_CHAIN_RPC_URL`: the EVM node's JSON-RPC URL (offline: the local chain `npm start` runs when unset);
 * - `COORD_ANCHOR_PRIVATE_KEY`: the anchoring account's secp256k1 key (`0x` + 64 hex), which pays for the
 *   transactions. Without both, receipts are still batched and sealed, but nothing is anchored;
 * - `COORD_CHAIN_ID`: the chain the node must serve (refused otherwise); unset, the node's own;
 * - `COORD_ANCHOR_ADDRESS`: where anchoring transactions go (unset: the anchoring account itself);
 * - `COORD_CHAIN_WEBHOOK_SECRET`: the chain webhook's signing key (Alchemy's signing key);
 * - the numeric ones in core/settings.ts (batch size and age, confirmations, finality depth).
 */
export interface ChainConfig {
  rpcUrl: string;
  privateKey: `0x${string}`;
  chainId: number | undefined;
  to: `0x${string}` | undefined;
}

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** The chain to anchor on, or undefined when none is configured. A malformed value throws, naming it. */
export function chainConfig(): ChainConfig | undefined {
  const rpcUrl = process.env.COORD_CHAIN_RPC_URL?.trim();
  const rawKey = process.env.COORD_ANCHOR_PRIVATE_KEY?.trim();
  const rawId = process.env.COORD_CHAIN_ID?.trim();
  const rawTo = process.env.COORD_ANCHOR_ADDRESS?.trim();
  if (rpcUrl) {
    let url: URL;
    try {
      url = new URL(rpcUrl);
    } catch {
      throw new Error("COORD_CHAIN_RPC_URL must be a URL");
    }
    if (!/^https?:$/.test(url.protocol)) throw new Error("COORD_CHAIN_RPC_URL must be an http(s) URL");
  }
  if (rawKey && !PRIVATE_KEY.test(rawKey))
    throw new Error("COORD_ANCHOR_PRIVATE_KEY must be 0x followed by 64 hex digits");
  const chainId = rawId ? Number(rawId) : undefined;
  if (chainId !== undefined && (!Number.isSafeInteger(chainId) || chainId <= 0))
    throw new Error(`COORD_CHAIN_ID must be a positive whole number, got ${JSON.stringify(rawId)}`);
  if (rawTo && !ADDRESS.test(rawTo))
    throw new Error("COORD_ANCHOR_ADDRESS must be a 0x address (40 hex digits)");
  if (!rpcUrl || !rawKey) return undefined;
  return {
    rpcUrl,
    privateKey: rawKey.toLowerCase() as `0x${string}`,
    chainId,
    to: rawTo ? (rawTo.toLowerCase() as `0x${string}`) : undefined,
  };
}

/** The chain webhook's signing secret, if one is configured. */
export function chainWebhookSecret(): string | undefined {
  return process.env.COORD_CHAIN_WEBHOOK_SECRET || undefined;
}

export function batchSize(): number {
  return setting("COORD_SETTLEMENT_BATCH_SIZE");
}

export function batchSeconds(): number {
  return setting("COORD_SETTLEMENT_BATCH_SECONDS");
}

export function requiredConfirmations(): number {
  return setting("COORD_CHAIN_CONFIRMATIONS");
}

export function finalityBlocks(): number {
  return Math.max(setting("COORD_CHAIN_FINALITY_BLOCKS"), requiredConfirmations());
}

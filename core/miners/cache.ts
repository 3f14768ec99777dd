import { setting } from "../settings.ts";
import type { Miner } from "./miners.ts";

/**
 * Miners' capabilities, per instance, so that a poll reads nothing from DynamoDB for a miner seen in the last few
 * seconds (COORD_MINER_CACHE_SECONDS, default 5). What the cache may get wrong is guarded elsewhere: the claim's
 * own conditions check that the miner is online and below its concurrency, and a claim refused on the miner's item
 * evicts the entry and reads the miner again. A change made in this instance (registration, heartbeat status,
 * drain, ban, offline) evicts at once; another instance's change is seen within the bound.
 */
const MAX_ENTRIES = 10_000;
const entries = new Map<string, { miner: Miner; until: number }>();

export function minerCacheMs(): number {
  return setting("COORD_MINER_CACHE_SECONDS") * 1000;
}

export function cachedMiner(id: string, now = Date.now()): Miner | undefined {
  const entry = entries.get(id);
  if (!entry) return undefined;
  if (now >= entry.until) {
    entries.delete(id);
    return undefined;
  }
  return entry.miner;
}

export function rememberMiner(miner: Miner, now = Date.now()): void {
  const ttl = minerCacheMs();
  if (ttl === 0) return;
  if (entries.size >= MAX_ENTRIES && !entries.has(miner.id)) entries.clear();
  entries.set(miner.id, { miner, until: now + ttl });
}

export function forgetMiner(id: string): void {
  entries.delete(id);
}

import { setting } from "../settings.ts";
import { TtlCache } from "../ttl-cache.ts";
import type { Miner } from "./miners.ts";

/**
 * Miners' capabilities, per instance, so that a poll reads nothing from DynamoDB for a miner seen lately
 * (COORD_MINER_CACHE_SECONDS, default 30; every heartbeat served here refreshes the entry from the miner item its
 * write returns, so a miner heartbeating every 10 s and polling here is never read). What the cache may get wrong is
 * guarded elsewhere: the claim's own conditions check that the miner is online, below its concurrency, still runs the
 * service at the price the job is billed at and is in the job's pool (or takes public jobs), and a claim refused on
 * the miner's item evicts the entry and reads the miner again. A change made in this instance (registration,
 * heartbeat status, drain, ban, offline) evicts or refreshes at once; another instance's change is seen within the
 * bound or at the next heartbeat served here.
 */
const entries = new TtlCache<Miner>(() => minerCacheMs());

function minerCacheMs(): number {
  return setting("COORD_MINER_CACHE_SECONDS") * 1000;
}

export function cachedMiner(id: string, now = Date.now()): Miner | undefined {
  return entries.get(id, now);
}

export function rememberMiner(miner: Miner, now = Date.now()): void {
  entries.set(miner.id, miner, undefined, now);
}

export function forgetMiner(id: string): void {
  entries.delete(id);
}

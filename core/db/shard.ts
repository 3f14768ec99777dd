import { createHash } from "node:crypto";

/** Stable shard of an id in [0, n): spreads hot partitions (ready queues, deadlines, miner lists). */
export function shardOf(id: string, n: number): number {
  return createHash("sha1").update(id).digest().readUInt32BE(0) % n;
}

import { setting } from "../settings.ts";
import { TtlCache } from "../ttl-cache.ts";
import { readAccount } from "./store.ts";

/**
 * An account's standing as a submit needs it: how many jobs it has queued (fair share places its next job behind
 * them) and what balance is available. Cached per instance for COORD_STANDING_CACHE_MS (default 1 s) and moved
 * locally by this instance's own submits, so that a busy client's submit reads nothing before its transaction.
 *
 * What staleness may get wrong is guarded elsewhere: the submit transaction itself refuses a hold the balance cannot
 * cover and a job past the account's queued quota (conditions on the account item), so a stale standing only
 * shifts a job's fair-share position by what other instances queued within the bound.
 */
export interface Standing {
  queued: number;
  available: number;
}

const entries = new TtlCache<Standing>(() => setting("COORD_STANDING_CACHE_MS"));

export async function accountStanding(accountId: string, fresh = false): Promise<Standing> {
  const hit = fresh ? undefined : entries.get(accountId);
  if (hit) return hit;
  const item = await readAccount(accountId);
  const standing = { queued: Number(item?.queued ?? 0), available: Number(item?.available ?? 0) };
  entries.set(accountId, standing);
  return standing;
}

/** This instance held `held` for a job of the account, and queued it (unless a miner took it at once). */
export function noteHeld(accountId: string, held: number, opts: { queued: boolean }): void {
  const s = entries.get(accountId);
  if (s) {
    if (opts.queued) s.queued++;
    s.available -= held;
  }
}

export function forgetStanding(accountId: string): void {
  entries.delete(accountId);
}

import { batchesToWork, unbatchedReceipts, workListSize } from "./store.ts";

/** Where settlement work waits: receipts no batch claimed yet, batches to anchor, anchored batches not yet final. */
export type SettlementStage = "unbatched" | "anchoring" | "finality";

export interface SettlementBacklog {
  /** Batches on each of the cron's work lists. */
  batches: { sealing: number; pending: number; watching: number };
  /** Seconds the oldest piece of work has waited at each stage (0 when none waits). */
  oldestSeconds: Record<SettlementStage, number>;
}

const age = (since: number | undefined, now: number) =>
  since === undefined || Number.isNaN(since) ? 0 : Math.max(0, Math.round((now - since) / 1000));

/**
 * The settlement backlog, for the gauges and the alarm on settlement that stalls: each list's oldest entry is one
 * query of one item; the counts are COUNT queries over short lists. Read at scrape time or by the minute's cron only.
 */
export async function settlementBacklog(now = Date.now()): Promise<SettlementBacklog> {
  const [waiting, sealing, pending, watching, oldestPending, oldestWatched] = await Promise.all([
    unbatchedReceipts(1),
    workListSize("sealing"),
    workListSize("anchor"),
    workListSize("watch"),
    batchesToWork("anchor", 1),
    batchesToWork("watch", 1),
  ]);
  const pendingSince = oldestPending[0]?.pendingSince ?? oldestPending[0]?.sealedAt;
  return {
    batches: { sealing, pending, watching },
    oldestSeconds: {
      unbatched: age(waiting[0]?.issuedAt, now),
      anchoring: age(pendingSince ? Date.parse(pendingSince) : undefined, now),
      finality: age(oldestWatched[0]?.anchoredAt ? Date.parse(oldestWatched[0].anchoredAt) : undefined, now),
    },
  };
}

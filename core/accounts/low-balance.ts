import { derivedId } from "../ids.ts";
import { setting } from "../settings.ts";

/**
 * `account.low_balance.v1`, once per crossing. The stream sees every change of an account item with its old and new
 * image, in order per item, so a crossing (available at or above the threshold before, below it after) is seen on
 * exactly one change; the event is derived from that change (as in-place job events are, core/jobs/in-place.ts) and
 * costs the job path nothing: no read, no write, no extra item in the submit or completion transactions. A
 * redelivered stream batch derives it again under the same id (the account's version), which consumers drop.
 *
 * Only client and miner accounts are watched; the system accounts (treasury, clearing, platform fee) move by design.
 */
export interface LowBalanceEvent {
  id: string;
  accountId: string;
  at: Date;
  data: { account_id: string; available: number; held: number; threshold: number };
}

export function thresholdOf(item: Record<string, unknown>): number {
  const own = item.lowBalanceThreshold;
  return typeof own === "number" ? own : setting("COORD_LOW_BALANCE_THRESHOLD");
}

export function lowBalanceEvents(
  changes: { eventName?: string; oldImage?: Record<string, unknown>; newImage?: Record<string, unknown> }[],
): LowBalanceEvent[] {
  const out: LowBalanceEvent[] = [];
  for (const { eventName, oldImage, newImage } of changes) {
    if (eventName !== "MODIFY" || newImage?.entity !== "account" || !oldImage) continue;
    if (newImage.kind !== "client" && newImage.kind !== "miner") continue;
    const threshold = thresholdOf(newImage);
    const before = Number(oldImage.available ?? 0);
    const after = Number(newImage.available ?? 0);
    if (!(before >= threshold && after < threshold)) continue;
    const accountId = String(newImage.id);
    const at = new Date(typeof newImage.movedAt === "string" ? newImage.movedAt : 0);
    out.push({
      id: derivedId("evt", at.getTime(), `${accountId}#low_balance#${String(newImage.version)}`),
      accountId,
      at,
      data: { account_id: accountId, available: after, held: Number(newImage.held ?? 0), threshold },
    });
  }
  return out;
}

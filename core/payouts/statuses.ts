import type { EventType } from "../../events/catalog.ts";

export const PAYOUT_STATUSES = ["requested", "approved", "rejected"] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];

/**
 * Every move a payout can make, in one table (as the jobs' TRANSITIONS): each is one transaction that checks the
 * status it leaves, moves the money through the ledger and writes its event.
 */
export const PAYOUT_TRANSITIONS = {
  approve: { from: ["requested"], to: "approved", event: "payout.approved.v1" },
  reject: { from: ["requested"], to: "rejected", event: "payout.rejected.v1" },
} as const satisfies Record<string, { from: readonly PayoutStatus[]; to: PayoutStatus; event: EventType }>;
export type PayoutTransition = keyof typeof PAYOUT_TRANSITIONS;

export function canMove(t: PayoutTransition, from: PayoutStatus): boolean {
  return (PAYOUT_TRANSITIONS[t].from as readonly PayoutStatus[]).includes(from);
}

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDue } from "./batching.ts";
import {
  BATCH_STATUSES,
  BATCH_TRANSITIONS,
  type BatchStatus,
  canMoveBatch,
  proofStatus,
} from "./statuses.ts";

describe("batch states", () => {
  it("a batch goes sealing -> pending -> anchored -> confirmed, and back to pending only from the chain's side", () => {
    expect(canMoveBatch("seal", "sealing")).toBe(true);
    expect(canMoveBatch("anchor", "pending")).toBe(true);
    expect(canMoveBatch("confirm", "anchored")).toBe(true);
    expect(canMoveBatch("revert", "anchored")).toBe(true);
    expect(canMoveBatch("revert", "confirmed")).toBe(true);
    // Never sealed again, never confirmed without a transaction, never anchored twice at once.
    expect(Object.values(BATCH_TRANSITIONS).map((t) => t.to as string)).not.toContain("sealing");
    expect(canMoveBatch("confirm", "pending")).toBe(false);
    expect(canMoveBatch("anchor", "anchored")).toBe(false);
    expect(canMoveBatch("revert", "pending")).toBe(false);
  });

  it("every state is reachable from sealing, and a proof reports only pending, anchored or confirmed", () => {
    const reached = new Set<BatchStatus>(["sealing"]);
    for (let round = 0; round < BATCH_STATUSES.length; round++)
      for (const t of Object.values(BATCH_TRANSITIONS))
        if (t.from.some((f) => reached.has(f as BatchStatus))) reached.add(t.to);
    expect([...reached].sort()).toEqual([...BATCH_STATUSES].sort());
    expect(BATCH_STATUSES.map(proofStatus)).toEqual(["pending", "pending", "anchored", "confirmed"]);
    expect(proofStatus(undefined)).toBe("pending");
  });

  it("receipts make a batch when there are enough, or when the oldest is old enough, whichever first; never none", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: 1, max: 60 }),
        (waiting, size, ageMs, seconds) => {
          const now = new Date(1_700_000_000_000);
          const oldest = waiting > 0 ? new Date(now.getTime() - ageMs).toISOString() : undefined;
          expect(isDue(waiting, oldest, now, size, seconds)).toBe(
            waiting > 0 && (waiting >= size || ageMs >= seconds * 1000),
          );
        },
      ),
    );
  });
});

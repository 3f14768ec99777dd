import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lowBalanceEvents } from "./low-balance.ts";

const account = (available: number, version: number, extra: Record<string, unknown> = {}) => ({
  entity: "account",
  id: "acct_x",
  kind: "client",
  available,
  held: 0,
  version,
  movedAt: "2026-12-02T00:00:00.000Z",
  lowBalanceThreshold: 500,
  ...extra,
});

describe("the low-balance event", () => {
  it("fires once per crossing: exactly as many events as the balance's falls from at-or-above to below", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -2000, max: 2000 }), { maxLength: 40 }), (deltas) => {
        let available = 1000;
        let expected = 0;
        const changes = deltas.map((d, i) => {
          const old = account(available, i + 1);
          available += d;
          if (old.available >= 500 && available < 500) expected++;
          return { eventName: "MODIFY", oldImage: old, newImage: account(available, i + 2) };
        });
        const events = lowBalanceEvents(changes);
        expect(events).toHaveLength(expected);
        expect(new Set(events.map((e) => e.id)).size).toBe(expected);
      }),
    );
  });

  it("derives the same id from a redelivered change, and ignores system accounts and inserts", () => {
    const change = { eventName: "MODIFY", oldImage: account(600, 1), newImage: account(400, 2) };
    const [a] = lowBalanceEvents([change]);
    const [b] = lowBalanceEvents([change]);
    expect(a?.id).toBe(b?.id);
    expect(a?.data).toEqual({ account_id: "acct_x", available: 400, held: 0, threshold: 500 });
    const system = { ...change, newImage: account(400, 2, { kind: "admin" }) };
    expect(lowBalanceEvents([system])).toEqual([]);
    expect(lowBalanceEvents([{ ...change, eventName: "INSERT" }])).toEqual([]);
  });
});

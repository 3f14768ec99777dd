import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { refundSplit } from "./refund.ts";

describe("how a refund splits between the miner and the platform fee", () => {
  it("refunds in any number of parts take back exactly the fee in all, each part's share within the part", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 20 }),
        (price, bps, weights) => {
          const fee = Math.floor((price * bps) / 10_000);
          // Cut the price into parts proportional to the weights (the last part takes the remainder).
          const total = weights.reduce((a, b) => a + b, 0);
          const parts: number[] = [];
          let left = price;
          for (const [i, w] of weights.entries()) {
            const part = i === weights.length - 1 ? left : Math.min(left, Math.floor((price * w) / total));
            if (part > 0) parts.push(part);
            left -= part;
          }
          let before = 0;
          let fromFee = 0;
          let fromMiner = 0;
          for (const amount of parts) {
            const split = refundSplit(price, fee, before, amount);
            expect(split.fromFee).toBeGreaterThanOrEqual(0);
            expect(split.fromFee).toBeLessThanOrEqual(amount);
            expect(split.fromFee + split.fromMiner).toBe(amount);
            fromFee += split.fromFee;
            fromMiner += split.fromMiner;
            before += amount;
          }
          expect(fromFee).toBe(fee);
          expect(fromMiner).toBe(price - fee);
        },
      ),
    );
  });

  it("a partial refund of a 1000 charge with a 100 fee takes a tenth from the fee", () => {
    expect(refundSplit(1000, 100, 0, 250)).toEqual({ fromFee: 25, fromMiner: 225 });
    expect(refundSplit(1000, 100, 250, 750)).toEqual({ fromFee: 75, fromMiner: 675 });
  });
});

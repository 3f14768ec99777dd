import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  capped,
  type Fees,
  feeCeiling,
  feesOfStored,
  gweiToWei,
  replacementFees,
  storedFees,
} from "./fees.ts";

const wei = fc.bigInt({ min: 1n, max: 10n ** 13n });
const eip1559 = fc
  .tuple(wei, fc.bigInt({ min: 0n, max: 10n ** 13n }))
  .map(([tip, more]): Fees => ({ kind: "eip1559", maxFeePerGas: tip + more, maxPriorityFeePerGas: tip }));
const legacy = wei.map((gasPrice): Fees => ({ kind: "legacy", gasPrice }));
const fees = fc.oneof(eip1559, legacy);

/** What a pool wants of a replacement: 10% more on every field (geth's default price bump). */
function poolTakes(previous: Fees, next: Fees): boolean {
  const enough = (before: bigint, after: bigint) => after * 10n >= before * 11n;
  if (previous.kind === "legacy" || next.kind === "legacy")
    return enough(feeCeiling(previous), feeCeiling(next));
  return (
    enough(previous.maxFeePerGas, next.maxFeePerGas) &&
    enough(previous.maxPriorityFeePerGas, next.maxPriorityFeePerGas)
  );
}

describe("anchoring fees", () => {
  it("a replacement offers at least 10% more on every field, at least the chain's estimate, a tip within its cap, and never more than the cap", () => {
    fc.assert(
      fc.property(fees, fees, wei, (previous, estimate, cap) => {
        const next = replacementFees(previous, estimate, cap);
        if (!next) return;
        expect(next.kind).toBe(estimate.kind);
        expect(poolTakes(previous, next)).toBe(true);
        expect(feeCeiling(next) >= feeCeiling(estimate)).toBe(true);
        expect(feeCeiling(next) <= cap).toBe(true);
        if (next.kind === "eip1559") {
          expect(next.maxPriorityFeePerGas <= next.maxFeePerGas).toBe(true);
          if (estimate.kind === "eip1559")
            expect(next.maxPriorityFeePerGas >= estimate.maxPriorityFeePerGas).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("no replacement is offered when the cap leaves no room for one", () => {
    fc.assert(
      fc.property(fees, fees, (previous, estimate) => {
        // A cap at what the previous transaction offered: a 12.5% bump cannot fit.
        expect(replacementFees(previous, estimate, feeCeiling(previous))).toBeUndefined();
      }),
    );
  });

  it("a first send is held to the cap with its tip within its fee cap", () => {
    fc.assert(
      fc.property(fees, wei, (estimate, cap) => {
        const f = capped(estimate, cap);
        expect(feeCeiling(f) <= cap && feeCeiling(f) <= feeCeiling(estimate)).toBe(true);
        if (f.kind === "eip1559") expect(f.maxPriorityFeePerGas <= f.maxFeePerGas).toBe(true);
      }),
    );
  });

  it("stored fees read back as they were", () => {
    fc.assert(
      fc.property(fees, (f) => {
        expect(feesOfStored(storedFees(f))).toEqual(f);
      }),
    );
    expect(feesOfStored({})).toBeUndefined();
  });

  it("the cap converts from gwei to wei exactly", () => {
    expect(gweiToWei(500)).toBe(500_000_000_000n);
    expect(gweiToWei(0.000001)).toBe(1000n);
    expect(gweiToWei(1.5)).toBe(1_500_000_000n);
  });
});

/**
 * What an anchoring transaction offers per gas. EIP-1559 chains take a fee cap and a priority fee (tip); older ones
 * a single gas price. A transaction is replaced at its nonce only by one offering more on every field: geth's pool
 * wants at least 10% more (`--txpool.pricebump`), others more still, so a replacement offers 12.5% more than the
 * one it replaces, or what the chain asks now if that is higher. Nothing ever offers more than the cap.
 */
export type Fees =
  | { kind: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { kind: "legacy"; gasPrice: bigint };

/** Numerator and denominator of the bump: 9/8 is 12.5%. */
const BUMP = [9n, 8n] as const;

const bumped = (wei: bigint) => (wei * BUMP[0] + BUMP[1] - 1n) / BUMP[1];
const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** The chain's estimate, held to the cap (a tip is never above its fee cap). */
export function capped(estimate: Fees, capWei: bigint): Fees {
  if (estimate.kind === "legacy") return { kind: "legacy", gasPrice: min(estimate.gasPrice, capWei) };
  const maxFeePerGas = min(estimate.maxFeePerGas, capWei);
  return {
    kind: "eip1559",
    maxFeePerGas,
    maxPriorityFeePerGas: min(estimate.maxPriorityFeePerGas, maxFeePerGas),
  };
}

/**
 * The fees of a replacement for a transaction that offered `previous`, given the chain's estimate now, or undefined
 * when the cap leaves no room for a replacement the pool would take. A transaction of the other kind (the chain
 * changed its fee market) is compared on what it pays at most per gas.
 */
export function replacementFees(previous: Fees, estimate: Fees, capWei: bigint): Fees | undefined {
  if (estimate.kind === "legacy") {
    const before = previous.kind === "legacy" ? previous.gasPrice : previous.maxFeePerGas;
    const gasPrice = max(estimate.gasPrice, bumped(before));
    return gasPrice <= capWei ? { kind: "legacy", gasPrice } : undefined;
  }
  const [fee, tip] =
    previous.kind === "legacy"
      ? [previous.gasPrice, previous.gasPrice]
      : [previous.maxFeePerGas, previous.maxPriorityFeePerGas];
  const maxPriorityFeePerGas = max(estimate.maxPriorityFeePerGas, bumped(tip));
  const maxFeePerGas = max(max(estimate.maxFeePerGas, bumped(fee)), maxPriorityFeePerGas);
  return maxFeePerGas <= capWei ? { kind: "eip1559", maxFeePerGas, maxPriorityFeePerGas } : undefined;
}

/** What outbids both, field by field (either may be unknown). */
export function higherFees(a: Fees | undefined, b: Fees | undefined): Fees | undefined {
  if (!a || !b) return a ?? b;
  if (a.kind === "legacy" || b.kind === "legacy") return feeCeiling(a) >= feeCeiling(b) ? a : b;
  return {
    kind: "eip1559",
    maxFeePerGas: max(a.maxFeePerGas, b.maxFeePerGas),
    maxPriorityFeePerGas: max(a.maxPriorityFeePerGas, b.maxPriorityFeePerGas),
  };
}

/** The most a transaction with these fees pays per gas. */
export function feeCeiling(f: Fees): bigint {
  return f.kind === "legacy" ? f.gasPrice : f.maxFeePerGas;
}

/** Fees as the batch item stores them (decimal wei strings; a legacy price has no tip). */
export function storedFees(f: Fees): { txMaxFee: string; txTip?: string } {
  return f.kind === "legacy"
    ? { txMaxFee: f.gasPrice.toString() }
    : { txMaxFee: f.maxFeePerGas.toString(), txTip: f.maxPriorityFeePerGas.toString() };
}

export function feesOfStored(s: { txMaxFee?: string; txTip?: string }): Fees | undefined {
  if (s.txMaxFee === undefined) return undefined;
  return s.txTip === undefined
    ? { kind: "legacy", gasPrice: BigInt(s.txMaxFee) }
    : { kind: "eip1559", maxFeePerGas: BigInt(s.txMaxFee), maxPriorityFeePerGas: BigInt(s.txTip) };
}

/** COORD_CHAIN_MAX_FEE_GWEI in wei (fractions of a gwei kept to the wei). */
export function gweiToWei(gwei: number): bigint {
  const [whole = "0", frac = ""] = gwei.toFixed(9).split(".");
  return BigInt(whole) * 1_000_000_000n + BigInt(frac.padEnd(9, "0").slice(0, 9));
}

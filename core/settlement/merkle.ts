import { StandardMerkleTree } from "@openzeppelin/merkle-tree";

/**
 * The anchoring construction, pure and browser-safe (no node: modules): what a batch's root is, what a receipt's
 * proof is, and what the anchoring transaction's calldata carries. docs/settlement.md describes it for verifiers.
 *
 * - A leaf is a receipt's `receipt_sha256` (SHA-256 of the receipt document's RFC 8785 bytes) as a `bytes32`.
 * - The tree is OpenZeppelin's StandardMerkleTree over `["bytes32"]` leaves: a leaf's hash is
 *   `keccak256(keccak256(abi.encode(leaf)))` (double-hashed, so no inner node can pass for a leaf: second-preimage
 *   safe), an inner node is the keccak256 of its two children sorted, and the leaves are sorted by hash. A proof is
 *   the sibling hashes from the leaf up; `MerkleProof.verify` in OpenZeppelin's Solidity library checks the same.
 * - The root goes on chain as transaction calldata: `ANCHOR_TAG ‖ root ‖ attempt` (4 + 32 + 4 bytes).
 */

/** How a leaf is encoded before hashing: one `bytes32`. */
export const LEAF_ENCODING = ["bytes32"] as const;

/** The construction's name, as proofs state it. */
export const TREE_FORMAT = "openzeppelin-standard-v1";

/** The four bytes every anchoring transaction's calldata starts with: ASCII `RCPT`. */
export const ANCHOR_TAG = "0x52435054";

export type Hex32 = `0x${string}`;

const HEX32 = /^(?:0x)?([0-9a-fA-F]{64})$/;

/** A 32-byte value as lower-case `0x` hex (a receipt_sha256 may come without the prefix); throws otherwise. */
export function toBytes32(value: string): Hex32 {
  const m = HEX32.exec(value);
  if (!m) throw new Error(`not a 32-byte hex value: ${JSON.stringify(value).slice(0, 80)}`);
  return `0x${(m[1] as string).toLowerCase()}`;
}

export function isBytes32(value: unknown): value is string {
  return typeof value === "string" && HEX32.test(value);
}

export interface Tree {
  root: Hex32;
  /** The leaves, normalized and sorted (the form a batch stores). */
  leaves: Hex32[];
  /** The proof of one of the tree's leaves; throws for a leaf not in it. */
  proofOf(leaf: string): Hex32[];
}

/** The tree of a batch's leaves (distinct receipt hashes; at least one). */
export function buildTree(leaves: readonly string[]): Tree {
  if (leaves.length === 0) throw new Error("a tree needs at least one leaf");
  const sorted = [...new Set(leaves.map(toBytes32))].sort();
  const tree = StandardMerkleTree.of(
    sorted.map((l) => [l]),
    [...LEAF_ENCODING],
  );
  return {
    root: tree.root as Hex32,
    leaves: sorted,
    proofOf: (leaf) => tree.getProof([toBytes32(leaf)]) as Hex32[],
  };
}

/** The hash a leaf enters the tree as (double keccak of its ABI encoding). */
export function leafHash(leaf: string): Hex32 {
  return StandardMerkleTree.of([[toBytes32(leaf)]], [...LEAF_ENCODING]).root as Hex32;
}

/**
 * Whether `proof` takes `leaf` (a receipt_sha256) to `root`: the offline half of checking a settlement proof.
 * Malformed input is false, never a throw.
 */
export function verifyProof(leaf: string, proof: readonly string[], root: string): boolean {
  if (!isBytes32(leaf) || !isBytes32(root) || !Array.isArray(proof) || !proof.every(isBytes32)) return false;
  try {
    return StandardMerkleTree.verify(
      toBytes32(root),
      [...LEAF_ENCODING],
      [toBytes32(leaf)],
      proof.map(toBytes32),
    );
  } catch {
    return false;
  }
}

/** The anchoring transaction's calldata: tag, root, and the batch's anchor attempt (so a re-anchor is a new tx). */
export function anchorCalldata(root: string, attempt: number): `0x${string}` {
  if (!Number.isInteger(attempt) || attempt < 0 || attempt > 0xffffffff)
    throw new Error("attempt out of range");
  return `${ANCHOR_TAG}${toBytes32(root).slice(2)}${attempt.toString(16).padStart(8, "0")}`;
}

/** The root and attempt an anchoring calldata carries, or undefined when it is not one. */
export function parseAnchorCalldata(data: string): { root: Hex32; attempt: number } | undefined {
  const m = /^0x52435054([0-9a-fA-F]{64})([0-9a-fA-F]{8})$/.exec(data);
  if (!m) return undefined;
  return { root: `0x${(m[1] as string).toLowerCase()}`, attempt: Number.parseInt(m[2] as string, 16) };
}

import fc from "fast-check";
import { keccak256 } from "viem";
import { describe, expect, it } from "vitest";
import {
  ANCHOR_TAG,
  anchorCalldata,
  buildTree,
  leafHash,
  parseAnchorCalldata,
  toBytes32,
  verifyProof,
} from "./merkle.ts";

const hex32 = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => `0x${Buffer.from(b).toString("hex")}`);
const leafSets = fc.uniqueArray(hex32, { minLength: 1, maxLength: 40 });

describe("the anchoring construction", () => {
  it("every leaf's proof leads to the root, whatever the leaves and their order", () => {
    fc.assert(
      fc.property(leafSets, (leaves) => {
        const tree = buildTree(leaves);
        const shuffled = buildTree([...leaves].reverse());
        expect(shuffled.root).toBe(tree.root);
        // What a sealed batch stores (its sorted leaves) rebuilds the same tree.
        expect(buildTree(tree.leaves).root).toBe(tree.root);
        for (const leaf of leaves) expect(verifyProof(leaf, tree.proofOf(leaf), tree.root)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("a proof proves only its own leaf, only to its own root, only whole", () => {
    fc.assert(
      fc.property(leafSets, hex32, fc.nat(), (leaves, other, pick) => {
        fc.pre(!leaves.includes(other));
        const tree = buildTree(leaves);
        const leaf = leaves[pick % leaves.length] as string;
        const proof = tree.proofOf(leaf);
        expect(verifyProof(other, proof, tree.root)).toBe(false);
        expect(verifyProof(leaf, proof, buildTree([...leaves, other]).root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyProof(leaf, proof.slice(1), tree.root)).toBe(false);
          const flipped = [...proof];
          flipped[0] = `0x${(proof[0] as string).slice(2, 65)}${(proof[0] as string).endsWith("0") ? "1" : "0"}`;
          expect(verifyProof(leaf, flipped, tree.root)).toBe(false);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("an inner node cannot pass for a leaf (leaves are double-hashed: no second preimage)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(hex32, { minLength: 2, maxLength: 16 }), (leaves) => {
        const tree = buildTree(leaves);
        const leaf = leaves[0] as string;
        const [sibling, ...rest] = tree.proofOf(leaf);
        // The parent of the leaf and its sibling, offered as a leaf with the rest of the path.
        const pair = [leafHash(leaf), sibling as string].sort();
        const parent = keccak256(`0x${pair.map((h) => h.slice(2)).join("")}`);
        expect(verifyProof(parent, rest, tree.root)).toBe(false);
      }),
      { numRuns: 40 },
    );
  });

  it("a batch of one is its leaf's hash, with an empty proof", () => {
    const leaf = `0x${"ab".repeat(32)}`;
    const tree = buildTree([leaf]);
    expect(tree.root).toBe(leafHash(leaf));
    expect(tree.proofOf(leaf)).toEqual([]);
    expect(verifyProof(leaf, [], tree.root)).toBe(true);
  });

  it("leaves are taken with or without 0x, in any case; malformed input is false, never a throw", () => {
    const bare = "CD".repeat(32);
    expect(toBytes32(bare)).toBe(`0x${"cd".repeat(32)}`);
    const tree = buildTree([bare, "ef".repeat(32)]);
    expect(verifyProof(bare, tree.proofOf(bare), tree.root)).toBe(true);
    expect(verifyProof("nope", [], tree.root)).toBe(false);
    expect(verifyProof(bare, ["0x12"], tree.root)).toBe(false);
    expect(verifyProof(bare, tree.proofOf(bare), "")).toBe(false);
    expect(verifyProof(bare, null as unknown as string[], tree.root)).toBe(false);
    expect(() => buildTree([])).toThrow();
  });

  it("the calldata carries the tag, the root and the attempt, and nothing else parses as one", () => {
    fc.assert(
      fc.property(hex32, fc.integer({ min: 0, max: 0xffffffff }), (root, attempt) => {
        const data = anchorCalldata(root, attempt);
        expect(data.startsWith(ANCHOR_TAG)).toBe(true);
        expect(data.length).toBe(2 + 2 * (4 + 32 + 4));
        expect(parseAnchorCalldata(data)).toEqual({ root, attempt });
        expect(parseAnchorCalldata(`${data}00`)).toBeUndefined();
        expect(parseAnchorCalldata(`0x00000000${data.slice(10)}`)).toBeUndefined();
      }),
    );
    // A re-anchor of the same root is a different transaction.
    const root = `0x${"11".repeat(32)}`;
    expect(anchorCalldata(root, 1)).not.toBe(anchorCalldata(root, 2));
  });
});

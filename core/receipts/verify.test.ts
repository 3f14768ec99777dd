import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalBytes } from "./canonical.ts";
import { rawPublicKey, signBytes } from "./ed25519.ts";
import { RECEIPT_TYPE } from "./statements.ts";
import { type PublishedKey, verifyReceipt } from "./verify.ts";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const key = (over: Partial<PublishedKey> = {}): PublishedKey => ({
  key_id: "rk_test",
  public_key: rawPublicKey(publicKey),
  status: "retired",
  valid_from: "2026-01-01T00:00:00.000Z",
  valid_until: "2026-06-01T00:00:00.000Z",
  ...over,
});
const doc = (issued_at: string, extra: Record<string, unknown> = {}) => {
  const receipt = {
    type: RECEIPT_TYPE,
    receipt_id: "rcpt_x",
    key_id: "rk_test",
    issued_at,
    miner_signature: null,
    ...extra,
  };
  return { receipt, signature: signBytes(privateKey, canonicalBytes(receipt)) };
};

describe("the offline receipt verifier", () => {
  it("accepts a receipt issued while its key was valid, with the rollout grace after retirement", async () => {
    expect(await verifyReceipt(doc("2026-03-01T00:00:00.000Z"), [key()])).toMatchObject({ valid: true });
    expect(await verifyReceipt(doc("2026-06-01T00:30:00.000Z"), [key()])).toMatchObject({ valid: true });
  });

  it("refuses a receipt dated outside its key's validity", async () => {
    for (const at of ["2025-12-31T00:00:00.000Z", "2026-06-01T02:00:00.000Z"]) {
      expect((await verifyReceipt(doc(at), [key()])).reasons).toEqual(["key_not_valid_at_issue"]);
    }
  });

  it("a current key has no end; any added or changed field breaks the signature", async () => {
    expect(
      await verifyReceipt(doc("2030-01-01T00:00:00.000Z"), [key({ status: "current", valid_until: null })]),
    ).toMatchObject({
      valid: true,
    });
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue(), async (field, value) => {
        const d = doc("2026-03-01T00:00:00.000Z");
        const changed = { ...d, receipt: { ...d.receipt, [`x_${field}`]: value } };
        expect((await verifyReceipt(changed, [key()])).valid).toBe(false);
      }),
      { numRuns: 50 },
    );
  });
});

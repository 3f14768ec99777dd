import { base64url, canonicalBytes } from "./canonical.ts";
import { RECEIPT_TYPE, resultStatement } from "./statements.ts";

/**
 * The offline receipt verifier: needs only the document and the published keys (`GET /v1/receipts/keys`). WebCrypto
 * Ed25519 and `canonicalize` only, so it runs in Node 20+ and in browsers alike; the coordinator's own
 * `POST /v1/receipts/verify` and the SDK use this one function.
 */

export interface PublishedKey {
  key_id: string;
  /** Raw 32-byte Ed25519 public key, base64url. */
  public_key: string;
  status: "current" | "retired";
  valid_from: string;
  /** A retired key signed receipts until then (a rollout's grace after it is honoured); null: no end known. */
  valid_until: string | null;
}

export interface Verdict {
  valid: boolean;
  /** Why not, as stable codes (empty when valid). */
  reasons: string[];
  receipt_id?: string;
  key_id?: string;
}

/** Clock skew allowed before a key's `valid_from`, and the rollout grace after a retired key's `valid_until`. */
const SKEW_MS = 5 * 60_000;
const ROLLOUT_GRACE_MS = 60 * 60_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

async function ed25519Verify(publicKey: string, data: Uint8Array, signature: string): Promise<boolean> {
  try {
    const sig = base64url.decode(signature);
    const raw = base64url.decode(publicKey);
    if (sig.length !== 64 || raw.length !== 32) return false;
    const key = await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, sig, data);
  } catch {
    return false;
  }
}

export async function verifyReceipt(document: unknown, keys: readonly PublishedKey[]): Promise<Verdict> {
  if (!isObj(document) || !isObj(document.receipt) || typeof document.signature !== "string") {
    return { valid: false, reasons: ["malformed"] };
  }
  const receipt = document.receipt;
  const reasons: string[] = [];
  const out = (): Verdict => ({
    valid: reasons.length === 0,
    reasons,
    ...(typeof receipt.receipt_id === "string" ? { receipt_id: receipt.receipt_id } : {}),
    ...(typeof receipt.key_id === "string" ? { key_id: receipt.key_id } : {}),
  });
  if (receipt.type !== RECEIPT_TYPE) reasons.push("wrong_type");
  const key = keys.find((k) => k.key_id === receipt.key_id);
  if (!key) {
    reasons.push("unknown_key");
    return out();
  }
  let bytes: Uint8Array;
  try {
    bytes = canonicalBytes(receipt);
  } catch {
    return { valid: false, reasons: ["malformed"] };
  }
  if (!(await ed25519Verify(key.public_key, bytes, document.signature))) reasons.push("bad_signature");
  const issued = Date.parse(String(receipt.issued_at));
  if (
    Number.isNaN(issued) ||
    issued < Date.parse(key.valid_from) - SKEW_MS ||
    (key.valid_until !== null && issued > Date.parse(key.valid_until) + ROLLOUT_GRACE_MS)
  ) {
    reasons.push("key_not_valid_at_issue");
  }
  const cosign = receipt.miner_signature;
  if (cosign !== null && cosign !== undefined) {
    const ok =
      isObj(cosign) &&
      typeof cosign.public_key === "string" &&
      typeof cosign.signature === "string" &&
      (await ed25519Verify(
        cosign.public_key,
        canonicalBytes(
          resultStatement({
            job_id: String(receipt.job_id),
            attempt: Number(receipt.attempt),
            claim_token_sha256: String(cosign.claim_token_sha256),
            output_sha256: String(receipt.output_sha256),
          }),
        ),
        cosign.signature,
      ));
    if (!ok) reasons.push("bad_miner_signature");
  }
  return out();
}

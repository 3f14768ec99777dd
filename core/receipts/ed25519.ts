import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { base64url } from "./canonical.ts";

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo: what precedes the raw 32 bytes. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
/** The DER prefix of an Ed25519 PKCS#8 private key: what precedes the raw 32-byte seed. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** An Ed25519 public key from PEM, or from base64 / base64url of its raw 32 bytes; throws if it is not one. */
export function publicKeyFrom(text: string): KeyObject {
  const key = text.includes("BEGIN")
    ? createPublicKey(text)
    : createPublicKey({ key: Buffer.concat([SPKI_PREFIX, rawBytes(text, 32)]), format: "der", type: "spki" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("not an Ed25519 key");
  return key;
}

/** An Ed25519 private key from PEM (PKCS#8), or from base64 / base64url of its raw 32-byte seed. */
export function privateKeyFrom(text: string): KeyObject {
  const key = text.includes("BEGIN")
    ? createPrivateKey(text)
    : createPrivateKey({
        key: Buffer.concat([PKCS8_PREFIX, rawBytes(text, 32)]),
        format: "der",
        type: "pkcs8",
      });
  if (key.asymmetricKeyType !== "ed25519") throw new Error("not an Ed25519 key");
  return key;
}

function rawBytes(text: string, length: number): Buffer {
  const bytes = Buffer.from(base64url.decode(text.trim()));
  if (bytes.length !== length) throw new Error(`expected ${length} bytes, got ${bytes.length}`);
  return bytes;
}

/** The raw 32 bytes of a public key, base64url: how the coordinator publishes keys and embeds them in receipts. */
export function rawPublicKey(key: KeyObject): string {
  const der = key.export({ format: "der", type: "spki" });
  return base64url.encode(new Uint8Array(der.subarray(SPKI_PREFIX.length)));
}

/** A new key pair's private seed, base64url (what `COORD_RECEIPT_SIGNING_KEY` and a miner's key file hold). */
export function newPrivateSeed(): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  return base64url.encode(new Uint8Array(der.subarray(PKCS8_PREFIX.length)));
}

export function signBytes(key: KeyObject, bytes: Uint8Array): string {
  return base64url.encode(new Uint8Array(sign(null, bytes, key)));
}

/** Whether `signature` (base64 or base64url) is `key`'s over `bytes`; a malformed signature is simply false. */
export function verifyBytes(key: KeyObject, bytes: Uint8Array, signature: string): boolean {
  try {
    const sig = base64url.decode(signature);
    return sig.length === 64 && verify(null, bytes, key, sig);
  } catch {
    return false;
  }
}

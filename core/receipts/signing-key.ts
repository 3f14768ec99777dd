import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { canonicalBytes } from "./canonical.ts";
import { privateKeyFrom, rawPublicKey, signBytes } from "./ed25519.ts";
import { publishKey } from "./store.ts";

/**
 * The coordinator's receipt signing key: `COORD_RECEIPT_SIGNING_KEY` (PEM PKCS#8, or base64url of the 32-byte seed;
 * offline generated once and kept under `.coord/`, on AWS an SST secret). Its id is derived from the public key, so a
 * key names itself and a receipt's `key_id` cannot point at another key's bytes. The public key is published in the
 * table (`GET /v1/receipts/keys`) before the first receipt a process signs with it, and stays published after a
 * rotation, so every receipt ever issued stays verifiable.
 */
export interface SigningKey {
  id: string;
  publicKey: string;
  sign(value: unknown): string;
}

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

/** `rk_` and 26 base32 characters of the SHA-256 of the raw public key. */
export function keyIdOf(rawPublic: string): string {
  const digest = createHash("sha256").update(rawPublic).digest();
  let id = "";
  for (let i = 0; i < 26; i++) id += ALPHABET[(digest[i] as number) % 32];
  return `rk_${id}`;
}

let cached: { source: string; key: SigningKey; published: Promise<void> } | undefined;

export function signingKey(): SigningKey {
  const source = process.env.COORD_RECEIPT_SIGNING_KEY;
  if (!source) throw new Error("COORD_RECEIPT_SIGNING_KEY is not set: receipts cannot be signed");
  if (cached?.source === source) return cached.key;
  let priv: KeyObject;
  try {
    priv = privateKeyFrom(source);
  } catch (err) {
    throw new Error(`COORD_RECEIPT_SIGNING_KEY is not an Ed25519 private key: ${(err as Error).message}`);
  }
  const publicKey = rawPublicKey(createPublicKey(priv));
  const key: SigningKey = {
    id: keyIdOf(publicKey),
    publicKey,
    sign: (value) => signBytes(priv, canonicalBytes(value)),
  };
  cached = { source, key, published: publishKey(key.id, key.publicKey, new Date()) };
  // A failed publish is tried again by the next caller rather than remembered.
  cached.published.catch(() => {
    if (cached?.key === key) cached = undefined;
  });
  return key;
}

/** The signing key, once its public half is published (one conditional write per process and key). */
export async function publishedSigningKey(): Promise<SigningKey> {
  const key = signingKey();
  await cached?.published;
  return key;
}

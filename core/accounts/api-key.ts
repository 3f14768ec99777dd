import { createHash, randomBytes } from "node:crypto";

/** Key kinds by prefix. The prefix says what a key is before any lookup. */
export const KEY_PREFIXES = { client: "ck", miner: "mk", admin: "ak" } as const;
export type AccountKind = keyof typeof KEY_PREFIXES;

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function base62(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = "";
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(43, "0");
}

function checksum(body: string): string {
  return createHash("sha256").update(body).digest("hex").slice(0, 6);
}

/**
 * `<prefix>_<43 base62 chars of 32 random bytes><6 hex checksum>`. The checksum lets us reject a mistyped key
 * without touching the database.
 */
export function generateApiKey(kind: AccountKind): string {
  const body = `${KEY_PREFIXES[kind]}_${base62(randomBytes(32))}`;
  return `${body}${checksum(body)}`;
}

export type KeyShape = { ok: true; kind: AccountKind } | { ok: false; reason: "prefix" | "checksum" };

export function inspectApiKey(key: string): KeyShape {
  const m = /^(ck|mk|ak)_([0-9A-Za-z]{43})([0-9a-f]{6})$/.exec(key);
  const prefix = key.slice(0, 2);
  const kind = (Object.keys(KEY_PREFIXES) as AccountKind[]).find((k) => KEY_PREFIXES[k] === prefix);
  if (!kind || key[2] !== "_") return { ok: false, reason: "prefix" };
  if (!m || checksum(`${m[1]}_${m[2]}`) !== m[3]) return { ok: false, reason: "checksum" };
  return { ok: true, kind };
}

/** Keys are stored only as SHA-256. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

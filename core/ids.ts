import { randomBytes } from "node:crypto";

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

function encodeTime(ms: number, length: number): string {
  let out = "";
  let n = ms;
  for (let i = 0; i < length; i++) {
    out = CROCKFORD[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

function encodeRandom(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += CROCKFORD[b % 32];
  return out;
}

/**
 * Prefixed, time-sortable ids (ULID layout in lower-case Crockford base32): `job_01jd...`. Sorting by id sorts by
 * creation time to the millisecond, which the listings rely on.
 */
export function newId(prefix: string, now = Date.now()): string {
  return `${prefix}_${encodeTime(now, 10)}${encodeRandom(16)}`;
}

export const ID_PATTERN = /^[a-z]{2,8}_[0-9a-z]{26}$/;

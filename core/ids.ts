import { createHash, randomBytes } from "node:crypto";
import { NotFoundError } from "./errors.ts";

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

/**
 * An id of the same layout whose random part is a hash of `seed`: the same seed always gives the same id, so that
 * two writers (the stream relay publishing an event from an item's image, and the transaction that later files it
 * in the history) name one event alike.
 */
export function derivedId(prefix: string, ms: number, seed: string): string {
  const digest = createHash("sha256").update(seed).digest();
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[(digest[i] as number) % 32];
  return `${prefix}_${encodeTime(ms, 10)}${rand}`;
}

export const ID_PATTERN = /^[a-z]{2,8}_[0-9a-z]{26}$/;

/**
 * Whether `id` has the shape of an id this service issues (with `prefix`, when given). Every lookup by an id that a
 * caller sent (a path parameter, a header, a body field naming an object) checks this first, so that a malformed
 * or oversized id is a plain 404 and never reaches a table key (DynamoDB refuses keys over 2 KB with a 500).
 */
export function isId(id: unknown, prefix?: string): id is string {
  return (
    typeof id === "string" && ID_PATTERN.test(id) && (prefix === undefined || id.startsWith(`${prefix}_`))
  );
}

/** `id` if it has the shape of a `prefix` id, else the 404 a lookup of it would give (`what not found`). */
export function knownId(id: unknown, prefix: string, what: string): string {
  if (!isId(id, prefix)) throw new NotFoundError(what);
  return id;
}

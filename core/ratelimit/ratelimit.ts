import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";

/**
 * Rate limits per key lineage and route class, held in DynamoDB so that they hold across Lambda instances, and spent
 * locally from tokens reserved in batches so that a busy key costs one write per 20 requests, not one per request.
 *
 * Each (lineage, class) has one item holding a GCRA "theoretical arrival time" (`tat`, microseconds): the token
 * bucket expressed as a single timestamp. With an emission interval T = 1/rate and a burst B, k tokens fit at `now`
 * when max(tat, now) + k*T <= now + B*T, and then tat becomes max(tat, now) + k*T. DynamoDB expressions cannot
 * compute max(), so the two cases are two conditional updates:
 *   - advance (the bucket is in use):  SET tat = tat + k*T   IF tat >= now AND tat <= now + (B-k)*T
 *   - reset   (idle, new or stale):    SET tat = now + k*T   IF attribute_not_exists(tat) OR tat < now
 * A failed condition returns the stored item (ReturnValuesOnConditionCheckFailure), which says which case applies,
 * how many tokens are left (fewer than k: take those), or that the bucket is empty (and for how long: Retry-After).
 * An item whose tat is in the past is the same as no item, so a stale item is ignored whether or not TTL
 * (`expiresAt`) has removed it yet (DynamoDB Local never does).
 *
 * Batches: an instance reserves tokens for a bucket and spends them from memory. The batch grows while the key is
 * busy (4, 16, 64, ... up to `reserveMax`: a tenth of the burst, at least 20; an idle key strands at most 3 tokens;
 * "busy" means the last batch was spent before it lapsed) and an unspent token lapses RESERVE_TTL_MS (60 s) after it
 * was reserved, so that even a miner long-polling once every 20 s costs one write per 20 polls. Over-admission
 * bound: every admitted request spends a token the shared bucket handed out, so a key is never admitted more than
 * its bucket allows; a token may only be spent up to 60 s after the bucket released it, so across N instances at
 * most N x reserveMax requests (N x a tenth of the burst) in any window land later than the bucket's own schedule
 * would place them. Unspent tokens are lost (under-admission, at most reserveMax per instance and bucket a minute).
 *
 * Cost: one conditional UpdateItem (1 WCU, item < 1 KB) per reservation when this instance guessed the case right
 * (it remembers the last tat it saw per bucket, a hint that only picks which write to try first; correctness comes
 * from the conditions alone), two when it guessed wrong, and one (failed) per refusal that the purse cannot answer.
 * No reads.
 */

/** Tokens the first reservation of an idle bucket takes (at most this many are stranded if no more requests come). */
export const RESERVE_FIRST = 4;
/** How much each next reservation of a busy bucket grows. */
export const RESERVE_GROWTH = 4;
/** Most tokens one reservation takes: a tenth of the burst, and at least 20 (one write per 20 requests or fewer). */
export const reserveMax = (limit: Limit) => Math.max(20, Math.floor(limit.burst / 10));
/** How long reserved tokens may be spent. */
export const RESERVE_TTL_MS = 60_000;

export const ROUTE_CLASSES = ["submit", "poll", "read", "write", "admin"] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export interface Limit {
  /** Requests allowed at once from an idle bucket. */
  burst: number;
  /** Sustained requests per second once the burst is spent. */
  perSecond: number;
}

/** Generous defaults; override per class with COORD_RATE_<CLASS>=<burst>/<per-second> (or `off`). */
export const DEFAULT_LIMITS: Record<RouteClass, Limit> = {
  submit: { burst: 300, perSecond: 50 },
  poll: { burst: 1000, perSecond: 200 },
  read: { burst: 600, perSecond: 100 },
  write: { burst: 300, perSecond: 50 },
  admin: { burst: 600, perSecond: 100 },
};

export function envName(routeClass: RouteClass): string {
  return `COORD_RATE_${routeClass.toUpperCase()}`;
}

/** The limit in force for a class (read from the environment each call), or null when the class is `off`. */
export function limitFor(routeClass: RouteClass): Limit | null {
  const name = envName(routeClass);
  const raw = process.env[name]?.trim();
  if (!raw) return DEFAULT_LIMITS[routeClass];
  if (raw === "off") return null;
  const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(raw);
  const burst = Number(m?.[1]);
  const perSecond = Number(m?.[2]);
  if (!m || burst < 1 || perSecond <= 0) {
    throw new Error(
      `${name} must be '<burst>/<per-second>' (e.g. 300/50) or 'off', got ${JSON.stringify(raw)}`,
    );
  }
  return { burst, perSecond };
}

export interface Decision {
  allowed: boolean;
  limit: Limit;
  /** Requests that would still be allowed right now. */
  remaining: number;
  /** When refused: seconds until one more request fits (at least 1). */
  retryAfterSeconds: number;
  /** DynamoDB operations this decision took (conditional writes; a read only if the store returned no old item). */
  writes: number;
  reads: number;
}

/** Last tat seen per bucket in this instance: only a hint for which conditional write to try first. */
const hints = new Map<string, number>();
/** Tokens this instance reserved per bucket and has not spent yet. */
interface Purse {
  tokens: number;
  /** When the tokens lapse (ms). */
  until: number;
  /** Size of the last reservation: the next one doubles it while the key stays busy. */
  batch: number;
  /** The bucket's remaining tokens (shared, as of the reservation), for RateLimit-Remaining. */
  sharedLeft: number;
  /** The bucket was found empty: refuse from memory until then (ms). */
  emptyUntil: number;
  /** A reservation in flight: concurrent requests of the bucket wait for it instead of writing too. */
  pending?: Promise<void>;
}
const purses = new Map<string, Purse>();
const MAX_HINTS = 10_000;

function remember(bucket: string, tat: number): void {
  if (hints.size >= MAX_HINTS && !hints.has(bucket)) hints.clear();
  hints.set(bucket, tat);
}

function storedTat(item: Record<string, unknown> | undefined): number | undefined {
  const tat = item?.tat as { N?: string } | number | undefined;
  if (typeof tat === "number") return tat;
  return tat?.N === undefined ? undefined : Number(tat.N);
}

interface Reservation {
  /** Tokens taken (0: the bucket is empty). */
  granted: number;
  /** Tokens the bucket still holds after this reservation. */
  left: number;
  /** When refused: the tat that refused it. */
  tat: number;
  writes: number;
  reads: number;
}

/** Takes up to `want` tokens from the shared bucket in one conditional write (two if the hint was wrong). */
async function reserve(bucket: string, limit: Limit, want: number, nowMs: number): Promise<Reservation> {
  const key = keys.rateLimit(bucket);
  const interval = Math.max(1, Math.round(1_000_000 / limit.perSecond));
  const now = nowMs * 1000;
  const span = limit.burst * interval;
  const expiresAt = Math.ceil((now + span) / 1_000_000) + 60;
  let k = Math.max(1, Math.min(want, limit.burst));
  let mode: "advance" | "reset" = (hints.get(bucket) ?? 0) >= now ? "advance" : "reset";
  let writes = 0;
  let reads = 0;
  while (writes < 4) {
    writes++;
    try {
      const out = await ddb().send(
        new UpdateCommand({
          TableName: config.tableName,
          Key: key,
          ...(mode === "advance"
            ? {
                UpdateExpression: "SET tat = tat + :t, expiresAt = :exp",
                ConditionExpression: "tat >= :now AND tat <= :highest",
                ExpressionAttributeValues: {
                  ":t": k * interval,
                  ":exp": expiresAt,
                  ":now": now,
                  ":highest": now + span - k * interval,
                },
              }
            : {
                UpdateExpression: "SET tat = :first, expiresAt = :exp, entity = :e",
                ConditionExpression: "attribute_not_exists(tat) OR tat < :now",
                ExpressionAttributeValues: {
                  ":first": now + k * interval,
                  ":exp": expiresAt,
                  ":now": now,
                  ":e": "rateLimit",
                },
              }),
          ReturnValues: "UPDATED_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      const tat = storedTat(out.Attributes) ?? now + k * interval;
      remember(bucket, tat);
      return { granted: k, left: Math.max(0, Math.floor((now + span - tat) / interval)), tat, writes, reads };
    } catch (err) {
      if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
      let old = storedTat((err as { Item?: Record<string, unknown> }).Item);
      if (old === undefined && mode === "advance") {
        // Either the item does not exist (reset applies) or the store did not return it: look.
        reads++;
        const got = await ddb().send(
          new GetCommand({ TableName: config.tableName, Key: key, ConsistentRead: true }),
        );
        old = storedTat(got.Item);
      }
      if (old === undefined) {
        mode = "reset";
        continue;
      }
      remember(bucket, old);
      if (old < now) {
        mode = "reset";
        continue;
      }
      const room = Math.floor((now + span - old) / interval);
      if (room < 1) return { granted: 0, left: 0, tat: old, writes, reads };
      mode = "advance";
      k = Math.min(k, room);
    }
  }
  // Four lost races in a row: the bucket is under heavy concurrent use, so treat it as full for a moment.
  return { granted: 0, left: 0, tat: now + span + 1_000_000, writes, reads };
}

/**
 * Takes one request from the bucket of (`subject`, `routeClass`). `subject` is the key lineage id. Spends a token this
 * instance holds when it can, else reserves a batch (one write). Throws only on DynamoDB errors (the HTTP middleware
 * fails open on those).
 */
export async function consume(
  subject: string,
  routeClass: RouteClass,
  limit: Limit | null = limitFor(routeClass),
  nowMs = Date.now(),
): Promise<Decision | undefined> {
  if (!limit) return undefined;
  const bucket = `${subject}#${routeClass}`;
  const interval = Math.max(1, Math.round(1_000_000 / limit.perSecond));
  const cost = { writes: 0, reads: 0 };
  const refused = (emptyUntilMs: number): Decision => ({
    allowed: false,
    limit,
    remaining: 0,
    retryAfterSeconds: Math.max(1, Math.ceil((emptyUntilMs - nowMs) / 1000)),
    ...cost,
  });
  for (;;) {
    const purse = purses.get(bucket) ?? newPurse(bucket);
    if (purse.tokens > 0 && nowMs < purse.until) {
      purse.tokens--;
      return {
        allowed: true,
        limit,
        remaining: purse.sharedLeft + purse.tokens,
        retryAfterSeconds: 0,
        ...cost,
      };
    }
    // Only time refills a bucket (other instances only take from it), so a known-empty one is refused from memory.
    if (nowMs < purse.emptyUntil) return refused(purse.emptyUntil);
    if (purse.pending) {
      await purse.pending;
      continue;
    }
    // Busy (the last batch was spent before it lapsed): four times the batch; idle: start again small.
    const batch =
      nowMs < purse.until ? Math.min(reserveMax(limit), purse.batch * RESERVE_GROWTH) : RESERVE_FIRST;
    const reserving = reserve(bucket, limit, batch, nowMs);
    purse.pending = reserving.then(
      () => undefined,
      () => undefined,
    );
    let r: Reservation;
    try {
      r = await reserving;
    } finally {
      purse.pending = undefined;
    }
    cost.writes += r.writes;
    cost.reads += r.reads;
    if (r.granted === 0) {
      // One token fits again once tat is within the burst: tat - (B-1)*T <= now.
      purse.emptyUntil = (r.tat - (limit.burst - 1) * interval) / 1000;
      return refused(purse.emptyUntil);
    }
    purse.tokens = r.granted - 1;
    purse.until = nowMs + RESERVE_TTL_MS;
    purse.batch = r.granted;
    purse.sharedLeft = r.left;
    return { allowed: true, limit, remaining: r.left + purse.tokens, retryAfterSeconds: 0, ...cost };
  }
}

/** Per-instance buckets of `consumeLocal`: the theoretical arrival time (µs) by bucket. */
const localTats = new Map<string, number>();

/**
 * Takes one request from a bucket held in this instance's memory only, with no DynamoDB write: for heartbeats, which
 * are themselves one write and whose budget allows no other. The same GCRA as the shared buckets. Over-admission
 * bound: across N instances a key gets at most N times its limit (N x burst at once), each admitted heartbeat still
 * one conditional write on the miner's own item.
 */
export function consumeLocal(
  subject: string,
  routeClass: RouteClass,
  limit: Limit | null = limitFor(routeClass),
  nowMs = Date.now(),
): Decision | undefined {
  if (!limit) return undefined;
  const bucket = `${subject}#${routeClass}#local`;
  const interval = Math.max(1, Math.round(1_000_000 / limit.perSecond));
  const now = nowMs * 1000;
  const span = limit.burst * interval;
  const tat = Math.max(localTats.get(bucket) ?? now, now);
  if (tat + interval > now + span) {
    return {
      allowed: false,
      limit,
      remaining: 0,
      retryAfterSeconds: Math.max(1, Math.ceil((tat + interval - now - span) / 1_000_000)),
      writes: 0,
      reads: 0,
    };
  }
  if (localTats.size >= MAX_HINTS && !localTats.has(bucket)) localTats.clear();
  localTats.set(bucket, tat + interval);
  return {
    allowed: true,
    limit,
    remaining: Math.max(0, Math.floor((now + span - tat - interval) / interval)),
    retryAfterSeconds: 0,
    writes: 0,
    reads: 0,
  };
}

function newPurse(bucket: string): Purse {
  if (purses.size >= MAX_HINTS) purses.clear();
  const purse: Purse = { tokens: 0, until: 0, batch: RESERVE_FIRST, sharedLeft: 0, emptyUntil: 0 };
  purses.set(bucket, purse);
  return purse;
}

/** Forget the per-instance hints and reserved tokens (tests, to simulate a fresh Lambda instance). */
export function forgetHints(): void {
  hints.clear();
  purses.clear();
  localTats.clear();
}

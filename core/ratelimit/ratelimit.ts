import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";

/**
 * Rate limits per key lineage and route class, held in DynamoDB so that they hold across Lambda instances.
 *
 * Each (lineage, class) has one item holding a GCRA "theoretical arrival time" (`tat`, microseconds): the token
 * bucket expressed as a single timestamp. With an emission interval T = 1/rate and a burst B, a request at `now` fits
 * when max(tat, now) + T <= now + B*T, and then tat becomes max(tat, now) + T. DynamoDB expressions cannot compute
 * max(), so the two cases are two conditional updates:
 *   - advance (the bucket is in use):  SET tat = tat + T   IF tat >= now AND tat <= now + (B-1)*T
 *   - reset   (idle, new or stale):    SET tat = now + T   IF attribute_not_exists(tat) OR tat < now
 * A failed condition returns the stored item (ReturnValuesOnConditionCheckFailure), which says exactly which case
 * applies or that the request is over the limit (and for how long: Retry-After). An item whose tat is in the past is
 * the same as no item, so a stale item is ignored whether or not TTL (`expiresAt`) has removed it yet (DynamoDB Local
 * never does).
 *
 * Cost: one conditional UpdateItem (1 WCU, item < 1 KB) per allowed request when this instance guessed the case right
 * (it remembers the last tat it saw per bucket, a hint that only picks which write to try first; correctness comes
 * from the conditions alone), two when it guessed wrong, and one (failed, still 1 WCU) per refused request. No reads.
 */

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

/**
 * Takes one request from the bucket of (`subject`, `routeClass`). `subject` is the key lineage id. Throws only on
 * DynamoDB errors (the HTTP middleware fails open on those).
 */
export async function consume(
  subject: string,
  routeClass: RouteClass,
  limit: Limit | null = limitFor(routeClass),
  nowMs = Date.now(),
): Promise<Decision | undefined> {
  if (!limit) return undefined;
  const bucket = `${subject}#${routeClass}`;
  const key = keys.rateLimit(bucket);
  const interval = Math.max(1, Math.round(1_000_000 / limit.perSecond));
  const now = nowMs * 1000;
  const span = limit.burst * interval;
  const highest = now + span - interval;
  const expiresAt = Math.ceil((now + span) / 1_000_000) + 60;
  let mode: "advance" | "reset" = (hints.get(bucket) ?? 0) >= now ? "advance" : "reset";
  let writes = 0;
  let reads = 0;
  const refused = (tat: number): Decision => ({
    allowed: false,
    limit,
    remaining: 0,
    retryAfterSeconds: Math.max(1, Math.ceil((tat - highest) / 1_000_000)),
    writes,
    reads,
  });
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
                  ":t": interval,
                  ":exp": expiresAt,
                  ":now": now,
                  ":highest": highest,
                },
              }
            : {
                UpdateExpression: "SET tat = :first, expiresAt = :exp, entity = :e",
                ConditionExpression: "attribute_not_exists(tat) OR tat < :now",
                ExpressionAttributeValues: {
                  ":first": now + interval,
                  ":exp": expiresAt,
                  ":now": now,
                  ":e": "rateLimit",
                },
              }),
          ReturnValues: "UPDATED_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      const tat = storedTat(out.Attributes) ?? now + interval;
      remember(bucket, tat);
      return {
        allowed: true,
        limit,
        remaining: Math.max(0, Math.floor((now + span - tat) / interval)),
        retryAfterSeconds: 0,
        writes,
        reads,
      };
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
      if (old > highest) return refused(old);
      mode = old < now ? "reset" : "advance";
    }
  }
  // Four lost races in a row: the bucket is under heavy concurrent use, so treat it as full for a moment.
  return refused(highest + 1_000_000);
}

/** Forget the per-instance hints (tests, to simulate a fresh Lambda instance). */
export function forgetHints(): void {
  hints.clear();
}

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { batchGetAll, hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";
import type { TransactItem } from "../db/transaction.ts";
import type { Job } from "../jobs/model.ts";
import { type Miner, MinerItem, type MinerStatus } from "./miners.ts";

/**
 * The miner store: the one module that speaks DynamoDB about miners. It owns the miner item's reads and pages, the
 * heartbeat's single write, and the named transaction items that change a miner with other items (registration,
 * marking offline, taking and giving back a slot).
 */

/** A miner by id (strongly consistent unless asked otherwise). */
export async function readMiner(id: string, consistent = true): Promise<Miner | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.miner(id), ConsistentRead: consistent }),
  );
  return out.Item ? v.parse(MinerItem, out.Item) : undefined;
}

/** Several miners by id, in one request per 100 (a ring's candidates); those that do not exist are left out. */
export async function readMiners(ids: string[]): Promise<Map<string, Miner>> {
  const items = await batchGetAll(ids.map((id) => keys.miner(id)));
  return new Map(items.map((i) => v.parse(MinerItem, i)).map((m) => [m.id, m]));
}

/** The pool a miner is in now, if any (a registration moving it needs the old one). */
export async function poolOf(id: string): Promise<string | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.miner(id),
      ConsistentRead: true,
      ProjectionExpression: "#pool",
      ExpressionAttributeNames: { "#pool": "pool" },
    }),
  );
  return out.Item?.pool as string | undefined;
}

/** A registration's write of the miner item: every field set (undefined ones removed), its counters kept. */
export function registrationItem(id: string, fields: Record<string, unknown>, now: string): TransactItem {
  const set = Object.keys(fields).filter((k) => fields[k] !== undefined);
  const remove = Object.keys(fields).filter((k) => fields[k] === undefined);
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ":zero": 0, ":now": now, ":empty": {}, ":false": false };
  const sets = set.map((k, i) => {
    names[`#f${i}`] = k;
    values[`:f${i}`] = fields[k];
    return `#f${i} = :f${i}`;
  });
  const removes = remove.map((k, i) => {
    names[`#r${i}`] = k;
    return `#r${i}`;
  });
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.miner(id),
      UpdateExpression: `SET ${[...sets, "active = if_not_exists(active, :zero)", "held = if_not_exists(held, :empty)", "stops = if_not_exists(stops, :empty)", "createdAt = if_not_exists(createdAt, :now)"].join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
      ConditionExpression: "attribute_not_exists(banned) OR banned = :false",
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}

/**
 * The heartbeat's one write: status, last heartbeat, liveness lease, status-index keys, and the stop orders taken
 * (or kept), conditional on the account and not banned (and, with `keepDraining`, not draining). Returns the miner
 * as it was before, or as it was when the condition refused.
 */
export async function heartbeatWrite(
  minerId: string,
  w: {
    status: MinerStatus;
    at: string;
    leaseUntil: string;
    accountId: string;
    takeStops: boolean;
    keepDraining: boolean;
    statusKeys: { GSI2PK: string; GSI2SK: string };
  },
): Promise<{ ok: boolean; item?: Record<string, unknown> }> {
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.miner(minerId),
        UpdateExpression: `SET #s = :s, lastHeartbeatAt = :now, leaseUntil = :lease, updatedAt = :now, GSI2PK = :pk, GSI2SK = :sk, held = if_not_exists(held, :empty), stops = ${w.takeStops ? ":empty" : "if_not_exists(stops, :empty)"}`,
        ConditionExpression: `accountId = :acct AND (attribute_not_exists(banned) OR banned = :false)${w.keepDraining ? " AND #s <> :draining" : ""}`,
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: {
          ":s": w.status,
          ":now": w.at,
          ":lease": w.leaseUntil,
          ":pk": w.statusKeys.GSI2PK,
          ":sk": w.statusKeys.GSI2SK,
          ":acct": w.accountId,
          ":false": false,
          ":empty": {},
          ...(w.keepDraining ? { ":draining": "draining" } : {}),
        },
        ReturnValues: "ALL_OLD",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { ok: true, item: out.Attributes };
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    // The refused item comes back in DynamoDB's wire form (the document client does not convert errors).
    const raw = (err as { Item?: Record<string, AttributeValue> }).Item;
    return { ok: false, item: raw ? unmarshall(raw) : undefined };
  }
}

/** Miners of one status-index shard that went silent before `before` (the offline sweep; see `silentAt`). */
export async function silentInShard(status: MinerStatus, shard: number, before: string): Promise<Miner[]> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: "GSI2",
      KeyConditionExpression: "GSI2PK = :pk AND GSI2SK < :before",
      ExpressionAttributeValues: { ":pk": keys.minersByStatus(status, shard, "").GSI2PK, ":before": before },
      Limit: 100,
    }),
  );
  // Keys only in the index: read the silent miners themselves (few: they are the ones to mark offline).
  return (await hydrate(out.Items ?? [])).map((item) => v.parse(MinerItem, item));
}

/** One page of an account's miners by name (a keys-only index: the miners are read back). */
export async function accountMinersPage(
  accountId: string,
  limit: number,
  cursor?: string,
): Promise<{ miners: Miner[]; nextCursor?: string }> {
  const page = await queryPage({
    index: "GSI4",
    partition: keys.minersByAccount(accountId, "").GSI4PK,
    limit,
    cursor,
  });
  return {
    miners: (await hydrate(page.items)).map((i) => v.parse(MinerItem, i)),
    nextCursor: page.next_cursor ?? undefined,
  };
}

/** Marks the miner offline unless it heartbeated since `miner` was read. */
export function offlineItem(miner: Miner, sk: { GSI2PK: string; GSI2SK: string }, now: string): TransactItem {
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.miner(miner.id),
      UpdateExpression: "SET #s = :off, updatedAt = :now, GSI2PK = :pk, GSI2SK = :sk",
      ConditionExpression: "lastHeartbeatAt = :seen AND #s <> :off",
      ExpressionAttributeNames: { "#s": "status" },
      ExpressionAttributeValues: {
        ":off": "offline",
        ":now": now,
        ":pk": sk.GSI2PK,
        ":sk": sk.GSI2SK,
        ":seen": miner.lastHeartbeatAt,
      },
    },
  };
}

/**
 * Slot item for a claim: the miner must be online and below its concurrency. The job joins the miner's `held`
 * map (what a heartbeat renews and reports) and the miner's liveness lease moves to the job's. What the claim took
 * from the (cached) miner must still be so: it still runs the service, at the price the job is billed at, and in the
 * pool (or the public) the job is for; a changed registration refuses the claim, which then reads the miner afresh.
 */
export function takeSlot(miner: Miner, job: Job, token: string, leaseUntil: string): TransactItem {
  const price = miner.prices[job.service];
  const guards = [
    "contains(services, :svc)",
    price === undefined ? "attribute_not_exists(prices.#svc)" : "prices.#svc = :price",
    job.constraints.pool ? "#pool = :pool" : "(attribute_not_exists(#pool) OR accepts_public = :true)",
  ];
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.miner(miner.id),
      UpdateExpression: "SET active = active + :one, held.#job = :token, leaseUntil = :lease",
      ConditionExpression: ["active < concurrency AND #s = :online", ...guards].join(" AND "),
      ExpressionAttributeNames: { "#s": "status", "#job": job.id, "#svc": job.service, "#pool": "pool" },
      ExpressionAttributeValues: {
        ":one": 1,
        ":online": "online",
        ":token": token,
        ":lease": leaseUntil,
        ":svc": job.service,
        ...(price === undefined ? {} : { ":price": price }),
        ...(job.constraints.pool ? { ":pool": job.constraints.pool } : { ":true": true }),
      },
    },
  };
}

/**
 * Gives a held job's slot back: the job leaves the miner's `held` map. When the coordinator ends the job rather than
 * the miner (cancel, timeout, lease lost), `stop` records why, for the miner's next heartbeat.
 */
export function releaseSlot(job: Pick<Job, "id" | "minerId" | "claimToken">, stop?: string): TransactItem {
  const names: Record<string, string> = { "#job": job.id };
  const values: Record<string, unknown> = { ":one": 1, ":zero": 0 };
  let set = "SET active = active - :one";
  if (stop && job.claimToken) {
    names["#tok"] = job.claimToken;
    values[":stop"] = { job_id: job.id, reason: stop };
    set += ", stops.#tok = :stop";
  }
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.miner(job.minerId as string),
      UpdateExpression: `${set} REMOVE held.#job`,
      ConditionExpression: "active > :zero",
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    },
  };
}

/**
 * Copies a pool's `accepts_public` onto one of its miners, conditional on the miner still being in the pool, no newer
 * pool version having reached it, and (when opening to public work) the miner not having opted out. False when the
 * condition refused (nothing to copy).
 */
export async function syncPoolOnto(
  minerId: string,
  pool: { id: string; version: number },
  acceptsPublic: boolean,
): Promise<boolean> {
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.miner(minerId),
        UpdateExpression: "SET accepts_public = :ap, poolVersion = :v",
        ExpressionAttributeNames: { "#pool": "pool" },
        ConditionExpression: `#pool = :p AND (attribute_not_exists(poolVersion) OR poolVersion <= :v)${acceptsPublic ? " AND (attribute_not_exists(publicOptOut) OR publicOptOut = :false)" : ""}`,
        ExpressionAttributeValues: {
          ":ap": acceptsPublic,
          ":v": pool.version,
          ":p": pool.id,
          ...(acceptsPublic ? { ":false": false } : {}),
        },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

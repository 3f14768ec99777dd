import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { shardOf } from "../db/shard.ts";
import { type TransactItem, TransactionRefused, transact } from "../db/transaction.ts";
import type { Capabilities } from "../matching/constraints.ts";
import type { Connection } from "./connections.ts";

/**
 * The doorbell's connection store on AWS: the one module that speaks DynamoDB about open sockets (the offline stack
 * keeps them in its process instead, core/doorbell/connections.ts). A connection is written as
 * - `MINER#<minerId>` / `CONN#<connectionId>`: under its miner, so a pushed stop finds the miner's sockets in one Query;
 * - `CONN#<connectionId>` / `CONN`: the pointer, since `$default` and `$disconnect` know only the connection id;
 * - `DOORBELL#<service>#<shard>` / `<connectedAt ISO>#<connectionId>`, one per service: a ring's candidates are one
 *   Query per shard, with no GSI (every projected attribute would be paid on every write).
 * Every item carries the whole connection (a few ids), so each read answers from the items it finds. All are written
 * in one transaction at `$connect` and deleted in one at `$disconnect`; none matches the stream filters
 * (functions/stream/filters.ts), so connecting and disconnecting never invoke the stream handler.
 */

/**
 * API Gateway closes a connection after 2 hours; its items live 10 minutes longer, then TTL removes them. `$disconnect`
 * is best effort (API Gateway may drop it), so TTL is what finally forgets a socket nobody closed.
 */
export const CONNECTION_TTL_MS = 130 * 60_000;

/**
 * Shards of a service's partition, by miner id: a large fleet on one service spreads over this many partitions. Small
 * and fixed: a ring reads up to one Query per shard, and changing it would orphan items written under another count
 * (until their TTL).
 */
export const DOORBELL_SHARDS = 4;

const ConnectionItem = v.object({
  connectionId: v.string(),
  minerId: v.string(),
  accountId: v.string(),
  keyId: v.string(),
  services: v.array(v.string()),
  caps: v.custom<Capabilities>(
    (x) => typeof x === "object" && x !== null && Array.isArray((x as Capabilities).services),
  ),
  connectedAt: v.number(),
  expiresAt: v.number(),
});

/** The TTL (epoch seconds) of a connection's items. */
const expiresAtOf = (connectedAt: number) => Math.floor((connectedAt + CONNECTION_TTL_MS) / 1000);

/** DynamoDB Local never expires TTL items, and AWS deletes them up to days late: reads drop what has lapsed. */
function live(item: Record<string, unknown> | undefined, now = Date.now()): Connection | undefined {
  if (!item) return undefined;
  const parsed = v.safeParse(ConnectionItem, item);
  if (!parsed.success || parsed.output.expiresAt * 1000 <= now) return undefined;
  const { connectionId, minerId, accountId, keyId, services, caps, connectedAt } = parsed.output;
  return { id: connectionId, minerId, accountId, keyId, services, caps, connectedAt };
}

function liveAll(items: Record<string, unknown>[] | undefined): Connection[] {
  const now = Date.now();
  return (items ?? []).map((i) => live(i, now)).filter((c): c is Connection => c !== undefined);
}

/** Every key of a connection's items: the pointer, the miner's, one per service. */
function keysOf(conn: Pick<Connection, "id" | "minerId" | "services" | "connectedAt">) {
  const at = new Date(conn.connectedAt).toISOString();
  const shard = shardOf(conn.minerId, DOORBELL_SHARDS);
  return {
    pointer: keys.connection(conn.id),
    miner: keys.minerConnection(conn.minerId, conn.id),
    serving: conn.services.map((s) => keys.doorbell(s, shard, at, conn.id)),
  };
}

/** Records an open connection (one transaction: at most 2 + 50 services items, under the 100-item limit). */
export async function add(conn: Connection): Promise<void> {
  const body = {
    entity: "doorbellConnection",
    connectionId: conn.id,
    minerId: conn.minerId,
    accountId: conn.accountId,
    keyId: conn.keyId,
    services: conn.services,
    caps: conn.caps,
    connectedAt: conn.connectedAt,
    expiresAt: expiresAtOf(conn.connectedAt),
  };
  const put = (key: { PK: string; SK: string }): TransactItem => ({
    Put: { TableName: config.tableName, Item: { ...key, ...body } },
  });
  const k = keysOf(conn);
  // Unconditional puts: connection ids are API Gateway's and unique, and a retried `$connect` writes the same items.
  await transact({ pointer: put(k.pointer), miner: put(k.miner), serving: k.serving.map(put) });
}

/** The raw pointer item, expired or not (a removal deletes lapsed items too). */
async function readPointer(connectionId: string): Promise<Record<string, unknown> | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.connection(connectionId), ConsistentRead: true }),
  );
  return out.Item;
}

/**
 * A connection by id (one strongly consistent GetItem: a miner's first frame may follow its `$connect` at once), or
 * undefined if it was never recorded, was removed or has lapsed.
 */
export async function get(connectionId: string): Promise<Connection | undefined> {
  return live(await readPointer(connectionId));
}

/**
 * Forgets a connection: reads the pointer (for the miner and services), then deletes every item in one transaction.
 * Idempotent (`$disconnect` and a failed ring may both remove it); a removal racing another on the same items is
 * tried once more, and whatever still remains after that lapses with its TTL.
 */
export async function remove(connectionId: string): Promise<void> {
  const item = await readPointer(connectionId);
  const parsed = v.safeParse(ConnectionItem, item);
  if (!parsed.success) return;
  const { minerId, services, connectedAt } = parsed.output;
  const k = keysOf({ id: connectionId, minerId, services, connectedAt });
  const del = (key: { PK: string; SK: string }): TransactItem => ({
    Delete: { TableName: config.tableName, Key: key },
  });
  const items = { pointer: del(k.pointer), miner: del(k.miner), serving: k.serving.map(del) };
  try {
    await transact(items);
  } catch (err) {
    if (!(err instanceof TransactionRefused && err.conflicted)) throw err;
    await transact(items);
  }
}

/**
 * Up to `limit` live connections of miners serving `service`: one Query per shard, starting at a random shard so
 * that rings spread over the fleet, moving on until `limit` is reached. Within a shard the oldest connections come
 * first; the sort key's lower bound skips the lapsed ones without reading them.
 */
export async function serving(
  service: string,
  limit: number,
  accept: (conn: Connection) => boolean = () => true,
): Promise<Connection[]> {
  const found: Connection[] = [];
  const since = new Date(Date.now() - CONNECTION_TTL_MS).toISOString();
  const first = Math.floor(Math.random() * DOORBELL_SHARDS);
  for (let i = 0; i < DOORBELL_SHARDS && found.length < limit; i++) {
    const pk = keys.doorbell(service, (first + i) % DOORBELL_SHARDS, "", "").PK;
    let start: Record<string, unknown> | undefined;
    do {
      const out = await ddb().send(
        new QueryCommand({
          TableName: config.tableName,
          KeyConditionExpression: "PK = :pk AND SK > :since",
          ExpressionAttributeValues: { ":pk": pk, ":since": since },
          // Pages of at least 25: `accept` (a job's constraints) may leave out many of them.
          Limit: Math.max(25, limit - found.length),
          ExclusiveStartKey: start,
        }),
      );
      found.push(...liveAll(out.Items).filter(accept));
      start = out.LastEvaluatedKey;
    } while (start && found.length < limit);
  }
  return found.slice(0, limit);
}

/** The live connections of one miner (one Query of its partition; a miner has a few sockets at most). */
export async function ofMiner(minerId: string): Promise<Connection[]> {
  const prefix = keys.minerConnection(minerId, "");
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :conn)",
      ExpressionAttributeValues: { ":pk": prefix.PK, ":conn": prefix.SK },
    }),
  );
  return liveAll(out.Items);
}

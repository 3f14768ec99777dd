import * as v from "valibot";
import { cursorWithin, nextCursor, type Page, pageQuery } from "../accounts/page.ts";
import { readAccount } from "../accounts/store.ts";
import { config } from "../config.ts";
import type { Ctx, Principal } from "../context.ts";
import { batchGetAll } from "../db/batch.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut, type TransactItem } from "../db/outbox.ts";
import { queryPage } from "../db/page.ts";
import { type NamedItems, TransactionRefused, transact } from "../db/transaction.ts";
import { ForbiddenError, NotFoundError, QuotaExceededError, ValidationError } from "../errors.ts";
import {
  findReplay,
  idempotencyRecord,
  parseIdempotencyKey,
  requestHash,
} from "../idempotency/idempotency.ts";
import { ID_PATTERN, isId, newId } from "../ids.ts";
import { syncPoolOnto } from "../miners/store.ts";
import { parse } from "../validate.ts";
import { membershipsPage, membershipsPartition, readMembership, readPool, rosterPage } from "./store.ts";

/**
 * Private pools.
 *
 * A pool is owned by the miner account that creates it: its miners (and only its miners) may join it, and it invites
 * client accounts as members, whose jobs may then target it (`constraints.pool`). Matching
 * (core/matching/constraints.ts) sends a job that names a pool only to that pool's miners, and a pooled miner takes
 * public jobs only if its pool opts in (`accepts_public`). Another account's pool that the caller is not in is 404.
 *
 * Storage, all in the pool's partition `POOL#<id>`: the pool item (`SK=POOL`), one membership item per account
 * (`SK=MEMBER#<account>`, the owner's included, indexed on GSI1 `ACCOUNT#<account>#POOLS` for "my pools"), and a
 * roster item per attached miner (`SK=MINER#<miner>`), written in the miner's registration transaction, so that a
 * change of `accepts_public` reaches every miner of the pool with one strongly consistent query.
 *
 * Every change of the pool or its membership is one transaction that checks the pool's `version`, bumps it, and
 * writes the outbox event (seq = the new version) beside the pool.
 */

/** A pool has at most this many members besides its owner (bounds listings and keeps the pool item's writes cool). */
export const MAX_POOL_MEMBERS = 1000;
const RETRIES = 4;

const PoolItem = v.object({
  id: v.string(),
  name: v.string(),
  ownerAccountId: v.string(),
  acceptsPublic: v.boolean(),
  memberCount: v.number(),
  version: v.number(),
  createdAt: v.string(),
  updatedAt: v.string(),
});
export type Pool = v.InferOutput<typeof PoolItem>;

const MemberItem = v.object({
  poolId: v.string(),
  accountId: v.string(),
  role: v.picklist(["owner", "member"] as const),
  addedAt: v.string(),
});
type Member = v.InferOutput<typeof MemberItem>;

const RosterItem = v.object({
  poolId: v.string(),
  minerId: v.string(),
  accountId: v.string(),
  name: v.string(),
  publicOptOut: v.optional(v.boolean()),
  attachedAt: v.string(),
});

export type PoolRole = Member["role"];

export function poolView(pool: Pool, role: PoolRole) {
  return {
    id: pool.id,
    name: pool.name,
    owner_account_id: pool.ownerAccountId,
    accepts_public: pool.acceptsPublic,
    member_count: pool.memberCount,
    role,
    created_at: pool.createdAt,
    updated_at: pool.updatedAt,
  };
}
export type PoolView = ReturnType<typeof poolView>;

function memberView(m: Member) {
  return { account_id: m.accountId, role: m.role, added_at: m.addedAt };
}

// ---- input ----

const PoolName = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1, "name must not be empty"),
  v.maxLength(100, "name is at most 100 characters"),
);

export const CreatePoolInput = v.object({
  name: PoolName,
  /** Whether the pool's miners also take public jobs (jobs that name no pool). Default: no. */
  accepts_public: v.optional(v.boolean(), false),
});

export const UpdatePoolInput = v.pipe(
  v.object({ name: v.optional(PoolName), accepts_public: v.optional(v.boolean()) }),
  v.check((b) => b.name !== undefined || b.accepts_public !== undefined, "send name or accepts_public"),
);

export const AddMemberInput = v.object({
  account_id: v.pipe(v.string(), v.regex(ID_PATTERN, "account_id must be an account id (acct_...)")),
});

export const ListPoolsQuery = v.object(pageQuery(100));

// ---- reads ----

async function getPoolItem(id: string): Promise<Pool | undefined> {
  if (!isId(id, "pool")) return undefined;
  const item = await readPool(id);
  return item ? v.parse(PoolItem, item) : undefined;
}

async function getMembership(poolId: string, accountId: string): Promise<Member | undefined> {
  if (!isId(poolId, "pool") || !isId(accountId, "acct")) return undefined;
  const item = await readMembership(poolId, accountId);
  return item ? v.parse(MemberItem, item) : undefined;
}

/** The pool and the caller's role in it; 404 if the caller neither owns nor belongs to it (or it does not exist). */
async function access(principal: Principal, poolId: string): Promise<{ pool: Pool; role: PoolRole }> {
  const [pool, membership] = await Promise.all([
    getPoolItem(poolId),
    getMembership(poolId, principal.accountId),
  ]);
  if (!pool || !membership) throw new NotFoundError("pool");
  return { pool, role: membership.role };
}

async function ownerAccess(principal: Principal, poolId: string, what: string): Promise<Pool> {
  const { pool, role } = await access(principal, poolId);
  if (role !== "owner") throw new ForbiddenError(`only the pool's owner can ${what}`);
  return pool;
}

export async function getPool(principal: Principal, poolId: string): Promise<PoolView> {
  const { pool, role } = await access(principal, poolId);
  return poolView(pool, role);
}

async function poolsById(ids: string[]): Promise<Map<string, Pool>> {
  const found = new Map<string, Pool>();
  for (const item of await batchGetAll(
    ids.map((id) => keys.pool(id)),
    { consistent: true },
  )) {
    const pool = v.parse(PoolItem, item);
    found.set(pool.id, pool);
  }
  return found;
}

/** The pools the caller owns or belongs to, newest first: one GSI1 query and one BatchGetItem per page. */
export async function listPools(principal: Principal, query: unknown): Promise<Page<PoolView>> {
  const { cursor, limit } = parse(ListPoolsQuery, query, "query");
  const start = cursorWithin(cursor, { GSI1PK: membershipsPartition(principal.accountId) });
  const out = await membershipsPage(principal.accountId, limit ?? 50, start);
  const memberships = out.items.map((i) => v.parse(MemberItem, i));
  const pools = memberships.length ? await poolsById(memberships.map((m) => m.poolId)) : new Map();
  return {
    items: memberships.flatMap((m) => {
      const pool = pools.get(m.poolId);
      return pool ? [poolView(pool, m.role)] : [];
    }),
    next_cursor: nextCursor(out.next),
  };
}

/** The pool's members, the owner first (owner only). */
export async function listMembers(principal: Principal, poolId: string, query: unknown) {
  const { cursor, limit } = parse(ListPoolsQuery, query, "query");
  await ownerAccess(principal, poolId, "list its members");
  const page = await queryPage({
    partition: keys.pool(poolId).PK,
    skPrefix: "MEMBER#",
    limit: limit ?? 100,
    cursor,
    consistent: true,
  });
  const members = page.items.map((i) => v.parse(MemberItem, i));
  members.sort((a, b) => (a.role === b.role ? 0 : a.role === "owner" ? -1 : 1));
  return { items: members.map(memberView), next_cursor: page.next_cursor };
}

/** The miners attached to the pool (owner only). */
export async function listPoolMiners(principal: Principal, poolId: string, query: unknown) {
  const { cursor, limit } = parse(ListPoolsQuery, query, "query");
  await ownerAccess(principal, poolId, "list its miners");
  const page = await queryPage({
    partition: keys.pool(poolId).PK,
    skPrefix: "MINER#",
    limit: limit ?? 100,
    cursor,
    consistent: true,
  });
  return {
    items: page.items.map((i) => {
      const r = v.parse(RosterItem, i);
      return {
        miner_id: r.minerId,
        name: r.name,
        public_opt_out: r.publicOptOut ?? false,
        attached_at: r.attachedAt,
      };
    }),
    next_cursor: page.next_cursor,
  };
}

// ---- writes ----

function membershipPut(pool: Pool, accountId: string, role: PoolRole, at: string): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: {
        ...keys.poolMember(pool.id, accountId),
        ...keys.poolsByAccount(accountId, pool.id),
        entity: "poolMember",
        poolId: pool.id,
        accountId,
        role,
        addedAt: at,
      },
      ConditionExpression: "attribute_not_exists(PK)",
    },
  };
}

/** The pool item's update for a change: conditional on the version read, bumps it. */
function poolUpdate(
  pool: Pool,
  set: Record<string, unknown>,
  extra?: { condition: string; values: Record<string, unknown> },
): TransactItem {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ":v": pool.version, ":next": pool.version + 1, ...extra?.values };
  const sets = Object.entries(set).map(([k, val], i) => {
    names[`#f${i}`] = k;
    values[`:f${i}`] = val;
    return `#f${i} = :f${i}`;
  });
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.pool(pool.id),
      UpdateExpression: `SET ${[...sets, "version = :next"].join(", ")}`,
      ConditionExpression: `version = :v${extra ? ` AND ${extra.condition}` : ""}`,
      ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
      ExpressionAttributeValues: values,
    },
  };
}

/**
 * Creates a pool owned by the caller's (miner) account, with the owner's membership item, in one transaction with
 * `pool.created.v1`. With an Idempotency-Key, a repeat of the same request replays the first answer.
 */
export async function createPool(
  principal: Principal,
  raw: unknown,
  ctx: Ctx,
  opts: { idempotencyKey?: string } = {},
): Promise<{ pool: PoolView; replayed: boolean }> {
  if (principal.kind !== "miner") {
    throw new ForbiddenError("only miner accounts own pools: a pool's miners are its owner's");
  }
  const body = parse(CreatePoolInput, raw, "body");
  const idemKey = parseIdempotencyKey(opts.idempotencyKey);
  const hash = idemKey ? requestHash("POST /v1/pools", raw) : undefined;
  if (idemKey) {
    const replay = await findReplay<PoolView>(principal.accountId, idemKey, hash as string);
    if (replay) return { pool: replay, replayed: true };
  }
  const now = new Date();
  const at = now.toISOString();
  const pool: Pool = {
    id: newId("pool", now.getTime()),
    name: body.name,
    ownerAccountId: principal.accountId,
    acceptsPublic: body.accepts_public,
    memberCount: 0,
    version: 1,
    createdAt: at,
    updatedAt: at,
  };
  const view = poolView(pool, "owner");
  const items: NamedItems = {
    pool: {
      Put: {
        TableName: config.tableName,
        Item: { ...keys.pool(pool.id), entity: "pool", ...pool },
        ConditionExpression: "attribute_not_exists(PK)",
      },
    },
    owner: membershipPut(pool, principal.accountId, "owner", at),
    event: outboxPut({
      type: "pool.created.v1",
      subjectPk: keys.pool(pool.id).PK,
      subject: pool.id,
      seq: 1,
      accountId: principal.accountId,
      correlationId: ctx.correlationId,
      actor: actorOf(ctx),
      data: {
        pool_id: pool.id,
        owner_account_id: principal.accountId,
        name: pool.name,
        accepts_public: pool.acceptsPublic,
      },
      at: now,
    }),
    idempotency: idemKey
      ? idempotencyRecord(principal.accountId, idemKey, hash as string, view, now)
      : undefined,
  };
  try {
    await transact(items);
  } catch (err) {
    if (idemKey && err instanceof TransactionRefused && err.refusedBy("idempotency")) {
      const replay = await findReplay<PoolView>(principal.accountId, idemKey, hash as string);
      if (replay) return { pool: replay, replayed: true };
    }
    throw err;
  }
  return { pool: view, replayed: false };
}

/** Runs `attempt` on a fresh read of the pool, again if the pool changed underneath (a concurrent change). */
async function withFreshPool<T>(read: () => Promise<Pool>, attempt: (pool: Pool) => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    const pool = await read();
    try {
      return await attempt(pool);
    } catch (err) {
      if (!(err instanceof TransactionRefused) || !err.refusedBy("pool") || i >= RETRIES) throw err;
    }
  }
}

/**
 * Renames the pool or changes `accepts_public` (owner only). A change of `accepts_public` is then copied onto every
 * miner of the pool (see `syncMiners`); sending the current value again re-runs that copy, which repairs miners a
 * crashed request left behind.
 */
export async function updatePool(principal: Principal, poolId: string, raw: unknown, ctx: Ctx) {
  const body = parse(UpdatePoolInput, raw ?? {}, "body");
  const pool = await withFreshPool(
    () => ownerAccess(principal, poolId, "change it"),
    async (current) => {
      const next: Pool = {
        ...current,
        name: body.name ?? current.name,
        acceptsPublic: body.accepts_public ?? current.acceptsPublic,
      };
      if (next.name === current.name && next.acceptsPublic === current.acceptsPublic) return current;
      const now = new Date();
      next.version = current.version + 1;
      next.updatedAt = now.toISOString();
      await transact({
        pool: poolUpdate(current, {
          name: next.name,
          acceptsPublic: next.acceptsPublic,
          updatedAt: next.updatedAt,
        }),
        event: outboxPut({
          type: "pool.updated.v1",
          subjectPk: keys.pool(current.id).PK,
          subject: current.id,
          seq: next.version,
          accountId: current.ownerAccountId,
          correlationId: ctx.correlationId,
          actor: actorOf(ctx),
          data: { pool_id: current.id, name: next.name, accepts_public: next.acceptsPublic },
          at: now,
        }),
      });
      return next;
    },
  );
  if (body.accepts_public !== undefined) await syncMiners(pool);
  return poolView(pool, "owner");
}

/**
 * Copies the pool's `accepts_public` onto each miner on its roster (a pooled miner's `accepts_public` is what
 * matching reads). Each write is conditional: the miner is still in this pool, no newer pool version reached it
 * first, and a miner that opted out of public work stays out.
 */
async function syncMiners(pool: Pool): Promise<void> {
  let start: Record<string, unknown> | undefined;
  do {
    const out = await rosterPage(pool.id, start);
    const roster = out.items.map((i) => v.parse(RosterItem, i));
    for (let i = 0; i < roster.length; i += 16) {
      await Promise.all(
        roster.slice(i, i + 16).map(async (r) => {
          // A refusal (moved to another pool, re-registered against a newer version, opted out) copies nothing.
          await syncPoolOnto(r.minerId, pool, pool.acceptsPublic && !r.publicOptOut);
        }),
      );
    }
    start = out.next;
  } while (start);
}

/**
 * Adds a client account to the pool (owner only): its jobs may then target the pool. 201 when added, 200 when it
 * was a member already. An unknown account, or one that is not a client account, is 422 on `body.account_id`.
 */
export async function addMember(
  principal: Principal,
  poolId: string,
  raw: unknown,
  ctx: Ctx,
): Promise<{ status: 200 | 201; member: ReturnType<typeof memberView> }> {
  const body = parse(AddMemberInput, raw, "body");
  await ownerAccess(principal, poolId, "add members");
  const account = await readAccount(body.account_id);
  if (!account) {
    throw new ValidationError([{ path: "body.account_id", message: "no account with this id" }]);
  }
  if (account.kind !== "client") {
    throw new ValidationError([
      {
        path: "body.account_id",
        message:
          "members are client accounts (their jobs may target the pool); the pool's miners are its owner's",
      },
    ]);
  }
  const existing = await getMembership(poolId, body.account_id);
  if (existing) return { status: 200, member: memberView(existing) };
  return withFreshPool(
    () => ownerAccess(principal, poolId, "add members"),
    async (pool) => {
      if (pool.memberCount >= MAX_POOL_MEMBERS) {
        throw new QuotaExceededError(`a pool has at most ${MAX_POOL_MEMBERS} members`, {
          limit: MAX_POOL_MEMBERS,
          current: pool.memberCount,
          retry_after_seconds: 0,
        });
      }
      const now = new Date();
      const at = now.toISOString();
      const items: NamedItems = {
        pool: poolUpdate(
          pool,
          { memberCount: pool.memberCount + 1, updatedAt: at },
          { condition: "memberCount < :max", values: { ":max": MAX_POOL_MEMBERS } },
        ),
        member: membershipPut(pool, body.account_id, "member", at),
        event: outboxPut({
          type: "pool.member_added.v1",
          subjectPk: keys.pool(pool.id).PK,
          subject: pool.id,
          seq: pool.version + 1,
          accountId: pool.ownerAccountId,
          correlationId: ctx.correlationId,
          actor: actorOf(ctx),
          data: { pool_id: pool.id, account_id: body.account_id },
          at: now,
        }),
      };
      try {
        await transact(items);
      } catch (err) {
        // Added concurrently by another request: the outcome asked for holds.
        if (err instanceof TransactionRefused && err.refusedBy("member")) {
          const member = await getMembership(pool.id, body.account_id);
          if (member) return { status: 200 as const, member: memberView(member) };
        }
        throw err;
      }
      return {
        status: 201 as const,
        member: memberView({ poolId: pool.id, accountId: body.account_id, role: "member", addedAt: at }),
      };
    },
  );
}

/**
 * Removes a member (the owner removing anyone but itself), or lets a member leave (the caller removing itself). New
 * jobs of that account can no longer target the pool; jobs it already queued keep their place.
 */
export async function removeMember(principal: Principal, poolId: string, accountId: string, ctx: Ctx) {
  const { role } = await access(principal, poolId);
  const leaving = accountId === principal.accountId;
  if (leaving && role === "owner") {
    throw new ValidationError([{ path: "path.account_id", message: "the owner cannot leave its own pool" }]);
  }
  if (!leaving && role !== "owner") throw new ForbiddenError("only the pool's owner can remove members");
  const target = await getMembership(poolId, accountId);
  if (!target) throw new NotFoundError("member");
  await withFreshPool(
    async () => (await access(principal, poolId)).pool,
    async (pool) => {
      const now = new Date();
      const at = now.toISOString();
      try {
        await transact({
          pool: poolUpdate(pool, { memberCount: Math.max(0, pool.memberCount - 1), updatedAt: at }),
          member: {
            Delete: {
              TableName: config.tableName,
              Key: keys.poolMember(pool.id, accountId),
              ConditionExpression: "attribute_exists(PK) AND #r = :member",
              ExpressionAttributeNames: { "#r": "role" },
              ExpressionAttributeValues: { ":member": "member" },
            },
          },
          event: outboxPut({
            type: "pool.member_removed.v1",
            subjectPk: keys.pool(pool.id).PK,
            subject: pool.id,
            seq: pool.version + 1,
            accountId: pool.ownerAccountId,
            correlationId: ctx.correlationId,
            actor: actorOf(ctx),
            data: { pool_id: pool.id, account_id: accountId, reason: leaving ? "left" : "removed" },
            at: now,
          }),
        });
      } catch (err) {
        // Removed concurrently: the outcome asked for holds.
        if (err instanceof TransactionRefused && !err.refusedBy("pool") && err.refusedBy("member")) return;
        throw err;
      }
    },
  );
}

// ---- for miner registration and job submission ----

/**
 * The pool a miner of `accountId` asks to join at registration: it must exist and be owned by that account, else
 * 422 on `path` (the message does not say which, so that pool ids of other accounts cannot be probed).
 */
export async function poolForMiner(accountId: string, poolId: string, path = "body.pool"): Promise<Pool> {
  const pool = await getPoolItem(poolId);
  if (!pool || pool.ownerAccountId !== accountId) {
    throw new ValidationError([{ path, message: "no pool with this id is owned by your account" }]);
  }
  return pool;
}

/**
 * The transaction items that attach a miner to `pool` at registration: a check that the pool is still owned by the
 * account and still has the `accepts_public` the miner copies (a concurrent change fails the registration, which
 * then retries), and the miner's roster entry. `previousPool` is the pool the miner leaves, if any.
 */
export function attachMinerItems(
  pool: Pool | undefined,
  miner: { id: string; accountId: string; name: string; publicOptOut: boolean },
  previousPool: string | undefined,
  at: string,
): TransactItem[] {
  const items: TransactItem[] = [];
  if (pool) {
    items.push(
      {
        ConditionCheck: {
          TableName: config.tableName,
          Key: keys.pool(pool.id),
          ConditionExpression: "ownerAccountId = :acct AND acceptsPublic = :ap",
          ExpressionAttributeValues: { ":acct": miner.accountId, ":ap": pool.acceptsPublic },
        },
      },
      {
        Put: {
          TableName: config.tableName,
          Item: {
            ...keys.poolMiner(pool.id, miner.id),
            entity: "poolMiner",
            poolId: pool.id,
            minerId: miner.id,
            accountId: miner.accountId,
            name: miner.name,
            publicOptOut: miner.publicOptOut,
            attachedAt: at,
          },
        },
      },
    );
  }
  if (previousPool && previousPool !== pool?.id) {
    items.push({ Delete: { TableName: config.tableName, Key: keys.poolMiner(previousPool, miner.id) } });
  }
  return items;
}

/**
 * For a job that targets `poolId`: the submitting account must own or belong to the pool, else 422 on
 * `body.constraints.pool` (whether the pool exists is not said). Returns the condition to put in the submit
 * transaction, so that a membership removed meanwhile cannot let the job in.
 */
export async function poolAccessForJob(accountId: string, poolId: string): Promise<TransactItem> {
  const membership = await getMembership(poolId, accountId);
  if (!membership) throw poolRefused();
  return {
    ConditionCheck: {
      TableName: config.tableName,
      Key: keys.poolMember(poolId, accountId),
      ConditionExpression: "attribute_exists(PK)",
    },
  };
}

export function poolRefused(): ValidationError {
  return new ValidationError([
    { path: "body.constraints.pool", message: "no pool with this id that your account belongs to" },
  ]);
}

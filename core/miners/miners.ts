import { createHash } from "node:crypto";
import * as v from "valibot";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { shardOf } from "../db/shard.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from "../errors.ts";
import { knownId } from "../ids.ts";
import type { Capabilities } from "../matching/constraints.ts";
import { attachMinerItems, poolForMiner } from "../pools/pools.ts";
import { canonicalBytes } from "../receipts/canonical.ts";
import { publicKeyFrom, verifyBytes } from "../receipts/ed25519.ts";
import { keyProofStatement } from "../receipts/statements.ts";
import { spendChallenge } from "../receipts/store.ts";
import { findService } from "../services/registry.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { cachedMiner, forgetMiner, rememberMiner } from "./cache.ts";
import {
  accountMinersPage,
  heartbeatWrite,
  offlineItem,
  poolOf,
  readMiner,
  registrationItem,
  silentInShard,
} from "./store.ts";

export const MINER_STATUSES = ["online", "draining", "offline"] as const;
export type MinerStatus = (typeof MINER_STATUSES)[number];
export const minerShards = () => setting("COORD_MINER_SHARDS");

const name = (what: string, max: number) =>
  v.pipe(
    v.string(),
    v.minLength(1, `${what} must not be empty`),
    v.maxLength(max, `${what} is at most ${max} characters`),
  );

export const RegisterInput = v.object({
  name: v.pipe(
    name("name", 100),
    v.regex(/^[A-Za-z0-9._-]+$/, "name may use letters, digits, '.', '_' and '-'"),
  ),
  services: v.pipe(
    v.array(name("service id", 200)),
    v.minLength(1, "name at least one service"),
    v.maxLength(50),
  ),
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64)), 1),
  gpus: v.optional(
    v.pipe(
      v.array(
        v.object({
          model: name("gpu model", 100),
          vram_mb: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_048_576)),
          count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64))),
        }),
      ),
      v.maxLength(32),
    ),
    [],
  ),
  cuda_version: v.optional(v.pipe(v.string(), v.regex(/^\d+\.\d+$/, "cuda_version must look like '12.4'"))),
  driver_version: v.optional(name("driver_version", 50)),
  models: v.optional(v.pipe(v.array(name("model", 200)), v.maxLength(500)), []),
  region: v.optional(
    v.pipe(name("region", 50), v.regex(/^[a-z0-9-]+$/, "region is lower-case letters, digits and '-'")),
  ),
  prices: v.optional(v.record(v.string(), v.pipe(v.number(), v.safeInteger(), v.minValue(0))), {}),
  /** A pool id (`pool_...`) of a pool the miner's account owns (core/pools). */
  pool: v.optional(name("pool", 100)),
  /**
   * For a pooled miner, `false` opts this miner out of public jobs even when its pool accepts them; it cannot opt in
   * beyond its pool (`PATCH /v1/pools/{id}` decides). Without a pool a miner takes public jobs regardless.
   */
  accepts_public: v.optional(v.boolean()),
  /** Ed25519 public key (PEM or base64 of the raw 32 bytes), to co-sign output hashes. */
  public_key: v.optional(name("public_key", 1000)),
  /**
   * With `public_key`: proof of holding its private key, a signature over the canonical statement
   * `{type: "coordinator.miner_key_proof.v1", challenge, account_id, miner_name, public_key}` of a challenge from
   * `POST /v1/miners/challenge` (single use).
   */
  key_proof: v.optional(
    v.object({
      challenge: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
      signature: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
    }),
  ),
});
export type RegisterInput = v.InferOutput<typeof RegisterInput>;

export const MinerItem = v.object({
  id: v.string(),
  accountId: v.string(),
  name: v.string(),
  services: v.array(v.string()),
  concurrency: v.number(),
  gpus: v.array(v.object({ model: v.string(), vram_mb: v.number(), count: v.optional(v.number()) })),
  cuda_version: v.optional(v.string()),
  driver_version: v.optional(v.string()),
  models: v.array(v.string()),
  region: v.optional(v.string()),
  prices: v.record(v.string(), v.number()),
  pool: v.optional(v.string()),
  accepts_public: v.boolean(),
  /** Registered with `accepts_public: false` in a pool: stays out of public jobs whatever the pool says. */
  publicOptOut: v.optional(v.boolean()),
  /** The pool version whose `accepts_public` this item carries (pool changes fan out in order). */
  poolVersion: v.optional(v.number()),
  public_key: v.optional(v.string()),
  status: v.picklist(MINER_STATUSES),
  banned: v.optional(v.boolean()),
  active: v.number(),
  /** The jobs the miner holds: job id -> claim token (changed by the claim and every release, in their transactions). */
  held: v.optional(v.record(v.string(), v.string()), {}),
  /** Claim tokens the miner must stop, with why, since its last heartbeat (which reports and clears them). */
  stops: v.optional(v.record(v.string(), v.object({ job_id: v.string(), reason: v.string() })), {}),
  /** The miner's liveness lease: every job it holds is alive until then (heartbeats move it). */
  leaseUntil: v.optional(v.string()),
  lastHeartbeatAt: v.string(),
  createdAt: v.string(),
  updatedAt: v.string(),
});
export type Miner = v.InferOutput<typeof MinerItem>;

export function minerView(m: Miner) {
  return {
    id: m.id,
    name: m.name,
    status: m.status,
    services: m.services,
    concurrency: m.concurrency,
    active_jobs: m.active,
    gpus: m.gpus,
    cuda_version: m.cuda_version ?? null,
    driver_version: m.driver_version ?? null,
    models: m.models,
    region: m.region ?? null,
    prices: m.prices,
    pool: m.pool ?? null,
    accepts_public: m.accepts_public,
    public_key: m.public_key ?? null,
    last_heartbeat_at: m.lastHeartbeatAt,
    created_at: m.createdAt,
  };
}

export function capabilities(m: Miner): Capabilities {
  return {
    services: m.services,
    gpus: m.gpus,
    cuda_version: m.cuda_version,
    models: m.models,
    region: m.region,
    pool: m.pool,
    accepts_public: m.accepts_public,
    prices: m.prices,
  };
}

/** A miner's id follows from its account and name, so re-registering the same name updates the same miner. */
export function minerIdFor(accountId: string, minerName: string): string {
  const digest = createHash("sha256").update(`${accountId}\n${minerName}`).digest();
  const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
  let id = "";
  for (let i = 0; i < 26; i++) id += alphabet[(digest[i] ?? 0) % 32];
  return `mnr_${id}`;
}

/**
 * The miner's status-index keys. Online and draining miners sort by when they go silent (three of their heartbeat
 * intervals after the last one: a miner on the doorbell that holds nothing heartbeats less often), so the sweep finds
 * the silent ones with one range query whatever their intervals; offline miners sort by their last heartbeat.
 */
function statusKeys(id: string, status: MinerStatus, sortAt: string) {
  return keys.minersByStatus(status, shardOf(id, minerShards()), `${sortAt}#${id}`);
}

/** When a miner heard from at `at` goes silent, heartbeating every `intervalSeconds`. */
export function silentAt(at: Date, intervalSeconds = config.heartbeatSeconds): string {
  return new Date(at.getTime() + 3 * intervalSeconds * 1000).toISOString();
}

/** A registered key must be an Ed25519 public key, and the registration must prove it holds the private half. */
function checkKeyProof(accountId: string, body: RegisterInput): void {
  const publicKey = body.public_key as string;
  let key: ReturnType<typeof publicKeyFrom>;
  try {
    key = publicKeyFrom(publicKey);
  } catch {
    throw new ValidationError([
      {
        path: "body.public_key",
        message: "must be an Ed25519 public key (PEM, or base64 of the raw 32 bytes)",
      },
    ]);
  }
  if (!body.key_proof) {
    throw new ValidationError([
      {
        path: "body.key_proof",
        message: "a public_key needs a key_proof: sign a challenge from POST /v1/miners/challenge with it",
      },
    ]);
  }
  const statement = keyProofStatement({
    challenge: body.key_proof.challenge,
    account_id: accountId,
    miner_name: body.name,
    public_key: publicKey,
  });
  if (!verifyBytes(key, canonicalBytes(statement), body.key_proof.signature)) {
    throw new ValidationError([
      {
        path: "body.key_proof.signature",
        message:
          "not a signature by public_key of {type: coordinator.miner_key_proof.v1, challenge, account_id, miner_name, public_key} (RFC 8785)",
      },
    ]);
  }
}

/**
 * Registers (or re-registers, by name) a miner of the caller's account. A miner that names a `pool` joins it: the
 * pool must be owned by the caller's account (422 on `body.pool` otherwise), and the miner's `accepts_public` is
 * the pool's (unless the miner opts out). If the pool changed while we registered, we register again.
 */
export async function registerMiner(
  principal: Principal,
  input: unknown,
  correlationId?: string,
): Promise<Miner> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await upsertMiner(principal, input, correlationId);
    } catch (err) {
      if (!(err instanceof TransactionRefused)) throw err;
      if (err.refusedBy("miner")) throw new ForbiddenError("this miner is banned");
      if (err.refusedBy("challenge")) {
        throw new ValidationError([
          {
            path: "body.key_proof.challenge",
            message: "unknown, expired or already used: ask for a new one",
          },
        ]);
      }
      // The pool changed (accepts_public, or ownership) between our read and our write: read it again.
      if (err.refusedBy("pool") && attempt < 3) continue;
      if (err.refusedBy("pool")) throw new ConflictError("the pool kept changing; retry");
      throw err;
    }
  }
}

async function upsertMiner(principal: Principal, input: unknown, correlationId?: string): Promise<Miner> {
  const body = parse(RegisterInput, input, "body");
  const issues = body.services.flatMap((s, i) =>
    findService(s) ? [] : [{ path: `body.services.${i}`, message: `unknown service '${s}'` }],
  );
  for (const s of Object.keys(body.prices)) {
    if (!body.services.includes(s))
      issues.push({ path: `body.prices.${s}`, message: "price for a service this miner does not run" });
  }
  if (issues.length) throw new ValidationError(issues);
  if (body.public_key) checkKeyProof(principal.accountId, body);

  const id = minerIdFor(principal.accountId, body.name);
  const pool = body.pool ? await poolForMiner(principal.accountId, body.pool) : undefined;
  const previousPool = await poolOf(id);
  const publicOptOut = pool ? body.accepts_public === false : undefined;
  const now = new Date().toISOString();
  const prices = Object.fromEntries(
    body.services.map((s) => [s, body.prices[s] ?? findService(s)?.pricing.default_unit_price ?? 0]),
  );
  const fields = {
    entity: "miner",
    id,
    accountId: principal.accountId,
    name: body.name,
    services: [...new Set(body.services)],
    concurrency: body.concurrency,
    gpus: body.gpus,
    cuda_version: body.cuda_version,
    driver_version: body.driver_version,
    models: body.models,
    region: body.region,
    prices,
    pool: pool?.id,
    // Without a pool a miner serves public jobs; in a pool, only if the pool opts in and the miner did not opt out.
    accepts_public: pool ? pool.acceptsPublic && !publicOptOut : true,
    publicOptOut,
    poolVersion: pool?.version,
    public_key: body.public_key,
    status: "online" as const,
    lastHeartbeatAt: now,
    updatedAt: now,
    ...keys.minersByAccount(principal.accountId, body.name),
    ...statusKeys(id, "online", silentAt(new Date(now))),
  };
  await transact({
    miner: registrationItem(id, fields, now),
    event: outboxPut({
      type: "miner.registered.v1",
      subjectPk: keys.miner(id).PK,
      subject: id,
      accountId: principal.accountId,
      correlationId,
      data: { miner_id: id, account_id: principal.accountId, services: fields.services },
    }),
    // The key proof's challenge is spent with the registration, once.
    challenge:
      body.key_proof && body.public_key
        ? spendChallenge(body.key_proof.challenge, principal.accountId, new Date())
        : undefined,
    // The pool check (a concurrent pool change fails it) and the pool roster entries.
    pool: attachMinerItems(
      pool,
      { id, accountId: principal.accountId, name: body.name, publicOptOut: publicOptOut ?? false },
      previousPool,
      now,
    ),
  });
  forgetMiner(id);
  return getMiner(principal, id);
}

/** The miner, if it belongs to the caller's account (otherwise 404, as for any object of another account). */
export async function getMiner(
  principal: Pick<Principal, "accountId" | "kind">,
  id: string | undefined,
  opts: { consistent?: boolean } = {},
): Promise<Miner> {
  if (!id)
    throw new ValidationError([
      { path: "header.x-miner-id", message: "send X-Miner-Id (from registration)" },
    ]);
  // A malformed id (any length: it would be a table key) is no miner of anyone's.
  knownId(id, "mnr", "miner");
  const consistent = opts.consistent ?? true;
  const miner = await readMiner(id, consistent);
  // A miner registered a moment ago may not be visible to an eventually consistent read yet.
  if (!miner && !consistent) return getMiner(principal, id);
  if (!miner || (principal.kind !== "admin" && miner.accountId !== principal.accountId)) {
    throw new NotFoundError("miner");
  }
  return miner;
}

/**
 * The miner as a poll needs it (capabilities, status hint) from this instance's cache when fresh (cache.ts), else
 * an eventually consistent read. The claim's conditions check what matters (online, below concurrency).
 */
export async function minerForPoll(principal: Pick<Principal, "accountId" | "kind">, id: string | undefined) {
  const cached = id ? cachedMiner(id) : undefined;
  if (cached && (principal.kind === "admin" || cached.accountId === principal.accountId)) return cached;
  const miner = await getMiner(principal, id, { consistent: false });
  rememberMiner(miner);
  return miner;
}

/** A miner by id, whoever owns it (the coordinator's own reads: lease checks), strongly consistent. */
export async function findMiner(id: string): Promise<Miner | undefined> {
  return readMiner(id, true);
}

/**
 * The miner's heartbeat write, its only one: sets the status, the last heartbeat and the liveness lease (which keeps
 * every job it holds alive), and takes the stop orders recorded since the last heartbeat (they are reported once).
 * Returns the miner as it was before (its held jobs and stops). Offline miners come back online; a draining miner
 * stays draining unless `status` says otherwise (a second write only then). 404 for a miner of another account or
 * none, 403 if banned.
 */
export async function touchMiner(
  principal: Pick<Principal, "accountId" | "kind">,
  minerId: string | undefined,
  status?: MinerStatus,
  opts: { takeStops?: boolean; intervalSeconds?: number } = {},
): Promise<{ before: Miner; status: MinerStatus; leaseUntil: string }> {
  const takeStops = opts.takeStops ?? true;
  if (!minerId)
    throw new ValidationError([
      { path: "header.x-miner-id", message: "send X-Miner-Id (from registration)" },
    ]);
  knownId(minerId, "mnr", "miner");
  const now = new Date();
  const iso = now.toISOString();
  const leaseUntil = new Date(now.getTime() + config.leaseSeconds * 1000).toISOString();
  const write = (next: MinerStatus, keepDraining: boolean) =>
    heartbeatWrite(minerId, {
      status: next,
      at: iso,
      leaseUntil,
      accountId: principal.accountId,
      takeStops,
      keepDraining,
      statusKeys: statusKeys(minerId, next, silentAt(now, opts.intervalSeconds)),
    });
  const owned = (item: Record<string, unknown> | undefined) =>
    item && (principal.kind === "admin" || item.accountId === principal.accountId);
  let next: MinerStatus = status ?? "online";
  let out = await write(next, status === undefined);
  if (!out.ok && owned(out.item) && !out.item?.banned && out.item?.status === "draining") {
    next = "draining";
    out = await write(next, false);
  }
  forgetMiner(minerId);
  if (!out.ok) {
    // The condition refused: no such miner (the update would have created a stub: it did not, the condition
    // needs accountId), another account's, or banned.
    if (!owned(out.item)) throw new NotFoundError("miner");
    throw new ForbiddenError("this miner is banned");
  }
  if (!out.item) throw new NotFoundError("miner");
  const before = v.parse(MinerItem, out.item);
  // The write returned the whole miner: the capability cache is refreshed for free (the next polls read nothing).
  rememberMiner({
    ...before,
    status: next,
    lastHeartbeatAt: iso,
    leaseUntil,
    stops: takeStops ? {} : before.stops,
  });
  return { before, status: next, leaseUntil };
}

/** Miners whose last heartbeat is older than `before`, among those with `status` (for the offline sweep). */
export async function silentMiners(status: MinerStatus, before: string): Promise<Miner[]> {
  const found: Miner[] = [];
  for (let shard = 0; shard < minerShards(); shard++)
    found.push(...(await silentInShard(status, shard, before)));
  return found;
}

/** Marks a silent miner offline, unless it heartbeated since we looked; writes `miner.offline.v1`. */
export async function markOffline(miner: Miner): Promise<boolean> {
  const now = new Date().toISOString();
  const sk = statusKeys(miner.id, "offline", miner.lastHeartbeatAt);
  try {
    await transact({
      miner: offlineItem(miner, sk, now),
      event: outboxPut({
        type: "miner.offline.v1",
        subjectPk: keys.miner(miner.id).PK,
        subject: miner.id,
        accountId: miner.accountId,
        data: { miner_id: miner.id, account_id: miner.accountId },
      }),
    });
    forgetMiner(miner.id);
    return true;
  } catch (err) {
    // It heartbeated since we looked (or is offline already): nothing to do.
    if (err instanceof TransactionRefused) return false;
    throw err;
  }
}

export const ListMinersQuery = v.object({
  status: v.optional(v.picklist(MINER_STATUSES)),
  cursor: v.optional(v.string()),
  limit: v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(100)), "50"),
});

/**
 * The caller's miners, by name, with a cursor. The listing index holds keys only (a miner's slot and heartbeat
 * updates then write no index): each page of entries is read back, and a status filter applies to what was read,
 * paging on until the page is full or the miners run out.
 */
export async function listMiners(principal: Principal, query: unknown) {
  const q = parse(ListMinersQuery, query, "query");
  const limit = Number(q.limit);
  const miners: Miner[] = [];
  let cursor = q.cursor;
  do {
    const page = await accountMinersPage(principal.accountId, limit - miners.length, cursor);
    for (const miner of page.miners) if (!q.status || miner.status === q.status) miners.push(miner);
    cursor = page.nextCursor;
  } while (cursor && miners.length < limit);
  return { miners: miners.map(minerView), next_cursor: cursor ?? null };
}

import "./env.ts";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { config } from "../core/config.ts";
import type { LocalStack } from "../local/stack.ts";
import { FLAGS, numArg } from "./lib/args.ts";
import { call, Http } from "./lib/http.ts";
import * as instrument from "./lib/instrument.ts";
import { type Account, fundedClient, type Miner, pool, registeredMiner } from "./lib/setup.ts";
import { machineLine, startStack } from "./lib/stack.ts";
import { num, progress, type Summary, summarize, table } from "./lib/stats.ts";
import {
  classify,
  type IdleResult,
  idle,
  type LifecycleOptions,
  type LoadResult,
  type SerialResult,
  serial,
  underLoad,
} from "./lifecycle.ts";

/**
 * `npx tsx bench/hot-path.ts`: the figures the hot-path issue (issue 9) asks for, on one in-process local stack.
 *
 * 1. Scaling: the same job workload (K echo jobs, 4 clients x 8 in flight, each job long-polled to completion) with
 *    1, 10, 50 and 200 simulated miners (2 slots each, heartbeating); per row jobs/s, submit -> claim p50/p99, claim
 *    transactions per claimed job, DynamoDB requests / WCU / RCU per job, and, from a short idle phase (the same
 *    miners long-polling an empty queue), DynamoDB requests per empty poll.
 * 2. Fleet: 8 miners x 1 slot long-polling (wait_seconds 20), 4 clients each submitting the next job as soon as the
 *    previous submit returns (nothing watches the jobs), 300 jobs.
 * 3. DynamoDB Local's floor, without HTTP: transactions shaped like submit (5 items), claim (4) and result (8), and
 *    single PutItem / UpdateItem / GetItem, at 16 in flight on the stack's table under a throw-away key prefix; then
 *    the jobs/s that floor allows for the fleet's per-job mix of operations, and the fleet's fraction of it.
 * Also a serial pass (one job at a time) for the per-job floor of the counts, the previous figures beside the new
 * ones (bench/results/hot-path-previous.json; this run's go to hot-path-latest.json), and the issue's targets.
 */

// ---------------------------------------------------------------------------------------------------------------
// Flags

const HOT_FLAGS = {
  ...FLAGS,
  "fleet-jobs": { type: "string" },
  "fleet-miners": { type: "string" },
  "fleet-clients": { type: "string" },
  "fleet-wait-seconds": { type: "string" },
  "fleet-max-seconds": { type: "string" },
  "floor-ops": { type: "string" },
  "floor-seconds": { type: "string" },
  "floor-inflight": { type: "string" },
  previous: { type: "string" },
  latest: { type: "string" },
} as const;

const USAGE = `The hot-path benchmark (issue 9) on the in-process local stack; figures to stdout, progress to stderr.

  npx tsx bench/hot-path.ts [flags]        everything, about 5-6 minutes on 2 cores
  npx tsx bench/hot-path.ts --miners 1,10 --jobs 40 --fleet-jobs 40 --floor-ops 200    a quick smoke run

Parts (--only, comma-separated; default all): serial, scaling, fleet, floor (the floor's jobs/s needs fleet)
Scaling
  --miners LIST            miner counts, one row each (default 1,10,50,200)
  --jobs K                 echo jobs per row (default 300)
  --miner-slots S          each miner's concurrency (default 2)
  --clients M              clients (default 4)
  --inflight I             jobs each client keeps in flight, each long-polled until terminal (default 8)
  --wait-seconds W         miners' wait_seconds while jobs flow (default 2)
  --max-seconds S          a row stops submitting after S seconds (default 40; 0: no limit)
  --idle-seconds S         idle phase per row: miners long-poll an empty queue for S seconds (default 4)
  --idle-wait-seconds W    wait_seconds of the idle polls (default 2)
Serial
  --serial-jobs J          jobs of the one-at-a-time pass (default 30)
Fleet
  --fleet-jobs K           jobs (default 300)
  --fleet-miners N         miners, 1 slot each (default 8)
  --fleet-clients M        clients, one submit in flight each, unpaced (default 4)
  --fleet-wait-seconds W   miners' wait_seconds (default 20)
  --fleet-max-seconds S    stop submitting after S seconds (default 60; 0: no limit)
DynamoDB floor
  --floor-ops N            operations timed per kind (default 2000)
  --floor-seconds S        at most S seconds per kind (default 5)
  --floor-inflight C       operations in flight (default 16)
Files
  --previous FILE          figures to print beside this run's (default bench/results/hot-path-previous.json)
  --latest FILE            where this run's figures go (default bench/results/hot-path-latest.json)
  --json FILE              also write the raw results (snapshots included)
`;

const PARTS = ["serial", "scaling", "fleet", "floor"] as const;
type Part = (typeof PARTS)[number];

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

function readHotArgs() {
  const { values } = parseArgs({ options: HOT_FLAGS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const list = (raw: string | undefined, fallback: number[], name: string) =>
    raw === undefined
      ? fallback
      : raw.split(",").map((x) => {
          const n = Number(x.trim());
          if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes positive integers, got ${raw}`);
          return n;
        });
  const only = new Set<Part>(
    values.only === undefined
      ? PARTS
      : values.only.split(",").map((p) => {
          if (!(PARTS as readonly string[]).includes(p.trim()))
            throw new Error(`--only takes ${PARTS.join(", ")}`);
          return p.trim() as Part;
        }),
  );
  return {
    only,
    miners: list(values.miners, [1, 10, 50, 200], "miners"),
    row: {
      jobs: numArg(values.jobs, 300, "jobs"),
      miners: 0,
      minerSlots: numArg(values["miner-slots"], 2, "miner-slots"),
      clients: numArg(values.clients, 4, "clients"),
      inflight: numArg(values.inflight, 8, "inflight"),
      waitSeconds: numArg(values["wait-seconds"], 2, "wait-seconds"),
      maxSeconds: numArg(values["max-seconds"], 40, "max-seconds"),
      serialJobs: numArg(values["serial-jobs"], 30, "serial-jobs"),
      idleSeconds: numArg(values["idle-seconds"], 4, "idle-seconds"),
      idleWaitSeconds: numArg(values["idle-wait-seconds"], 2, "idle-wait-seconds"),
    } satisfies LifecycleOptions,
    fleet: {
      jobs: numArg(values["fleet-jobs"], 300, "fleet-jobs"),
      miners: numArg(values["fleet-miners"], 8, "fleet-miners"),
      clients: numArg(values["fleet-clients"], 4, "fleet-clients"),
      waitSeconds: numArg(values["fleet-wait-seconds"], 20, "fleet-wait-seconds"),
      maxSeconds: numArg(values["fleet-max-seconds"], 60, "fleet-max-seconds"),
    },
    floor: {
      ops: numArg(values["floor-ops"], 2000, "floor-ops"),
      seconds: numArg(values["floor-seconds"], 5, "floor-seconds"),
      inflight: Math.max(1, numArg(values["floor-inflight"], 16, "floor-inflight")),
    },
    previous: values.previous ?? here("./results/hot-path-previous.json"),
    latest: values.latest ?? here("./results/hot-path-latest.json"),
    json: values.json,
  };
}
type HotArgs = ReturnType<typeof readHotArgs>;

// ---------------------------------------------------------------------------------------------------------------
// Counting from instrument snapshots

const SWEEP = "bg: sweep (cron)";
/** The requests that move a job (the rest is observation, waiting and upkeep). */
const JOB_PATH = ["submit", "claim", "start", "result"];
const isWrite = (label: string) =>
  /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems|BatchWriteItem)\b/.test(label);

interface Use {
  requests: number;
  transactions: number;
  writes: number;
  wcu: number;
  /** The WCU as DynamoDB Local reports them (less than AWS bills for transactions: instrument.billedUnits). */
  wcuLocal: number;
  rcu: number;
}

/** DynamoDB use of the named buckets (default: every bucket but the cron sweep, which is fleet-wide upkeep). */
function use(snap: instrument.Snapshot, names?: string[]): Use {
  const u: Use = { requests: 0, transactions: 0, writes: 0, wcu: 0, wcuLocal: 0, rcu: 0 };
  for (const [name, b] of Object.entries(snap.buckets)) {
    if (names ? !names.includes(name) : name === SWEEP) continue;
    u.requests += b.calls;
    u.wcu += b.write;
    u.wcuLocal += b.write - b.txAdded;
    u.rcu += b.read;
    for (const [label, op] of Object.entries(b.ops)) {
      if (label.startsWith("TransactWriteItems")) u.transactions += op.calls;
      if (isWrite(label)) u.writes += op.calls;
    }
  }
  return u;
}

const per = (u: Use, n: number): Use => ({
  requests: u.requests / n,
  transactions: u.transactions / n,
  writes: u.writes / n,
  wcu: u.wcu / n,
  wcuLocal: u.wcuLocal / n,
  rcu: u.rcu / n,
});

/** Claim transactions: every TransactWriteItems a poll ran (as bench/lifecycle.ts counts them). */
function claimTransactions(snap: instrument.Snapshot): { attempted: number; cancelled: number } {
  let attempted = 0;
  let cancelled = 0;
  for (const phase of ["claim", "empty poll"]) {
    for (const [label, op] of Object.entries(snap.buckets[phase]?.ops ?? {})) {
      if (!label.startsWith("TransactWriteItems")) continue;
      attempted += op.calls;
      cancelled += op.errors;
    }
  }
  return { attempted, cancelled };
}

/** Per request of one bucket (empty polls, heartbeats). */
function perRequest(snap: instrument.Snapshot, name: string): Use & { n: number } {
  const n = snap.buckets[name]?.requests ?? 0;
  return { n, ...per(use(snap, [name]), Math.max(1, n)) };
}

/** 5xx answers of the API, by request class, counted where the server finishes the response. */
let fiveXx = new Map<string, number>();
function take5xx(): Record<string, number> {
  const out = Object.fromEntries(fiveXx);
  fiveXx = new Map();
  return out;
}
const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------------------------------------------
// Setup

async function registerMiners(stack: LocalStack, count: number, slots: number): Promise<Miner[]> {
  if (count <= 0) return [];
  const admin = new Http(stack.url, 32);
  const t0 = performance.now();
  // Registrations in concurrent batches: each is an account, a key and the registration (3 requests).
  const miners = await pool(Array.from({ length: count }), 16, () => registeredMiner(admin, stack, slots));
  admin.close();
  progress(
    `registered ${count} miners (${slots} slot${slots === 1 ? "" : "s"}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return miners;
}

/** One heartbeat from each miner, so that a miner silent since an earlier row is online again (outside any measurement). */
async function wake(stack: LocalStack, miners: Miner[]): Promise<void> {
  const http = new Http(stack.url, 32);
  await pool(miners, 16, async (m) => {
    const res = await call(() => http.post("/v1/miners/heartbeat", {}, { key: m.key, headers: m.headers }));
    if (res.status !== 200) throw new Error(`heartbeat: ${res.status} ${JSON.stringify(res.body)}`);
  });
  http.close();
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Scaling rows

interface Row {
  miners: number;
  jobs: number;
  completed: number;
  seconds: number;
  jobsPerSecond: number;
  claimP50Ms: number;
  claimP99Ms: number;
  claimTxPerClaimedJob: number;
  cancelledClaimTxPerClaimedJob: number;
  ddbRequestsPerJob: number;
  wcuPerJob: number;
  rcuPerJob: number;
  emptyPolls: number;
  ddbRequestsPerEmptyPoll: number;
  heartbeats: number;
  ddbWritesPerHeartbeat: number;
  wcuPerHeartbeat: number;
  errors: Record<string, number>;
  server5xx: Record<string, number>;
}

function rowFrom(
  miners: number,
  load: LoadResult,
  idleRun: IdleResult,
  server5xx: Record<string, number>,
): Row {
  const claims = claimTransactions(load.snap);
  const claimed = Math.max(1, load.claimMs.n);
  const job = per(use(load.snap), Math.max(1, load.jobs));
  const poll = perRequest(idleRun.snap, "empty poll");
  const beat = perRequest(idleRun.snap, "heartbeat");
  return {
    miners,
    jobs: load.jobs,
    completed: load.completed,
    seconds: load.seconds,
    jobsPerSecond: load.seconds > 0 ? load.completed / load.seconds : Number.NaN,
    claimP50Ms: load.claimMs.p50,
    claimP99Ms: load.claimMs.p99,
    claimTxPerClaimedJob: claims.attempted / claimed,
    cancelledClaimTxPerClaimedJob: claims.cancelled / claimed,
    ddbRequestsPerJob: job.requests,
    wcuPerJob: job.wcu,
    rcuPerJob: job.rcu,
    emptyPolls: poll.n,
    ddbRequestsPerEmptyPoll: poll.n ? poll.requests : Number.NaN,
    heartbeats: beat.n,
    ddbWritesPerHeartbeat: beat.n ? beat.writes : Number.NaN,
    wcuPerHeartbeat: beat.n ? beat.wcu : Number.NaN,
    errors: load.errors,
    server5xx,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Fleet

interface Fleet {
  miners: number;
  clients: number;
  waitSeconds: number;
  jobs: number;
  completed: number;
  failed: number;
  seconds: number;
  jobsPerSecond: number;
  submitP50Ms: number;
  submitP99Ms: number;
  claimP50Ms: number;
  claimP99Ms: number;
  completeP50Ms: number;
  completeP99Ms: number;
  server5xx: Record<string, number>;
  errors: Record<string, number>;
  ddbRequestsPerJob: number;
  wcuPerJob: number;
  rcuPerJob: number;
  claimTxPerClaimedJob: number;
  cancelledClaimTxPerClaimedJob: number;
  /** DynamoDB calls per job by floor kind (every bucket but the sweep). */
  mix: Record<string, number>;
}

function fleetFrom(args: HotArgs, load: LoadResult, server5xx: Record<string, number>): Fleet {
  const claims = claimTransactions(load.snap);
  const claimed = Math.max(1, load.claimMs.n);
  const jobs = Math.max(1, load.jobs);
  const job = per(use(load.snap), jobs);
  const mix: Record<string, number> = {};
  for (const [name, b] of Object.entries(load.snap.buckets)) {
    if (name === SWEEP) continue;
    for (const [label, op] of Object.entries(b.ops)) {
      const kind = floorKindOf(label);
      mix[kind] = (mix[kind] ?? 0) + op.calls / jobs;
    }
  }
  return {
    miners: args.fleet.miners,
    clients: args.fleet.clients,
    waitSeconds: args.fleet.waitSeconds,
    jobs: load.jobs,
    completed: load.completed,
    failed: load.failed,
    seconds: load.seconds,
    jobsPerSecond: load.seconds > 0 ? load.completed / load.seconds : Number.NaN,
    submitP50Ms: load.submitMs.p50,
    submitP99Ms: load.submitMs.p99,
    claimP50Ms: load.claimMs.p50,
    claimP99Ms: load.claimMs.p99,
    completeP50Ms: load.endToEndMs.p50,
    completeP99Ms: load.endToEndMs.p99,
    server5xx,
    errors: load.errors,
    ddbRequestsPerJob: job.requests,
    wcuPerJob: job.wcu,
    rcuPerJob: job.rcu,
    claimTxPerClaimedJob: claims.attempted / claimed,
    cancelledClaimTxPerClaimedJob: claims.cancelled / claimed,
    mix,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 3. DynamoDB Local's floor

/** The operation kinds timed on their own; every DynamoDB call of the stack is mapped to one of them. */
const FLOOR_KINDS = {
  "tx-submit": {
    label: "TransactWriteItems, submit-shaped",
    shape: "5 items: Put job (3 GSIs), Put input, Update account, Put ledger, Put event",
    items: 5,
  },
  "tx-claim": {
    label: "TransactWriteItems, claim-shaped",
    shape: "4 items: Put job (2 GSIs), Update miner, Update account, Put event",
    items: 4,
  },
  "tx-result": {
    label: "TransactWriteItems, result-shaped",
    shape:
      "10 items: Put job (1 GSI), Update miner, Put result, 3 x (Update account, Put ledger: client, miner, fee), Put event",
    items: 10,
  },
  put: { label: "PutItem", shape: "one small item, no index keys" },
  update: { label: "UpdateItem", shape: "one counter item" },
  get: { label: "GetItem", shape: "one item written before, strongly consistent" },
} as const;
type FloorKind = keyof typeof FLOOR_KINDS;

/**
 * Which timed kind stands for a call of the stack: a transaction for the timed transaction of the nearest item count
 * (ties to the larger), reads (GetItem, Query, BatchGetItem...) for GetItem, PutItem for PutItem, other writes for
 * UpdateItem. An approximation: a Query or a batch is not one GetItem, a 2-item transaction not a 4-item one.
 */
function floorKindOf(label: string): FloorKind {
  const tx = /^TransactWriteItems \((\d+) items\)/.exec(label);
  if (tx) {
    const n = Number(tx[1]);
    const sizes: [FloorKind, number][] = [
      ["tx-claim", 4],
      ["tx-submit", 5],
      ["tx-result", 10],
    ];
    return sizes.reduce((best, s) => (Math.abs(s[1] - n) <= Math.abs(best[1] - n) ? s : best))[0];
  }
  if (/^(GetItem|Query|Scan|BatchGetItem|TransactGetItems)\b/.test(label)) return "get";
  if (label.startsWith("PutItem")) return "put";
  return "update";
}

interface FloorOp {
  kind: FloorKind;
  ops: number;
  errors: number;
  seconds: number;
  perSecond: number;
  latencyMs: Summary;
}

async function measureFloor(stack: LocalStack, o: HotArgs["floor"]): Promise<FloorOp[]> {
  // Its own client: not metered, not attributed, no HTTP API in between.
  const raw = new DynamoDBClient({
    endpoint: stack.dynamoEndpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const db = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const T = stack.tableName;
  // Fresh keys under a prefix nothing else reads; entities the stream filter does not pass.
  const P = `BENCHFLOOR#${Math.random().toString(36).slice(2, 8)}#`;
  const id = () => randomUUID();
  const iso = () => new Date().toISOString();
  type Item = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

  const jobLike = (jobId: string, status: string, indexes: ("q" | "acct" | "deadline")[]) => {
    const now = iso();
    const acct = `acct_${id()}`;
    const shard = Math.floor(Math.random() * 4);
    return {
      PK: `${P}JOB#${jobId}`,
      SK: "JOB",
      entity: "benchFloorJob",
      id: jobId,
      accountId: acct,
      service: "echo",
      status,
      version: status === "queued" ? 1 : status === "assigned" ? 2 : 4,
      attempt: status === "queued" ? 0 : 1,
      maxAttempts: 3,
      attemptBudget: 3,
      priority: 5,
      maxPrice: 50_000,
      ttlSeconds: 3600,
      timeoutSeconds: 600,
      constraints: { gpu_count: 0, min_vram_mb: 0, models: [] },
      inputBytes: 24,
      createdAt: now,
      updatedAt: now,
      queueDeadline: now,
      readyAt: now,
      ...(status !== "queued"
        ? {
            minerId: `mnr_${id()}`,
            minerAccountId: `acct_${id()}`,
            claimToken: id(),
            unitPrice: 50,
            assignedAt: now,
            leaseExpiresAt: now,
            timeoutAt: now,
          }
        : {}),
      ...(indexes.includes("q") ? { GSI1PK: `${P}QUEUE#echo#${shard}`, GSI1SK: `4#${now}#${jobId}` } : {}),
      ...(indexes.includes("acct") ? { GSI2PK: `${P}ACCOUNT#${acct}#JOBS`, GSI2SK: `${now}#${jobId}` } : {}),
      ...(indexes.includes("deadline") ? { GSI3PK: `${P}DEADLINE#${shard}`, GSI3SK: `${now}#${jobId}` } : {}),
    };
  };
  const put = (Item: Record<string, unknown>, fresh = false): Item => ({
    Put: { TableName: T, Item, ...(fresh ? { ConditionExpression: "attribute_not_exists(PK)" } : {}) },
  });
  const account = (delta: number): Item => ({
    Update: {
      TableName: T,
      Key: { PK: `${P}ACCOUNT#${id()}`, SK: "ACCOUNT" },
      UpdateExpression:
        "SET available = if_not_exists(available, :start) + :d, held = if_not_exists(held, :z) - :d, version = if_not_exists(version, :z) + :one, queued = if_not_exists(queued, :z) + :one",
      ExpressionAttributeValues: { ":start": 1_000_000, ":d": delta, ":z": 0, ":one": 1 },
    },
  });
  const ledger = (delta: number): Item =>
    put({
      PK: `${P}ACCOUNT#${id()}`,
      SK: `LEDGER#${iso()}#led_${id()}`,
      entity: "benchFloorLedger",
      entryId: `led_${id()}`,
      group: `txn_${id()}`,
      kind: "hold",
      deltaAvailable: delta,
      deltaHeld: -delta,
      jobId: `job_${id()}`,
      createdAt: iso(),
    });
  const minerSlot = (delta: number): Item => ({
    Update: {
      TableName: T,
      Key: { PK: `${P}MINER#${id()}`, SK: "MINER" },
      UpdateExpression: "SET active = if_not_exists(active, :z) + :d, leaseUntil = :lease, heldToken = :tok",
      ExpressionAttributeValues: { ":z": 0, ":d": delta, ":lease": iso(), ":tok": id() },
    },
  });
  const event = (jobId: string, seq: number, type: string): Item =>
    put(
      {
        PK: `${P}JOB#${jobId}`,
        SK: `EVT#${String(seq).padStart(10, "0")}`,
        entity: "benchFloorEvent",
        eventId: `evt_${id()}`,
        type,
        subject: jobId,
        accountId: `acct_${id()}`,
        occurredAt: iso(),
        data: {
          job_id: jobId,
          service: "echo",
          status: "queued",
          attempt: 0,
          priority: 5,
          max_price: 50_000,
        },
        expiresAt: Math.floor(Date.now() / 1000) + 30 * 86400,
      },
      true,
    );
  const tx = (items: Item[]) => db.send(new TransactWriteCommand({ TransactItems: items }));
  const written: string[] = [];

  const ops: Record<FloorKind, () => Promise<unknown>> = {
    "tx-submit": () => {
      const j = `job_${id()}`;
      return tx([
        put(jobLike(j, "queued", ["q", "acct", "deadline"]), true),
        put({
          PK: `${P}JOB#${j}`,
          SK: "INPUT",
          entity: "benchFloorInput",
          inputJson: '{"bench":"floor","n":1}',
        }),
        account(-50_000),
        ledger(-50_000),
        event(j, 1, "job.submitted.v1"),
      ]);
    },
    "tx-claim": () => {
      const j = `job_${id()}`;
      return tx([
        put(jobLike(j, "assigned", ["acct", "deadline"]), true),
        minerSlot(1),
        account(0),
        event(j, 2, "job.assigned.v1"),
      ]);
    },
    "tx-result": () => {
      const j = `job_${id()}`;
      return tx([
        put(jobLike(j, "completed", ["acct"]), true),
        minerSlot(-1),
        put({
          PK: `${P}JOB#${j}`,
          SK: "RESULT",
          entity: "benchFloorResult",
          outputJson: '{"bench":"floor","n":1}',
          outputBytes: 24,
          observedMs: 3,
        }),
        account(0),
        ledger(0),
        account(45),
        ledger(45),
        account(5),
        ledger(5),
        event(j, 4, "job.completed.v1"),
      ]);
    },
    put: () => {
      const pk = `${P}ITEM#${id()}`;
      written.push(pk);
      return db.send(
        new PutCommand({
          TableName: T,
          Item: {
            PK: pk,
            SK: "ITEM",
            entity: "benchFloorItem",
            inputJson: '{"bench":"floor","n":1}',
            at: iso(),
          },
        }),
      );
    },
    update: () =>
      db.send(
        new UpdateCommand({
          TableName: T,
          Key: { PK: `${P}COUNTER#${id()}`, SK: "COUNTER" },
          UpdateExpression: "SET #n = if_not_exists(#n, :z) + :one, #at = :at",
          ExpressionAttributeNames: { "#n": "n", "#at": "at" },
          ExpressionAttributeValues: { ":z": 0, ":one": 1, ":at": iso() },
        }),
      ),
    get: () =>
      db.send(
        new GetCommand({
          TableName: T,
          Key: { PK: written[Math.floor(Math.random() * written.length)] ?? `${P}NONE`, SK: "ITEM" },
          ConsistentRead: true,
        }),
      ),
  };

  const timed = async (fn: () => Promise<unknown>, n: number, maxSeconds: number) => {
    let next = 0;
    let done = 0;
    let errors = 0;
    const ms: number[] = [];
    const started = performance.now();
    const until = maxSeconds > 0 ? started + maxSeconds * 1000 : Number.POSITIVE_INFINITY;
    await Promise.all(
      Array.from({ length: o.inflight }, async () => {
        while (next < n && performance.now() < until) {
          next++;
          const t0 = performance.now();
          try {
            await fn();
            done++;
          } catch {
            errors++;
          }
          ms.push(performance.now() - t0);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return {
      ops: done,
      errors,
      seconds,
      perSecond: seconds > 0 ? done / seconds : Number.NaN,
      latencyMs: summarize(ms),
    };
  };

  const out: FloorOp[] = [];
  try {
    for (const kind of Object.keys(FLOOR_KINDS) as FloorKind[]) {
      await timed(ops[kind], Math.min(100, o.ops), 0); // warm-up, not counted
      const r = await timed(ops[kind], o.ops, o.seconds);
      progress(`floor: ${kind} ${r.ops} ops in ${r.seconds.toFixed(1)} s: ${r.perSecond.toFixed(0)}/s`);
      out.push({ kind, ...r });
    }
  } finally {
    raw.destroy();
  }
  return out;
}

interface FloorFit {
  /** Per kind: the fleet's calls per job, the floor's rate, and the DynamoDB Local time per job that makes. */
  lines: { kind: FloorKind; perJob: number; perSecond: number; msPerJob: number }[];
  msPerJob: number;
  jobsPerSecond: number;
  achieved: number;
}

function fitFloor(floor: FloorOp[], fleet: Fleet): FloorFit {
  const rate = new Map(floor.map((f) => [f.kind, f.perSecond]));
  const lines = (Object.keys(FLOOR_KINDS) as FloorKind[])
    .map((kind) => {
      const perJob = fleet.mix[kind] ?? 0;
      const perSecond = rate.get(kind) ?? Number.NaN;
      const msPerJob = !perJob ? 0 : perSecond > 0 ? (perJob / perSecond) * 1000 : Number.POSITIVE_INFINITY;
      return { kind, perJob, perSecond, msPerJob };
    })
    .filter((l) => l.perJob > 0 || rate.has(l.kind));
  // A kind the fleet used but the floor could not time (no successful operation) leaves the floor unknown.
  const msPerJob = lines.reduce((a, l) => a + l.msPerJob, 0);
  const jobsPerSecond = msPerJob > 0 && Number.isFinite(msPerJob) ? 1000 / msPerJob : Number.NaN;
  return { lines, msPerJob, jobsPerSecond, achieved: fleet.jobsPerSecond / jobsPerSecond };
}

// ---------------------------------------------------------------------------------------------------------------
// Previous figures

/** The fleet figures compared across runs (all optional in a previous file). */
interface FleetFigures {
  label?: string;
  jobsPerSecond?: number;
  submitP50Ms?: number;
  submitP99Ms?: number;
  claimP50Ms?: number;
  claimP99Ms?: number;
  server5xx?: number;
  ddbRequestsPerJob?: number;
  wcuPerJob?: number;
  rcuPerJob?: number;
  claimTxPerClaimedJob?: number;
}

interface Figures {
  label?: string;
  machine?: string;
  fleet?: FleetFigures;
  /** The issue's own starting point, carried from file to file. */
  issue?: FleetFigures;
  scaling?: Partial<Row>[];
  floor?: { jobsPerSecond?: number; achieved?: number };
  serial?: SerialFigures;
}

/** The issue's starting point, if no previous file carries it. */
const ISSUE_START: FleetFigures = {
  label: "issue 9's starting point",
  jobsPerSecond: 9.8,
  claimP50Ms: 8300,
  ddbRequestsPerJob: 61,
  wcuPerJob: 99,
  rcuPerJob: 39,
};

function readPrevious(file: string): Figures | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Figures;
  } catch (err) {
    progress(`ignoring ${file}: ${String(err)}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing

const ms = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "-"
    : n >= 1000
      ? `${num(n / 1000, 2)} s`
      : `${num(n, n < 100 ? 1 : 0)} ms`;
const opt = (n: number | undefined, d = 1) => (n === undefined ? "-" : num(n, d));
const list = (r: Record<string, number>) =>
  Object.keys(r).length
    ? Object.entries(r)
        .map(([k, v]) => `${k} x${v}`)
        .join(", ")
    : "none";

function scalingTable(rows: Partial<Row>[]): string {
  return table(
    [
      "miners",
      "jobs",
      "jobs/s",
      "submit->claim p50",
      "p99",
      "claim tx/claimed job (cancelled)",
      "DDB req/job",
      "WCU/job",
      "RCU/job",
      "DDB req/empty poll",
    ],
    rows.map((r) => [
      String(r.miners ?? "-"),
      r.completed === undefined ? "-" : `${r.completed}/${r.jobs}`,
      opt(r.jobsPerSecond),
      ms(r.claimP50Ms),
      ms(r.claimP99Ms),
      `${opt(r.claimTxPerClaimedJob, 2)} (${opt(r.cancelledClaimTxPerClaimedJob, 2)})`,
      opt(r.ddbRequestsPerJob),
      opt(r.wcuPerJob),
      opt(r.rcuPerJob),
      opt(r.ddbRequestsPerEmptyPoll, 2),
    ]),
  );
}

function printScaling(args: HotArgs, rows: Row[], previous?: Figures): void {
  const o = args.row;
  console.log(
    `\n== Scaling [measured]: ${o.jobs} echo jobs per row, ${o.clients} clients x ${o.inflight} in flight (each job long-polled until terminal), miners x ${o.minerSlots} slots (wait_seconds ${o.waitSeconds}), heartbeats every ${config.heartbeatSeconds} s ==`,
  );
  console.log(scalingTable(rows));
  console.log(
    `  jobs/s: completed jobs over the row's time (first submit to last job seen completed); submit->claim: client sends the submit -> a miner receives the job; claim tx: TransactWriteItems run by polls, per job a miner received (cancelled = lost races); DDB req/WCU/RCU per job: every DynamoDB call of the row (requests, stream and queue handlers) but the cron sweep; empty poll: the idle phase (${o.idleSeconds} s, the row's miners long-polling an empty queue with wait_seconds ${o.idleWaitSeconds}).`,
  );
  for (const r of rows) {
    const extra = [
      Object.keys(r.errors).length ? `unexpected answers ${JSON.stringify(r.errors)}` : "",
      total(r.server5xx) ? `5xx ${list(r.server5xx)}` : "",
    ].filter(Boolean);
    console.log(
      `  ${r.miners} miners: ${num(r.seconds, 1)} s; idle phase ${r.emptyPolls} empty polls, ${r.heartbeats} heartbeats (${opt(r.ddbWritesPerHeartbeat, 2)} DDB writes, ${opt(r.wcuPerHeartbeat, 2)} WCU each)${extra.length ? `; ${extra.join("; ")}` : ""}`,
    );
  }
  if (previous?.scaling?.length) {
    console.log(`\nScaling, previous (${previous.label ?? args.previous}):`);
    console.log(scalingTable(previous.scaling));
  }
}

/** Per job, by kind of request: its committed transactions, their items and money items (core/ledger postings). */
type MoneyFigures = Record<
  string,
  { transactions: number; items: number; moneyItems: number; moneyWcu: number }
>;

/** What a receipt costs a completion: its bytes in the result item and the time to build and sign it. */
interface ReceiptFigures {
  bytes: number;
  signMicros: Summary;
  cosignVerifyMicros: Summary;
}

interface SerialFigures {
  money?: MoneyFigures;
  receipts?: ReceiptFigures;
  jobs: number;
  claimP50Ms: number;
  completeP50Ms: number;
  path: Use;
  all: Use;
  errors: Record<string, number>;
}

function serialFrom(s: SerialResult): SerialFigures {
  const n = Math.max(1, s.jobs);
  return {
    jobs: s.jobs,
    claimP50Ms: s.claimMs.p50,
    completeP50Ms: s.endToEndMs.p50,
    path: per(use(s.snap, JOB_PATH), n),
    all: per(use(s.snap), n),
    errors: s.errors,
    money: Object.fromEntries(
      Object.entries(s.snap.transactions ?? {}).map(([route, t]) => [
        route,
        {
          transactions: t.count / n,
          items: t.items / n,
          moneyItems: t.moneyItems / n,
          moneyWcu: t.moneyWcu / n,
        },
      ]),
    ),
  };
}

/**
 * A receipt's cost, measured on its own (the serial pass's jobs carry one each; their write units are in the rows
 * above): the signed document's size as stored, and the CPU time of building and signing one (canonical JSON +
 * Ed25519), and of checking a miner's co-signature, in this process.
 */
async function measureReceipts(n = 2000): Promise<ReceiptFigures> {
  const { generateKeyPairSync } = await import("node:crypto");
  const { issueReceipt, jsonSha256, sha256Hex } = await import("../core/receipts/receipt.ts");
  const { canonicalBytes } = await import("../core/receipts/canonical.ts");
  const { signBytes, verifyBytes } = await import("../core/receipts/ed25519.ts");
  const { resultStatement } = await import("../core/receipts/statements.ts");
  const now = new Date().toISOString();
  const job = {
    id: "job_01m8tnpr9hqrtpm560cwrmngx7",
    accountId: "acct_01m8tnpr9hqrtpm560cwrmngx7",
    minerAccountId: "acct_01m8tnpr9hqrtpm560cwrmngx8",
    minerId: "mnr_01m8tnpr9hqrtpm560cwrmngx7",
    service: "echo",
    attempt: 1,
    unitPrice: 50,
    startedAt: now,
  } as unknown as Parameters<typeof issueReceipt>[0];
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const statement = canonicalBytes(
    resultStatement({
      job_id: job.id,
      attempt: 1,
      claim_token_sha256: sha256Hex("ct_x"),
      output_sha256: jsonSha256({}),
    }),
  );
  const cosig = signBytes(privateKey, statement);
  const sign: number[] = [];
  const verify: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const doc = await issueReceipt(job, {
      finishedAt: new Date(),
      units: 1,
      price: 50,
      fee: 5,
      outputSha256: jsonSha256({ i }),
      inputSha256: jsonSha256({ bench: i }),
      cosign: { public_key: "A".repeat(43), claim_token_sha256: sha256Hex("ct_x"), signature: cosig },
    });
    sign.push((performance.now() - t0) * 1000);
    bytes = Buffer.byteLength(JSON.stringify(doc));
    const t1 = performance.now();
    verifyBytes(publicKey, statement, cosig);
    verify.push((performance.now() - t1) * 1000);
  }
  return { bytes, signMicros: summarize(sign), cosignVerifyMicros: summarize(verify) };
}

function printReceipts(r: ReceiptFigures, listingWcuLocal: number): void {
  console.log("\n== What a receipt and its settlement add per job [measured] ==");
  console.log(
    `  in the completion's own transaction, inside the result item it writes anyway: no request, no transaction item; ${r.bytes} bytes of signed document (co-signed), which can take the result item over 1 KB: +2 WCU as AWS bills a transactional write per KB`,
  );
  console.log(
    `  building and signing one (RFC 8785 + Ed25519): p50 ${num(r.signMicros.p50, 0)} us, p99 ${num(r.signMicros.p99, 0)} us; checking a miner's co-signature: p50 ${num(r.cosignVerifyMicros.p50, 0)} us`,
  );
  console.log(
    `  settlement: no request, no item and no consumer per job; the result item's unbatched listing is one keys-only GSI4 entry: ${num(listingWcuLocal, 1)} WCU as DynamoDB Local reports (serial pass); the cron's sealing is per batch`,
  );
}

/** What the money half costs the hot path: the ledger's items inside the job's own transactions, per job. */
function printMoney(s: SerialFigures, previous?: SerialFigures): void {
  const rows = Object.entries(s.money ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (rows.length === 0) return;
  const total = rows.reduce(
    (t, [, m]) => ({
      transactions: t.transactions + m.transactions,
      items: t.items + m.items,
      moneyItems: t.moneyItems + m.moneyItems,
      moneyWcu: t.moneyWcu + m.moneyWcu,
    }),
    { transactions: 0, items: 0, moneyItems: 0, moneyWcu: 0 },
  );
  console.log(`\n== What money adds per job [measured, the serial pass] ==`);
  console.log(
    table(
      [
        "per job, by request",
        "transactions",
        "items",
        "money items",
        "money WCU (AWS)",
        "money share of items",
      ],
      [...rows, ["all", total] as const].map(([route, m]) => [
        String(route),
        num(m.transactions, 2),
        num(m.items, 2),
        num(m.moneyItems, 2),
        num(m.moneyWcu, 1),
        `${num((100 * m.moneyItems) / Math.max(1, m.items), 0)}%`,
      ]),
    ),
  );
  console.log(
    "  money items: an account's balance update and its ledger entry; a priced job holds at submit (client: 2 items) and at its result charges the client, pays the miner and the platform fee (3 postings: 6 items); no money request or transaction of its own",
  );
  if (previous)
    console.log(
      `  serial WCU per job, everything but the sweep: ${num(s.all.wcu, 1)} AWS-billed / ${num(s.all.wcuLocal, 1)} as DynamoDB Local reports; previous ${num(previous.all.wcu, 1)} / ${num(previous.all.wcuLocal, 1)}${previous.money ? "" : " (the previous run had no platform fee: its result transaction carried 2 postings, 4 money items)"}`,
    );
}

function printSerial(s: SerialFigures, waiting?: SerialFigures): void {
  console.log(`\n== Serial [measured]: ${s.jobs} jobs one at a time (1 client, 1 miner) ==`);
  console.log(
    table(
      ["per job", "transactions", "DDB requests", "DDB writes", "WCU (AWS)", "WCU (DDB Local)", "RCU"],
      [
        ["job path (submit, claim, start, result)", s.path, 2],
        ["everything but the sweep (+ observe, stream, consumers)", s.all, 2],
        ...(waiting
          ? [
              ["miner already waiting (submit hands off): job path", waiting.path, 2],
              ["miner already waiting: everything but the sweep", waiting.all, 2],
            ]
          : []),
      ].map(([label, u]) => {
        const x = u as Use;
        return [
          label as string,
          num(x.transactions, 2),
          num(x.requests, 2),
          num(x.writes, 2),
          num(x.wcu, 1),
          num(x.wcuLocal, 1),
          num(x.rcu, 1),
        ];
      }),
    ),
  );
  console.log(
    "  WCU (AWS): transactions at 2 units per item per KB, as AWS bills them; WCU (DDB Local): as DynamoDB Local reports them (less for transactions; the issue's own figures were taken this way)",
  );
  console.log(`  submit->claim p50 ${ms(s.claimP50Ms)}, submit->completed p50 ${ms(s.completeP50Ms)}`);
  if (waiting)
    console.log(
      `  miner already waiting: submit->claim p50 ${ms(waiting.claimP50Ms)}, submit->completed p50 ${ms(waiting.completeP50Ms)}`,
    );
  console.log(
    "  the targets below are the queued path's (the miner polls after the job is queued), the costlier of the two",
  );
  if (Object.keys(s.errors).length) console.log(`  unexpected answers: ${JSON.stringify(s.errors)}`);
}

function fleetFigures(f: Fleet): FleetFigures {
  return {
    jobsPerSecond: f.jobsPerSecond,
    submitP50Ms: f.submitP50Ms,
    submitP99Ms: f.submitP99Ms,
    claimP50Ms: f.claimP50Ms,
    claimP99Ms: f.claimP99Ms,
    server5xx: total(f.server5xx),
    ddbRequestsPerJob: f.ddbRequestsPerJob,
    wcuPerJob: f.wcuPerJob,
    rcuPerJob: f.rcuPerJob,
    claimTxPerClaimedJob: f.claimTxPerClaimedJob,
  };
}

function printFleet(f: Fleet, previous: Figures | undefined, issue: FleetFigures): void {
  console.log(
    `\n== Fleet [measured]: ${f.jobs} echo jobs, ${f.clients} clients x 1 submit in flight (unpaced, not waiting for completion), ${f.miners} miners x 1 slot long-polling (wait_seconds ${f.waitSeconds}) ==`,
  );
  console.log(
    `${f.completed} completed, ${f.failed} failed in ${num(f.seconds, 1)} s (first submit -> last result taken); submit -> result taken p50 ${ms(f.completeP50Ms)}, p99 ${ms(f.completeP99Ms)}`,
  );
  if (Object.keys(f.errors).length) console.log(`unexpected answers: ${JSON.stringify(f.errors)}`);
  const prev = previous?.fleet;
  const cols = ["figure", "now"];
  if (prev) cols.push("previous");
  cols.push("issue start");
  const fig = fleetFigures(f);
  const rows: [string, keyof FleetFigures, (n: number | undefined) => string][] = [
    ["jobs/s", "jobsPerSecond", (n) => opt(n)],
    ["submit p50", "submitP50Ms", ms],
    ["submit p99", "submitP99Ms", ms],
    ["submit->claim p50", "claimP50Ms", ms],
    ["submit->claim p99", "claimP99Ms", ms],
    ["5xx answers", "server5xx", (n) => opt(n, 0)],
    ["DynamoDB requests/job", "ddbRequestsPerJob", (n) => opt(n)],
    ["WCU/job", "wcuPerJob", (n) => opt(n)],
    ["RCU/job", "rcuPerJob", (n) => opt(n)],
    ["claim tx per claimed job", "claimTxPerClaimedJob", (n) => opt(n, 2)],
  ];
  console.log(
    table(
      cols,
      rows.map(([label, key, fmt]) => {
        const get = (x: FleetFigures) => x[key] as number | undefined;
        return [label, fmt(get(fig)), ...(prev ? [fmt(get(prev))] : []), fmt(get(issue))];
      }),
    ),
  );
  console.log(
    `  cancelled claim transactions per claimed job: ${num(f.cancelledClaimTxPerClaimedJob, 2)}; 5xx by request: ${list(f.server5xx)}; DDB per job: every call but the cron sweep`,
  );
  if (prev?.label) console.log(`  previous: ${prev.label}`);
  if (issue.label) console.log(`  issue start: ${issue.label}`);
}

function printFloor(floor: FloorOp[], fit: FloorFit | undefined, inflight: number, fleet?: Fleet): void {
  console.log(
    `\n== DynamoDB Local's floor [measured]: the stack's table, no HTTP, one client, ${inflight} in flight, fresh keys under a throw-away prefix ==`,
  );
  console.log(
    table(
      ["operation", "shape", "ops", "ops/s", "p50 ms", "p99 ms", "errors"],
      floor.map((f) => [
        FLOOR_KINDS[f.kind].label,
        FLOOR_KINDS[f.kind].shape,
        f.ops,
        num(f.perSecond, 0),
        num(f.latencyMs.p50, 1),
        num(f.latencyMs.p99, 1),
        f.errors,
      ]),
    ),
  );
  console.log(
    "  (the stack keeps running meanwhile: its stream poller reads these writes' stream records, idle timers re-read the queue summary)",
  );
  if (!fit || !fleet) return;
  console.log(
    "\nThe jobs/s that floor allows for the fleet's per-job mix [computed from the measured figures above]:",
  );
  console.log(
    table(
      ["stands for", "calls/job (fleet, measured)", "ops/s (floor, measured)", "DynamoDB ms/job (computed)"],
      fit.lines.map((l) => [
        FLOOR_KINDS[l.kind].label,
        num(l.perJob, 2),
        num(l.perSecond, 0),
        num(l.msPerJob, 2),
      ]),
    ),
  );
  console.log(
    "  each call of the fleet run (but the sweep) counted as the timed kind nearest to it: transactions by item count, reads (GetItem, Query, BatchGetItem) as GetItem, PutItem as PutItem, other writes as UpdateItem",
  );
  console.log(
    `  [computed] DynamoDB Local time per job ${num(fit.msPerJob, 2)} ms -> floor ${num(fit.jobsPerSecond, 1)} jobs/s; fleet ${num(fleet.jobsPerSecond, 1)} jobs/s [measured] = ${num(fit.achieved * 100, 0)}% of the floor [computed]`,
  );
}

interface Target {
  target: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
  basis: "measured" | "computed";
}

function targets(
  rows: Row[],
  fleet: Fleet | undefined,
  fit: FloorFit | undefined,
  s: SerialFigures | undefined,
): Target[] {
  const out: Target[] = [];
  const row = (n: number) => rows.find((r) => r.miners === n);
  const ten = row(10);
  for (const n of [50, 200]) {
    const r = row(n);
    const ratio = r && ten ? r.jobsPerSecond / ten.jobsPerSecond : undefined;
    out.push({
      target: `${n}-miner row vs 10-miner row, jobs/s`,
      goal: ">= 90%",
      measured:
        ratio === undefined
          ? "not run"
          : `${num(ratio * 100, 0)}% (${num(r?.jobsPerSecond ?? 0, 1)} / ${num(ten?.jobsPerSecond ?? 0, 1)})`,
      met: ratio === undefined ? undefined : ratio >= 0.9,
      basis: "computed",
    });
  }
  if (fleet) {
    const floorKnown = fit !== undefined && Number.isFinite(fit.achieved);
    out.push({
      target: "fleet jobs/s",
      goal: ">= 90 jobs/s, or >= 80% of the DynamoDB floor",
      measured: `${num(fleet.jobsPerSecond, 1)} jobs/s${fit ? `, ${num(fit.achieved * 100, 0)}% of the floor's ${num(fit.jobsPerSecond, 1)}` : ", floor not run"}`,
      met:
        fleet.jobsPerSecond >= 90 || (floorKnown && (fit?.achieved ?? 0) >= 0.8)
          ? true
          : floorKnown || !fit
            ? false
            : undefined,
      basis: fit ? "computed" : "measured",
    });
    out.push({
      target: "fleet submit->claim p50",
      goal: "<= 50 ms",
      measured: ms(fleet.claimP50Ms),
      met: fleet.claimP50Ms <= 50,
      basis: "measured",
    });
    out.push({
      target: "fleet submit->claim p99",
      goal: "<= 250 ms",
      measured: ms(fleet.claimP99Ms),
      met: fleet.claimP99Ms <= 250,
      basis: "measured",
    });
    out.push({
      target: "fleet 5xx answers",
      goal: "0",
      measured: String(total(fleet.server5xx)),
      met: total(fleet.server5xx) === 0,
      basis: "measured",
    });
  } else {
    out.push({ target: "fleet", goal: "", measured: "not run", met: undefined, basis: "measured" });
  }
  const serialTarget = (what: string, goal: number, got: number | undefined, digits: number) =>
    out.push({
      target: `serial, per job (all but the sweep): ${what}`,
      goal: `<= ${goal}`,
      measured: got === undefined ? "not run" : num(got, digits),
      met: got === undefined ? undefined : got <= goal,
      basis: "measured",
    });
  // "In all": auth, limiter, stream handler and consumers included (the issue's words), so the whole serial row.
  serialTarget("transactions", 3, s?.all.transactions, 2);
  serialTarget("DynamoDB requests", 10, s?.all.requests, 2);
  serialTarget("WCU (AWS)", 25, s?.all.wcu, 1);
  serialTarget("WCU (as DynamoDB Local reports)", 25, s?.all.wcuLocal, 1);
  const big = row(200);
  out.push({
    target: "200 miners under load: claim transactions per claimed job",
    goal: "<= 1.1",
    measured: big ? num(big.claimTxPerClaimedJob, 2) : "not run",
    met: big ? big.claimTxPerClaimedJob <= 1.1 : undefined,
    basis: "measured",
  });
  const polls = rows.filter((r) => r.emptyPolls > 0);
  const worst = polls.reduce<Row | undefined>(
    (a, r) => (!a || r.ddbRequestsPerEmptyPoll > a.ddbRequestsPerEmptyPoll ? r : a),
    undefined,
  );
  out.push({
    target: "empty poll: DynamoDB requests (worst row)",
    goal: "0",
    measured: worst ? `${num(worst.ddbRequestsPerEmptyPoll, 2)} (${worst.miners} miners)` : "not run",
    met: worst ? worst.ddbRequestsPerEmptyPoll === 0 : undefined,
    basis: "measured",
  });
  const beats = rows.reduce((a, r) => a + r.heartbeats, 0);
  const writes = rows.reduce((a, r) => a + (r.heartbeats ? r.ddbWritesPerHeartbeat * r.heartbeats : 0), 0);
  out.push({
    target: "heartbeat: DynamoDB writes",
    goal: "<= 1",
    measured: beats ? `${num(writes / beats, 2)} (${beats} heartbeats)` : "not run",
    met: beats ? writes / beats <= 1 : undefined,
    basis: "measured",
  });
  return out;
}

function printTargets(list: Target[]): void {
  console.log("\n== The issue's targets beside the measured numbers ==");
  console.log(
    table(
      ["target", "goal", "this run", "met", "basis"],
      list.map((t) => [
        t.target,
        t.goal,
        t.measured,
        t.met === undefined ? "-" : t.met ? "yes" : "NO",
        t.basis,
      ]),
    ),
  );
  console.log(
    "  serial targets count everything a job causes but the cron sweep (requests, stream handler, consumers, the client observing it); basis: measured = counted or timed in this run, computed = derived from measured figures (a ratio, the DynamoDB floor)",
  );
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const args = readHotArgs();
  const started = performance.now();
  console.log(`Hot-path benchmark: ${machineLine()}`);
  const previous = readPrevious(args.previous);
  const issue = previous?.issue ?? ISSUE_START;
  const stack = await startStack();
  instrument.setClassifier((method, path, status) => {
    const name = classify(method, path, status);
    if (status >= 500) fiveXx.set(name ?? path, (fiveXx.get(name ?? path) ?? 0) + 1);
    return name;
  });
  const raw: Record<string, unknown> = {};
  const rows: Row[] = [];
  let serialFig: SerialFigures | undefined;
  let fleet: Fleet | undefined;
  let floor: FloorOp[] | undefined;
  let fit: FloorFit | undefined;
  try {
    const setup = new Http(stack.url, 16);
    const clients: Account[] = await pool(
      Array.from({ length: Math.max(1, args.row.clients, args.fleet.clients) }),
      4,
      () => fundedClient(setup, stack),
    );
    setup.close();
    const miners: Miner[] = [];

    if (args.only.has("serial") && args.row.serialJobs > 0) {
      miners.push(...(await registerMiners(stack, 1, args.row.minerSlots)));
      await wake(stack, miners.slice(0, 1));
      progress(`serial: ${args.row.serialJobs} jobs, one at a time`);
      const s = await serial(stack, clients[0] as Account, miners[0] as Miner, args.row);
      raw.serial = s;
      serialFig = serialFrom(s);
      progress(`serial: ${args.row.serialJobs} jobs, the miner already waiting`);
      const w = await serial(stack, clients[0] as Account, miners[0] as Miner, args.row, {
        minerWaiting: true,
      });
      raw.serialWaiting = w;
      printSerial(serialFig, serialFrom(w));
      printMoney(serialFig, previous?.serial);
      serialFig.receipts = await measureReceipts();
      printReceipts(serialFig.receipts, (s.snap.writesByIndex.GSI4 ?? 0) / s.jobs);
    }

    if (args.only.has("scaling")) {
      for (const n of args.miners) {
        if (miners.length < n)
          miners.push(...(await registerMiners(stack, n - miners.length, args.row.minerSlots)));
        const fleetOfRow = miners.slice(0, n);
        await wake(stack, fleetOfRow);
        const opts: LifecycleOptions = { ...args.row, miners: n };
        progress(
          `scaling: ${n} miners x ${opts.minerSlots}, ${opts.jobs} jobs, ${opts.clients} clients x ${opts.inflight}`,
        );
        take5xx();
        const load = await underLoad(stack, clients.slice(0, opts.clients), fleetOfRow, opts);
        progress(
          `scaling: ${n} miners, idle long-poll (wait_seconds ${opts.idleWaitSeconds}) for ${opts.idleSeconds} s`,
        );
        const idleRun = await idle(stack, fleetOfRow, "long-poll", opts.idleWaitSeconds, opts);
        const row = rowFrom(n, load, idleRun, take5xx());
        progress(
          `scaling: ${n} miners: ${num(row.jobsPerSecond, 1)} jobs/s, claim p50 ${ms(row.claimP50Ms)}, ${num(row.claimTxPerClaimedJob, 2)} claim tx per claimed job`,
        );
        rows.push(row);
        raw[`scaling-${n}`] = { load, idle: idleRun };
      }
      printScaling(args, rows, previous);
    }

    if (args.only.has("fleet")) {
      const f = args.fleet;
      const fleetMiners = await registerMiners(stack, f.miners, 1);
      await wake(stack, fleetMiners);
      const opts: LifecycleOptions = {
        ...args.row,
        jobs: f.jobs,
        miners: f.miners,
        minerSlots: 1,
        clients: f.clients,
        inflight: 1,
        waitSeconds: f.waitSeconds,
        maxSeconds: f.maxSeconds,
      };
      progress(
        `fleet: ${f.jobs} jobs, ${f.clients} clients x 1 unpaced, ${f.miners} miners x 1 (wait_seconds ${f.waitSeconds})`,
      );
      take5xx();
      // The abandoned long polls (up to wait_seconds) are left to end on their own: nothing submits after this.
      const load = await underLoad(stack, clients.slice(0, f.clients), fleetMiners, opts, {
        observe: false,
        drainSeconds: 0,
      });
      fleet = fleetFrom(args, load, take5xx());
      raw.fleet = load;
      printFleet(fleet, previous, issue);
    }

    if (args.only.has("floor")) {
      progress(
        `floor: DynamoDB Local alone, ${args.floor.ops} ops (at most ${args.floor.seconds} s) per kind, ${args.floor.inflight} in flight`,
      );
      floor = await measureFloor(stack, args.floor);
      fit = fleet ? fitFloor(floor, fleet) : undefined;
      printFloor(floor, fit, args.floor.inflight, fleet);
    }
  } finally {
    instrument.uninstall();
    await stack.stop();
  }

  const list = targets(rows, fleet, fit, serialFig);
  printTargets(list);

  const latest = {
    label: `hot-path run of ${new Date().toISOString()}`,
    machine: machineLine(),
    seconds: (performance.now() - started) / 1000,
    options: {
      miners: args.miners,
      row: args.row,
      fleet: args.fleet,
      floor: args.floor,
      parts: [...args.only],
    },
    ...(fleet
      ? {
          fleet: {
            label: `${fleet.miners} miners x 1 slot (wait_seconds ${fleet.waitSeconds}), ${fleet.clients} clients x 1 submit in flight, unpaced (not waiting for completion), ${fleet.jobs} jobs`,
            ...fleetFigures(fleet),
          },
        }
      : {}),
    issue,
    scaling: rows,
    serial: serialFig,
    ...(floor
      ? {
          floor: {
            ops: floor,
            ...(fit ? { jobsPerSecond: fit.jobsPerSecond, achieved: fit.achieved, fit } : {}),
          },
        }
      : {}),
    targets: list,
  };
  mkdirSync(dirname(args.latest), { recursive: true });
  writeFileSync(args.latest, `${JSON.stringify(latest, null, 2)}\n`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ hotPath: latest, raw }, null, 2));
  console.log(`\nFinished in ${num((performance.now() - started) / 1000, 0)} s: ${machineLine()}`);
  progress(`figures written to ${args.latest}${previous ? `; compared with ${args.previous}` : ""}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

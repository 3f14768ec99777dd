import "./env.ts";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import vm from "node:vm";
import { type RawData, WebSocket } from "ws";
import { config } from "../core/config.ts";
import { SETTINGS, setting } from "../core/settings.ts";
import { EVENT_SOURCE } from "../events/catalog.ts";
import { matches, RULES } from "../events/rules.ts";
import type { LocalStack } from "../local/stack.ts";
import { numArg } from "./lib/args.ts";
import { call, Http, sleep } from "./lib/http.ts";
import * as instrument from "./lib/instrument.ts";
import { type Account, createAccount, fundedClient, type Miner, pool } from "./lib/setup.ts";
import { machineLine, startStack } from "./lib/stack.ts";
import { num, progress, type Summary, summarize, table } from "./lib/stats.ts";
import { classify, type IdleResult, idle, type LifecycleOptions } from "./lifecycle.ts";

/**
 * `npx tsx bench/doorbell.ts` (`npm run bench:doorbell`): what an idle fleet on the WebSocket doorbell costs, and how
 * fast a rung miner claims (issue 10), on one in-process local stack with the usual instrumentation.
 *
 * 1. Register N idle miners (echo, 1 slot) over several miner accounts; connect all N to `GET /v1/miners/connect`;
 *    each sends `hello`, a first heartbeat, then heartbeats at the welcome's interval (a random phase each).
 *    Process memory before and after connecting.
 * 2. Idle for S seconds: DynamoDB requests, WCU and RCU per idle miner-minute, frames in and out per idle
 *    miner-minute, what one heartbeat frame costs.
 * 3. J echo jobs from one funded client (a few submits in flight, nobody waiting on a job): each ready job rings up to
 *    COORD_RING_FANOUT idle miners; a rung miner claims with `POST /v1/miners/poll` (`wait_seconds` 0), then posts
 *    start and result. Ring -> claim and submit -> claim p50/p99, rings, polls and claim transactions per job.
 * 4. The same N miners long-polling over HTTP for S seconds (`wait_seconds` 20, HTTP heartbeats every
 *    COORD_HEARTBEAT_SECONDS), for comparison: DynamoDB per idle miner-minute, polls per miner-minute, the seconds a
 *    poll holds the server (on Lambda: billed duration).
 * The previous run's figures (bench/results/doorbell-previous.json) are printed beside this run's, which go to
 * bench/results/doorbell-latest.json (bench/capacity.ts reads it).
 */

// ---------------------------------------------------------------------------------------------------------------
// Flags

const FLAGS = {
  miners: { type: "string" },
  "idle-seconds": { type: "string" },
  jobs: { type: "string" },
  "miners-per-account": { type: "string" },
  "submit-inflight": { type: "string" },
  "connect-concurrency": { type: "string" },
  "wait-seconds": { type: "string" },
  "skip-long-poll": { type: "boolean" },
  previous: { type: "string" },
  latest: { type: "string" },
  json: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const USAGE = `The doorbell benchmark (issue 10) on the in-process local stack; figures to stdout, progress to stderr.

  npx tsx bench/doorbell.ts [flags]          npm run bench:doorbell (defaults: 1000 miners, 60 s idle, 100 jobs)
  npx tsx bench/doorbell.ts --miners 20 --idle-seconds 5 --jobs 10      a quick smoke run

  --miners N               idle miners (echo, 1 slot each) connected over the doorbell (default 1000)
  --idle-seconds S         length of the idle measurement, WebSocket and then long-poll (default 60)
  --jobs J                 echo jobs submitted after the idle phase (default 100; 0: none)
  --miners-per-account K   miners registered under one miner account and key (default 50)
  --submit-inflight I      submits the client keeps in flight (default 4; nobody waits for a job)
  --connect-concurrency C  sockets opened at once (default 50)
  --wait-seconds W         wait_seconds of the long-poll comparison (default 20)
  --skip-long-poll         leave out the HTTP long-poll comparison
  --previous FILE          figures to print beside this run's (default bench/results/doorbell-previous.json)
  --latest FILE            where this run's figures go (default bench/results/doorbell-latest.json)
  --json FILE              also write the raw results (instrument snapshots included)
  -h, --help               this text

Settings read as usual: COORD_IDLE_HEARTBEAT_SECONDS (the doorbell's idle heartbeat, 60), COORD_RING_FANOUT (2),
COORD_HEARTBEAT_SECONDS (HTTP heartbeats, 10). To compare the next run with this one, copy latest over previous.
`;

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

function readDoorbellArgs() {
  const { values } = parseArgs({ options: FLAGS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const whole = (raw: string | undefined, fallback: number, name: string, min = 0) => {
    const n = numArg(raw, fallback, name);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} takes a whole number >= ${min}, got ${raw}`);
    return n;
  };
  return {
    miners: whole(values.miners, 1000, "miners", 1),
    idleSeconds: numArg(values["idle-seconds"], 60, "idle-seconds"),
    jobs: whole(values.jobs, 100, "jobs"),
    minersPerAccount: whole(values["miners-per-account"], 50, "miners-per-account", 1),
    submitInflight: whole(values["submit-inflight"], 4, "submit-inflight", 1),
    connectConcurrency: whole(values["connect-concurrency"], 50, "connect-concurrency", 1),
    waitSeconds: numArg(values["wait-seconds"], 20, "wait-seconds"),
    longPoll: !values["skip-long-poll"],
    previous: values.previous ?? here("./results/doorbell-previous.json"),
    latest: values.latest ?? here("./results/doorbell-latest.json"),
    json: values.json,
  };
}
type DoorbellArgs = ReturnType<typeof readDoorbellArgs>;

// ---------------------------------------------------------------------------------------------------------------
// Counting from instrument snapshots

const SWEEP = "bg: sweep (cron)";
/** What a job causes (the miners' heartbeat frames and the sweep excluded). */
const JOB_BUCKETS = [
  "submit",
  "claim",
  "empty poll",
  "start",
  "result",
  "bg: stream handler",
  "bg: queue consumers",
];
const HTTP_CLASSES = ["submit", "claim", "empty poll", "start", "result"];
const isWrite = (label: string) =>
  /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems|BatchWriteItem)\b/.test(label);

interface Use {
  requests: number;
  writes: number;
  transactions: number;
  wcu: number;
  rcu: number;
}

/** DynamoDB use of the named buckets (default: every bucket but the cron sweep, which is fleet-wide upkeep). */
function use(snap: instrument.Snapshot, names?: string[]): Use {
  const u: Use = { requests: 0, writes: 0, transactions: 0, wcu: 0, rcu: 0 };
  for (const [name, b] of Object.entries(snap.buckets)) {
    if (names ? !names.includes(name) : name === SWEEP) continue;
    u.requests += b.calls;
    u.wcu += b.write;
    u.rcu += b.read;
    for (const [label, op] of Object.entries(b.ops)) {
      if (isWrite(label)) u.writes += op.calls;
      if (label.startsWith("TransactWriteItems")) u.transactions += op.calls;
    }
  }
  return u;
}

const per = (u: Use, n: number): Use => {
  const d = n > 0 ? n : Number.NaN;
  return {
    requests: u.requests / d,
    writes: u.writes / d,
    transactions: u.transactions / d,
    wcu: u.wcu / d,
    rcu: u.rcu / d,
  };
};

/** Calls of operations whose label matches, over every bucket but the sweep. */
function opCalls(
  snap: instrument.Snapshot,
  match: (label: string) => boolean,
): { calls: number; read: number } {
  let calls = 0;
  let read = 0;
  for (const [name, b] of Object.entries(snap.buckets)) {
    if (name === SWEEP) continue;
    for (const [label, op] of Object.entries(b.ops)) {
      if (!match(label)) continue;
      calls += op.calls;
      read += op.read;
    }
  }
  return { calls, read };
}

/** SQS messages the bus rules deliver for these events (each matching rule delivers one). */
function deliveries(events: Record<string, number>): number {
  let n = 0;
  for (const [type, count] of Object.entries(events))
    n += count * RULES.filter((r) => matches(r, { source: EVENT_SOURCE, "detail-type": type })).length;
  return n;
}

const serverMs = (snap: instrument.Snapshot, name: string): Summary =>
  summarize(snap.buckets[name]?.serverMs ?? []);
const requestsOf = (snap: instrument.Snapshot, name: string) => snap.buckets[name]?.requests ?? 0;
const sumOf = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const perEach = <K extends string>(r: Record<K, number>, n: number) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, (v as number) / n])) as Record<K, number>;

// ---------------------------------------------------------------------------------------------------------------
// Memory

let gc: (() => void) | undefined;
try {
  v8.setFlagsFromString("--expose-gc");
  gc = vm.runInNewContext("gc") as () => void;
} catch {
  gc = undefined;
}

interface Memory {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
}

async function memory(): Promise<Memory> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(100);
  }
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external };
}

// ---------------------------------------------------------------------------------------------------------------
// The miners on the doorbell

type Msg = Record<string, unknown>;

interface Job {
  job_id: string;
  claim_token: string;
  input: { n?: number };
}

interface Bell {
  miner: Miner;
  ws: WebSocket;
  /** Heartbeat interval, seconds, from the coordinator's last answer. */
  intervalS: number;
  busy: boolean;
  /** A ring that arrived while busy (when it arrived): the miner polls again once free. */
  again?: number;
  held: Map<string, string>;
  timer?: NodeJS.Timeout;
  wait?: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void };
}

type PollReason = "ring" | "hint" | "follow-up";

interface Tally {
  /** Frames the miners sent (into the coordinator), by type, and their bytes. */
  framesIn: Record<string, number>;
  bytesIn: number;
  /** Frames the miners received (out of the coordinator), by type, and their bytes. */
  framesOut: Record<string, number>;
  bytesOut: number;
  rings: number;
  /** Rings by the miner that received them (how widely a burst of jobs is spread). */
  ringsByMiner: Map<string, number>;
  /** Rings that reached a miner already busy (a job in hand or a poll in flight). */
  ringsWhileBusy: number;
  /**
   * Polls by what caused them: a ring; a welcome or heartbeat answer saying `work: true` (a ring lost); a follow-up
   * (the poll before brought a job, so more may wait). And how many of each got nothing.
   */
  polls: Record<PollReason, number>;
  emptyPolls: Record<PollReason, number>;
  claimed: number;
  completed: number;
  failed: number;
  ringToClaimMs: number[];
  submitToClaimMs: number[];
  submitToDoneMs: number[];
  errors: Record<string, number>;
}

const newTally = (): Tally => ({
  framesIn: {},
  bytesIn: 0,
  framesOut: {},
  bytesOut: 0,
  rings: 0,
  ringsByMiner: new Map(),
  ringsWhileBusy: 0,
  polls: { ring: 0, hint: 0, "follow-up": 0 },
  emptyPolls: { ring: 0, hint: 0, "follow-up": 0 },
  claimed: 0,
  completed: 0,
  failed: 0,
  ringToClaimMs: [],
  submitToClaimMs: [],
  submitToDoneMs: [],
  errors: {},
});

type Phase = "connect" | "idle" | "jobs" | "closing";

/** The fleet of doorbell miners and what they saw, phase by phase. */
class Fleet {
  readonly bells: Bell[] = [];
  t = newTally();
  phase: Phase = "connect";
  /** Jobs of the job phase: input `n` -> when its submit was sent. */
  readonly submittedAt = new Map<number, number>();
  lastDone = 0;
  private readonly http: Http;
  private readonly url: string;

  constructor(stack: LocalStack) {
    this.url = `${stack.url.replace(/^http/, "ws")}/v1/miners/connect`;
    this.http = new Http(stack.url, 256);
  }

  error(what: string): void {
    this.t.errors[what] = (this.t.errors[what] ?? 0) + 1;
  }

  private send(bell: Bell, msg: Msg): void {
    if (bell.ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(msg);
    const type = String(msg.type);
    this.t.framesIn[type] = (this.t.framesIn[type] ?? 0) + 1;
    this.t.bytesIn += Buffer.byteLength(text);
    bell.ws.send(text);
  }

  private ask(bell: Bell, msg: Msg, pred: (m: Msg) => boolean, ms = 30_000): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        bell.wait = undefined;
        reject(new Error(`no answer to ${String(msg.type)} within ${ms} ms`));
      }, ms);
      bell.wait = {
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.send(bell, msg);
    });
  }

  private onMessage(bell: Bell, data: RawData): void {
    const text = data.toString();
    this.t.bytesOut += Buffer.byteLength(text);
    let msg: Msg;
    try {
      msg = JSON.parse(text) as Msg;
    } catch {
      this.error("unparseable frame");
      return;
    }
    const type = String(msg.type);
    this.t.framesOut[type] = (this.t.framesOut[type] ?? 0) + 1;
    if ((type === "welcome" || type === "heartbeat") && typeof msg.heartbeat_interval_seconds === "number")
      bell.intervalS = msg.heartbeat_interval_seconds;
    if (bell.wait?.pred(msg)) {
      const w = bell.wait;
      bell.wait = undefined;
      w.resolve(msg);
    }
    if (type === "work") {
      this.t.rings++;
      this.onRing(bell, performance.now(), "ring");
    } else if (type === "error") this.error(`error frame: ${String(msg.code)}`);
    else if (type === "heartbeat" && msg.status !== "online")
      this.error(`heartbeat status ${String(msg.status)}`);
    if ((type === "welcome" || type === "heartbeat") && msg.work === true && this.phase === "jobs")
      this.onRing(bell, performance.now(), "hint");
  }

  private onRing(bell: Bell, at: number, why: "ring" | "hint"): void {
    if (why === "ring")
      this.t.ringsByMiner.set(bell.miner.id, (this.t.ringsByMiner.get(bell.miner.id) ?? 0) + 1);
    if (bell.busy) {
      // Busy (its one slot taken, or a poll in flight): the ring stands, and the miner polls once free.
      if (why === "ring") {
        this.t.ringsWhileBusy++;
        bell.again ??= at;
      }
      return;
    }
    void this.claim(bell, at, why);
  }

  /**
   * A rung miner, as the reference agent (cli/miner/agent.ts) behaves on the doorbell: poll at once
   * (`wait_seconds` 0); a job it gets, it runs (start, then result = input) and polls again at once while polls
   * bring work (more may wait); a ring that came while it was busy makes it poll again too.
   */
  private async claim(bell: Bell, at: number, why: "ring" | "hint"): Promise<void> {
    bell.busy = true;
    const auth = { key: bell.miner.key, headers: bell.miner.headers };
    /** The ring this poll answers (ring -> claim runs from it), if a ring caused it. */
    let ringAt: number | undefined = why === "ring" ? at : undefined;
    let reason: PollReason = why;
    try {
      for (;;) {
        if (bell.again !== undefined) {
          ringAt = bell.again;
          bell.again = undefined;
          reason = "ring";
        }
        const res = await call(() =>
          this.http.post<{ jobs?: Job[] }>("/v1/miners/poll", { wait_seconds: 0, max_jobs: 1 }, auth),
        );
        const now = performance.now();
        this.t.polls[reason]++;
        const jobs = res.status === 200 ? (res.body.jobs ?? []) : [];
        if (res.status !== 200 && res.status !== 204) this.error(`poll ${res.status}`);
        const status = res.headers["coord-miner-status"];
        if (status) this.error(`poll: miner ${String(status)}`);
        if (jobs.length === 0) {
          this.t.emptyPolls[reason]++;
          ringAt = undefined;
          if (bell.again === undefined) break;
          continue;
        }
        for (const job of jobs) {
          this.t.claimed++;
          if (ringAt !== undefined) this.t.ringToClaimMs.push(now - ringAt);
          const t0 = this.submittedAt.get(Number(job.input?.n));
          if (t0 !== undefined) this.t.submitToClaimMs.push(now - t0);
          bell.held.set(job.job_id, job.claim_token);
          const ok = await this.runJob(bell, job);
          bell.held.delete(job.job_id);
          if (ok) {
            this.t.completed++;
            if (t0 !== undefined) this.t.submitToDoneMs.push(performance.now() - t0);
          } else this.t.failed++;
          this.lastDone = performance.now();
        }
        ringAt = undefined;
        reason = "follow-up";
      }
    } catch (err) {
      if (this.phase !== "closing") this.error(`claim: ${String(err)}`);
    } finally {
      bell.busy = false;
    }
  }

  private async runJob(bell: Bell, job: Job): Promise<boolean> {
    const auth = { key: bell.miner.key, headers: bell.miner.headers };
    const body = { claim_token: job.claim_token };
    const started = await call(() => this.http.post(`/v1/miners/${job.job_id}/start`, body, auth));
    if (started.status !== 200) this.error(`start ${started.status}`);
    const done = await call(() =>
      this.http.post(`/v1/miners/${job.job_id}/result`, { ...body, output: job.input }, auth),
    );
    if (done.status !== 200) this.error(`result ${done.status}`);
    return done.status === 200;
  }

  private beat(bell: Bell): void {
    const jobs = [...bell.held].map(([job_id, claim_token]) => ({ job_id, claim_token }));
    this.send(bell, jobs.length ? { type: "heartbeat", jobs } : { type: "heartbeat" });
  }

  private schedule(bell: Bell, ms: number): void {
    bell.timer = setTimeout(() => {
      if (bell.ws.readyState !== WebSocket.OPEN) return;
      this.beat(bell);
      this.schedule(bell, bell.intervalS * 1000);
    }, ms);
  }

  /** Connects one miner: upgrade, hello -> welcome, a first heartbeat, then heartbeats at a random phase. */
  async connect(miner: Miner): Promise<void> {
    const ws = new WebSocket(this.url, {
      headers: { authorization: `Bearer ${miner.key}`, ...miner.headers },
      perMessageDeflate: false,
    });
    const bell: Bell = {
      miner,
      ws,
      intervalS: setting("COORD_IDLE_HEARTBEAT_SECONDS"),
      busy: false,
      held: new Map(),
    };
    ws.on("message", (data) => this.onMessage(bell, data));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once("error", reject);
    });
    ws.on("error", (err) => this.error(`socket error: ${err.message}`));
    ws.on("close", (code) => {
      if (this.phase !== "closing") this.error(`socket closed by the server (${code})`);
    });
    this.bells.push(bell);
    const welcome = await this.ask(
      bell,
      { type: "hello" },
      (m) => m.type === "welcome" || m.type === "error",
    );
    if (welcome.type !== "welcome") throw new Error(`hello answered ${JSON.stringify(welcome)}`);
    // Registered a while ago (the fleet takes time to register): say so at once, as a miner's first heartbeat.
    await this.ask(bell, { type: "heartbeat" }, (m) => m.type === "heartbeat" || m.type === "error");
    this.schedule(bell, Math.random() * bell.intervalS * 1000);
  }

  /** The interval the welcomes gave (the first miner's; they are all the same). */
  get intervalSeconds(): number {
    return this.bells[0]?.intervalS ?? setting("COORD_IDLE_HEARTBEAT_SECONDS");
  }

  async closeAll(): Promise<void> {
    this.phase = "closing";
    await Promise.all(
      this.bells.map(
        (b) =>
          new Promise<void>((resolve) => {
            clearTimeout(b.timer);
            if (b.ws.readyState === WebSocket.CLOSED) return resolve();
            const force = setTimeout(() => {
              b.ws.terminate();
              resolve();
            }, 5000);
            b.ws.once("close", () => {
              clearTimeout(force);
              resolve();
            });
            b.ws.close(1000, "benchmark over");
          }),
      ),
    );
    this.http.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Setup

async function registerFleet(
  stack: LocalStack,
  n: number,
  perAccount: number,
  run: string,
): Promise<Miner[]> {
  const http = new Http(stack.url, 32);
  const t0 = performance.now();
  const accounts = await pool(Array.from({ length: Math.ceil(n / perAccount) }), 8, () =>
    createAccount(http, stack, "miner"),
  );
  let done = 0;
  const miners = await pool(Array.from({ length: n }), 16, async (_, i) => {
    const acct = accounts[Math.floor(i / perAccount)] as Account;
    const res = await call(() =>
      http.post<{ miner_id: string }>(
        "/v1/miners/register",
        { name: `bell-${run}-${i}`, services: ["echo"], concurrency: 1, prices: { echo: 50 } },
        { key: acct.key },
      ),
    );
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    if (++done % 200 === 0) progress(`registered ${done}/${n} miners`);
    return { id: res.body.miner_id, key: acct.key, headers: { "x-miner-id": res.body.miner_id } };
  });
  http.close();
  progress(
    `registered ${n} miners (echo, 1 slot) over ${accounts.length} miner accounts in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return miners;
}

// ---------------------------------------------------------------------------------------------------------------
// Results

interface PerFrame {
  n: number;
  ddbRequests: number;
  writes: number;
  wcu: number;
  rcu: number;
  serverMsP50: number;
  serverMsMean: number;
}

function perFrame(snap: instrument.Snapshot, name: string): PerFrame {
  const n = requestsOf(snap, name);
  const u = per(use(snap, [name]), n);
  const s = serverMs(snap, name);
  return {
    n,
    ddbRequests: u.requests,
    writes: u.writes,
    wcu: u.wcu,
    rcu: u.rcu,
    serverMsP50: s.p50,
    serverMsMean: s.mean,
  };
}

interface ConnectResult {
  miners: number;
  accounts: number;
  registerSeconds: number;
  connectSeconds: number;
  /** Per connection: the upgrade, the hello and the first heartbeat as the server handled them. */
  upgrade: PerFrame;
  hello: PerFrame;
  firstHeartbeat: PerFrame;
  /** DynamoDB Local's index write units per first heartbeat (the only writes of the connect phase). */
  indexUnitsPerFirstHeartbeat: Record<string, number>;
  errors: Record<string, number>;
}

interface MemoryResult {
  before: Memory;
  after: Memory;
  connections: number;
  rssBytesPerConnection: number;
  heapBytesPerConnection: number;
  gcForced: boolean;
}

interface WsIdleResult {
  miners: number;
  seconds: number;
  minerMinutes: number;
  heartbeatIntervalSeconds: number;
  /** Every DynamoDB call but the sweep's, per idle miner-minute. */
  perMinerMinute: Use & { framesIn: number; framesOut: number };
  /** Miner -> coordinator and coordinator -> miner frames by type, over the window. */
  framesIn: Record<string, number>;
  framesOut: Record<string, number>;
  bytesPerFrameIn: number;
  bytesPerFrameOut: number;
  heartbeat: PerFrame;
  /** DynamoDB Local's index write units per heartbeat frame (table, GSI2...). */
  indexUnitsPerHeartbeat: Record<string, number>;
  logBytesPerFrame: number;
  /** The cron sweep, fleet-wide, per minute (not per miner). */
  sweepPerMinute: Use;
  byBucket: Record<string, Use>;
  errors: Record<string, number>;
}

interface JobsResult {
  jobs: number;
  accepted: number;
  completed: number;
  failed: number;
  missing: number;
  seconds: number;
  jobsPerSecond: number;
  submitMs: Summary;
  ringToClaimMs: Summary;
  submitToClaimMs: Summary;
  submitToDoneMs: Summary;
  ringsPerJob: number;
  /** How far the rings spread: distinct miners rung, the most rings one miner got, rings that found it busy. */
  minersRung: number;
  maxRingsOneMiner: number;
  ringsWhileBusyPerJob: number;
  /** Polls per job, all reasons (empty ones included). */
  pollsPerJob: number;
  emptyRungPollsPerJob: number;
  pollsPerJobBy: Record<PollReason, number>;
  emptyPollsPerJobBy: Record<PollReason, number>;
  claimTxPerClaimedJob: number;
  cancelledClaimTxPerClaimedJob: number;
  /** DynamoDB per job: the requests of the job path, the stream handler (its ring reads) and the consumers. */
  ddbPerJob: Use;
  /** The ring's own reads (the candidates' miner items, BatchGetItem) per job. */
  ringReadsPerJob: { calls: number; rcu: number };
  /** The queue summary item: writes (stream marks, round clears) and reads per job, every bucket but the sweep. */
  summaryPerJob: { writes: number; reads: number };
  httpPerJob: Record<string, number>;
  serverMsP50: Record<string, number>;
  eventsPerJob: number;
  streamRecordsPerJob: number;
  sqsDeliveriesPerJob: number;
  streamMsPerRecord: number;
  consumerMsPerMessage: number;
  logBytesPerJob: number;
  /** DynamoDB Local's index write units per job, the heartbeats of the phase taken out. */
  indexUnitsPerJob: Record<string, number>;
  errors: Record<string, number>;
}

interface LongPollResult {
  miners: number;
  seconds: number;
  minerMinutes: number;
  waitSeconds: number;
  heartbeatSeconds: number;
  polls: number;
  heartbeats: number;
  perMinerMinute: Use & { polls: number; heartbeats: number; serverSeconds: number };
  poll: PerFrame;
  heartbeat: PerFrame;
  /** Seconds a poll held the server (request start -> response finished). */
  pollHoldSeconds: { p50: number; mean: number; p99: number };
  /** Queue summary reads per poll here (one process shares the summary cache; on Lambda each poll has its own). */
  summaryReadsPerPoll: number;
  logBytesPerRequest: number;
  sweepPerMinute: Use;
}

interface Result {
  connect: ConnectResult;
  memory: MemoryResult;
  websocket: WsIdleResult;
  jobs?: JobsResult;
  longPoll?: LongPollResult;
}

function indexUnits(snap: instrument.Snapshot): Record<string, number> {
  return { ...snap.writesByIndex };
}

function wsIdleFrom(fleet: Fleet, snap: instrument.Snapshot, seconds: number): WsIdleResult {
  const miners = fleet.bells.length;
  const minerMinutes = (miners * seconds) / 60;
  const all = use(snap);
  const t = fleet.t;
  const framesIn = sumOf(t.framesIn);
  const framesOut = sumOf(t.framesOut);
  const heartbeat = perFrame(snap, "ws heartbeat");
  const idx = indexUnits(snap);
  const frames = Object.entries(snap.buckets)
    .filter(([name]) => name.startsWith("ws "))
    .reduce((a, [, b]) => a + b.requests, 0);
  const byBucket: Record<string, Use> = {};
  for (const name of Object.keys(snap.buckets)) if (name !== SWEEP) byBucket[name] = use(snap, [name]);
  return {
    miners,
    seconds,
    minerMinutes,
    heartbeatIntervalSeconds: fleet.intervalSeconds,
    perMinerMinute: {
      ...per(all, minerMinutes),
      framesIn: framesIn / minerMinutes,
      framesOut: framesOut / minerMinutes,
    },
    framesIn: { ...t.framesIn },
    framesOut: { ...t.framesOut },
    bytesPerFrameIn: framesIn ? t.bytesIn / framesIn : Number.NaN,
    bytesPerFrameOut: framesOut ? t.bytesOut / framesOut : Number.NaN,
    heartbeat,
    indexUnitsPerHeartbeat: Object.fromEntries(
      Object.entries(idx).map(([k, v]) => [k, heartbeat.n ? v / heartbeat.n : Number.NaN]),
    ),
    logBytesPerFrame: frames ? snap.logBytes / frames : Number.NaN,
    sweepPerMinute: per(use(snap, [SWEEP]), seconds / 60),
    byBucket,
    errors: { ...t.errors },
  };
}

function jobsFrom(
  fleet: Fleet,
  snap: instrument.Snapshot,
  o: { jobs: number; accepted: number; seconds: number; submitMs: number[] },
  hbIndex: Record<string, number>,
): JobsResult {
  const t = fleet.t;
  const n = o.accepted;
  const claimed = Math.max(1, t.claimed);
  let attempted = 0;
  let cancelled = 0;
  for (const phase of ["claim", "empty poll"]) {
    for (const [label, op] of Object.entries(snap.buckets[phase]?.ops ?? {})) {
      if (!label.startsWith("TransactWriteItems")) continue;
      attempted += op.calls;
      cancelled += op.errors;
    }
  }
  const httpPerJob: Record<string, number> = {};
  const serverMsP50: Record<string, number> = {};
  for (const c of HTTP_CLASSES) {
    httpPerJob[c] = requestsOf(snap, c) / n;
    serverMsP50[c] = serverMs(snap, c).p50;
  }
  const events = sumOf(snap.events);
  const stream = snap.invocations["stream handler"];
  const consumers = snap.invocations["queue consumers"];
  const ring = opCalls(snap, (l) => l.startsWith("BatchGetItem MINER"));
  const beatsInPhase = requestsOf(snap, "ws heartbeat");
  const idx: Record<string, number> = {};
  for (const [k, v] of Object.entries(snap.writesByIndex))
    idx[k] = Math.max(0, v - beatsInPhase * (Number.isFinite(hbIndex[k]) ? (hbIndex[k] ?? 0) : 0)) / n;
  return {
    jobs: o.jobs,
    accepted: o.accepted,
    completed: t.completed,
    failed: t.failed,
    missing: o.accepted - t.completed - t.failed,
    seconds: o.seconds,
    jobsPerSecond: o.seconds > 0 ? t.completed / o.seconds : Number.NaN,
    submitMs: summarize(o.submitMs),
    ringToClaimMs: summarize(t.ringToClaimMs),
    submitToClaimMs: summarize(t.submitToClaimMs),
    submitToDoneMs: summarize(t.submitToDoneMs),
    ringsPerJob: t.rings / n,
    minersRung: t.ringsByMiner.size,
    maxRingsOneMiner: Math.max(0, ...t.ringsByMiner.values()),
    ringsWhileBusyPerJob: t.ringsWhileBusy / n,
    pollsPerJob: sumOf(t.polls) / n,
    emptyRungPollsPerJob: t.emptyPolls.ring / n,
    pollsPerJobBy: perEach(t.polls, n),
    emptyPollsPerJobBy: perEach(t.emptyPolls, n),
    claimTxPerClaimedJob: attempted / claimed,
    cancelledClaimTxPerClaimedJob: cancelled / claimed,
    ddbPerJob: per(use(snap, JOB_BUCKETS), n),
    ringReadsPerJob: { calls: ring.calls / n, rcu: ring.read / n },
    summaryPerJob: {
      writes: opCalls(snap, (l) => l === "UpdateItem QUEUES/SUMMARY").calls / n,
      reads: opCalls(snap, (l) => l === "GetItem QUEUES/SUMMARY").calls / n,
    },
    httpPerJob,
    serverMsP50,
    eventsPerJob: events / n,
    streamRecordsPerJob: snap.streamRecords / n,
    sqsDeliveriesPerJob: deliveries(snap.events) / n,
    streamMsPerRecord: stream?.records ? stream.ms / stream.records : Number.NaN,
    consumerMsPerMessage: consumers?.records ? consumers.ms / consumers.records : Number.NaN,
    logBytesPerJob: snap.logBytes / n,
    indexUnitsPerJob: idx,
    errors: { ...t.errors },
  };
}

function longPollFrom(r: IdleResult, miners: number): LongPollResult {
  const minerMinutes = (miners * r.seconds) / 60;
  const poll = perFrame(r.snap, "empty poll");
  const heartbeat = perFrame(r.snap, "heartbeat");
  const hold = summarize((r.snap.buckets["empty poll"]?.serverMs ?? []).map((ms) => ms / 1000));
  const serverSeconds =
    [...(r.snap.buckets["empty poll"]?.serverMs ?? []), ...(r.snap.buckets.heartbeat?.serverMs ?? [])].reduce(
      (a, b) => a + b,
      0,
    ) / 1000;
  const summary = opCalls(r.snap, (l) => l === "GetItem QUEUES/SUMMARY").calls;
  return {
    miners,
    seconds: r.seconds,
    minerMinutes,
    waitSeconds: r.waitSeconds,
    heartbeatSeconds: config.heartbeatSeconds,
    polls: r.polls,
    heartbeats: r.heartbeats,
    perMinerMinute: {
      ...per(use(r.snap), minerMinutes),
      polls: r.polls / minerMinutes,
      heartbeats: r.heartbeats / minerMinutes,
      serverSeconds: serverSeconds / minerMinutes,
    },
    poll,
    heartbeat,
    pollHoldSeconds: { p50: hold.p50, mean: hold.mean, p99: hold.p99 },
    summaryReadsPerPoll: r.polls ? summary / r.polls : Number.NaN,
    logBytesPerRequest: r.snap.logBytes / Math.max(1, r.polls + r.heartbeats),
    sweepPerMinute: per(use(r.snap, [SWEEP]), r.seconds / 60),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Figures compared across runs (flat, so that a previous file of any age can be read)

type Fmt = "int" | "n1" | "n2" | "n3" | "ms" | "s" | "kb" | "mb";
interface FigureDef {
  key: string;
  label: string;
  fmt: Fmt;
}

const FIGURES: Record<string, FigureDef[]> = {
  memory: [
    { key: "memory.rssBeforeMb", label: "process rss before connecting", fmt: "mb" },
    { key: "memory.rssAfterMb", label: "process rss with every miner connected", fmt: "mb" },
    { key: "memory.heapBeforeMb", label: "JS heap used before connecting", fmt: "mb" },
    { key: "memory.heapAfterMb", label: "JS heap used with every miner connected", fmt: "mb" },
    { key: "memory.rssKbPerConnection", label: "rss per connection (both ends)", fmt: "kb" },
    { key: "memory.heapKbPerConnection", label: "heap per connection (both ends)", fmt: "kb" },
  ],
  websocket: [
    { key: "ws.ddbRequestsPerMinerMinute", label: "DynamoDB requests per idle miner-minute", fmt: "n3" },
    { key: "ws.wcuPerMinerMinute", label: "WCU per idle miner-minute", fmt: "n3" },
    { key: "ws.rcuPerMinerMinute", label: "RCU per idle miner-minute", fmt: "n3" },
    {
      key: "ws.framesInPerMinerMinute",
      label: "frames in (miner -> coordinator) per idle miner-minute",
      fmt: "n3",
    },
    {
      key: "ws.framesOutPerMinerMinute",
      label: "frames out (coordinator -> miner) per idle miner-minute",
      fmt: "n3",
    },
    { key: "ws.heartbeatDdbRequests", label: "heartbeat frame: DynamoDB requests", fmt: "n2" },
    { key: "ws.heartbeatWcu", label: "heartbeat frame: WCU", fmt: "n2" },
    { key: "ws.heartbeatRcu", label: "heartbeat frame: RCU", fmt: "n2" },
    { key: "ws.heartbeatServerMsP50", label: "heartbeat frame: server time p50", fmt: "ms" },
    { key: "ws.upgradeDdbRequests", label: "connect (upgrade): DynamoDB requests", fmt: "n2" },
    { key: "ws.upgradeServerMsP50", label: "connect (upgrade): server time p50", fmt: "ms" },
  ],
  jobs: [
    { key: "jobs.completed", label: "jobs completed", fmt: "int" },
    { key: "jobs.missing", label: "jobs not completed", fmt: "int" },
    { key: "jobs.ringToClaimP50Ms", label: "ring -> claim p50", fmt: "ms" },
    { key: "jobs.ringToClaimP99Ms", label: "ring -> claim p99", fmt: "ms" },
    { key: "jobs.submitToClaimP50Ms", label: "submit -> claim p50", fmt: "ms" },
    { key: "jobs.submitToClaimP99Ms", label: "submit -> claim p99", fmt: "ms" },
    { key: "jobs.submitToDoneP50Ms", label: "submit -> result taken p50", fmt: "ms" },
    { key: "jobs.ringsPerJob", label: "rings per job", fmt: "n2" },
    { key: "jobs.minersRung", label: "distinct miners rung", fmt: "int" },
    { key: "jobs.ringsWhileBusyPerJob", label: "rings per job that found the miner busy", fmt: "n2" },
    { key: "jobs.pollsPerJob", label: "polls per job (empty rung polls included)", fmt: "n2" },
    { key: "jobs.emptyRungPollsPerJob", label: "  of which rung polls that got nothing", fmt: "n2" },
    { key: "jobs.claimTxPerClaimedJob", label: "claim transactions per claimed job", fmt: "n2" },
    { key: "jobs.ddbRequestsPerJob", label: "DynamoDB requests per job", fmt: "n2" },
    { key: "jobs.wcuPerJob", label: "WCU per job", fmt: "n1" },
    { key: "jobs.rcuPerJob", label: "RCU per job", fmt: "n2" },
  ],
  longPoll: [
    { key: "lp.ddbRequestsPerMinerMinute", label: "DynamoDB requests per idle miner-minute", fmt: "n3" },
    { key: "lp.wcuPerMinerMinute", label: "WCU per idle miner-minute", fmt: "n3" },
    { key: "lp.rcuPerMinerMinute", label: "RCU per idle miner-minute", fmt: "n3" },
    { key: "lp.pollsPerMinerMinute", label: "poll requests per miner-minute", fmt: "n2" },
    { key: "lp.heartbeatsPerMinerMinute", label: "HTTP heartbeats per miner-minute", fmt: "n2" },
    { key: "lp.pollHoldP50Seconds", label: "seconds a poll holds the server, p50", fmt: "s" },
    { key: "lp.pollHoldMeanSeconds", label: "seconds a poll holds the server, mean", fmt: "s" },
    { key: "lp.serverSecondsPerMinerMinute", label: "server-seconds held per miner-minute", fmt: "s" },
  ],
};

function flatFigures(r: Result): Record<string, number> {
  const f: Record<string, number> = {
    "memory.rssBeforeMb": r.memory.before.rssBytes / 2 ** 20,
    "memory.rssAfterMb": r.memory.after.rssBytes / 2 ** 20,
    "memory.heapBeforeMb": r.memory.before.heapUsedBytes / 2 ** 20,
    "memory.heapAfterMb": r.memory.after.heapUsedBytes / 2 ** 20,
    "memory.rssKbPerConnection": r.memory.rssBytesPerConnection / 1024,
    "memory.heapKbPerConnection": r.memory.heapBytesPerConnection / 1024,
    "ws.ddbRequestsPerMinerMinute": r.websocket.perMinerMinute.requests,
    "ws.wcuPerMinerMinute": r.websocket.perMinerMinute.wcu,
    "ws.rcuPerMinerMinute": r.websocket.perMinerMinute.rcu,
    "ws.framesInPerMinerMinute": r.websocket.perMinerMinute.framesIn,
    "ws.framesOutPerMinerMinute": r.websocket.perMinerMinute.framesOut,
    "ws.heartbeatDdbRequests": r.websocket.heartbeat.ddbRequests,
    "ws.heartbeatWcu": r.websocket.heartbeat.wcu,
    "ws.heartbeatRcu": r.websocket.heartbeat.rcu,
    "ws.heartbeatServerMsP50": r.websocket.heartbeat.serverMsP50,
    "ws.upgradeDdbRequests": r.connect.upgrade.ddbRequests,
    "ws.upgradeServerMsP50": r.connect.upgrade.serverMsP50,
  };
  const j = r.jobs;
  if (j) {
    Object.assign(f, {
      "jobs.completed": j.completed,
      "jobs.missing": j.missing,
      "jobs.ringToClaimP50Ms": j.ringToClaimMs.p50,
      "jobs.ringToClaimP99Ms": j.ringToClaimMs.p99,
      "jobs.submitToClaimP50Ms": j.submitToClaimMs.p50,
      "jobs.submitToClaimP99Ms": j.submitToClaimMs.p99,
      "jobs.submitToDoneP50Ms": j.submitToDoneMs.p50,
      "jobs.ringsPerJob": j.ringsPerJob,
      "jobs.minersRung": j.minersRung,
      "jobs.ringsWhileBusyPerJob": j.ringsWhileBusyPerJob,
      "jobs.pollsPerJob": j.pollsPerJob,
      "jobs.emptyRungPollsPerJob": j.emptyRungPollsPerJob,
      "jobs.claimTxPerClaimedJob": j.claimTxPerClaimedJob,
      "jobs.ddbRequestsPerJob": j.ddbPerJob.requests,
      "jobs.wcuPerJob": j.ddbPerJob.wcu,
      "jobs.rcuPerJob": j.ddbPerJob.rcu,
    });
  }
  const lp = r.longPoll;
  if (lp) {
    Object.assign(f, {
      "lp.ddbRequestsPerMinerMinute": lp.perMinerMinute.requests,
      "lp.wcuPerMinerMinute": lp.perMinerMinute.wcu,
      "lp.rcuPerMinerMinute": lp.perMinerMinute.rcu,
      "lp.pollsPerMinerMinute": lp.perMinerMinute.polls,
      "lp.heartbeatsPerMinerMinute": lp.perMinerMinute.heartbeats,
      "lp.pollHoldP50Seconds": lp.pollHoldSeconds.p50,
      "lp.pollHoldMeanSeconds": lp.pollHoldSeconds.mean,
      "lp.serverSecondsPerMinerMinute": lp.perMinerMinute.serverSeconds,
    });
  }
  return f;
}

interface Previous {
  label?: string;
  figures?: Record<string, number>;
}

function readPrevious(file: string): Previous | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Previous;
  } catch (err) {
    progress(`ignoring ${file}: ${String(err)}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Printing

function fmt(n: number | undefined, how: Fmt): string {
  if (n === undefined || !Number.isFinite(n)) return "-";
  switch (how) {
    case "int":
      return num(n, 0);
    case "n1":
      return num(n, 1);
    case "n2":
      return num(n, 2);
    case "n3":
      return num(n, 3);
    case "ms":
      return n >= 1000 ? `${num(n / 1000, 2)} s` : `${num(n, n < 100 ? 1 : 0)} ms`;
    case "s":
      return `${num(n, 2)} s`;
    case "kb":
      return `${num(n, 1)} KB`;
    case "mb":
      return `${num(n, 1)} MB`;
  }
}

function figureTable(section: string, now: Record<string, number>, previous?: Previous): string {
  const prev = previous?.figures;
  const defs = (FIGURES[section] ?? []).filter((d) => d.key in now || (prev && d.key in prev));
  return table(
    ["figure", "now", ...(prev ? ["previous"] : [])],
    defs.map((d) => [d.label, fmt(now[d.key], d.fmt), ...(prev ? [fmt(prev[d.key], d.fmt)] : [])]),
  );
}

const list = (r: Record<string, number>) =>
  Object.keys(r).length
    ? Object.entries(r)
        .map(([k, v]) => `${k} x${v}`)
        .join(", ")
    : "none";

function print(args: DoorbellArgs, r: Result, now: Record<string, number>, previous?: Previous): void {
  const c = r.connect;
  const w = r.websocket;
  console.log(
    `\n== Setup [measured]: ${c.miners} miners (echo, 1 slot) over ${c.accounts} miner accounts, registered in ${num(c.registerSeconds, 1)} s, all connected in ${num(c.connectSeconds, 1)} s ==`,
  );
  console.log(
    `  per connection, as the server handled it: upgrade ${fmt(c.upgrade.serverMsP50, "ms")} p50 (${num(c.upgrade.ddbRequests, 2)} DynamoDB requests, ${num(c.upgrade.rcu, 2)} RCU), hello ${fmt(c.hello.serverMsP50, "ms")} (${num(c.hello.ddbRequests, 2)} requests), first heartbeat ${fmt(c.firstHeartbeat.serverMsP50, "ms")} (${num(c.firstHeartbeat.ddbRequests, 2)} requests, ${num(c.firstHeartbeat.wcu, 2)} WCU)`,
  );
  if (Object.keys(c.errors).length) console.log(`  unexpected while connecting: ${list(c.errors)}`);

  console.log(
    `\n== Memory [measured]: this process (the stack's server and the ${r.memory.connections} miners' client sockets), ${r.memory.gcForced ? "after a forced GC" : "no forced GC available"} ==`,
  );
  console.log(figureTable("memory", now, previous));
  console.log(
    "  per connection = (after - before) / connections; both ends of each socket live in this process (the server's ws socket, session and registry entry, and the miner's client socket and its bookkeeping), so the server's own share is below it. DynamoDB Local (a JVM) is another process, not counted.",
  );

  console.log(
    `\n== Idle on the doorbell [measured]: ${w.miners} miners for ${num(w.seconds, 1)} s (${num(w.minerMinutes, 1)} miner-minutes), heartbeat every ${w.heartbeatIntervalSeconds} s (the welcome's interval) ==`,
  );
  console.log(figureTable("websocket", now, previous));
  console.log(
    `  frames in: ${list(w.framesIn)} (${num(w.bytesPerFrameIn, 0)} bytes each); out: ${list(w.framesOut)} (${num(w.bytesPerFrameOut, 0)} bytes each); the idle window's buckets: ${Object.entries(
      w.byBucket,
    )
      .map(([k, u]) => `${k} ${u.requests} requests (${num(u.wcu, 1)} WCU, ${num(u.rcu, 1)} RCU)`)
      .join("; ")}`,
  );
  console.log(
    `  index write units per heartbeat (DynamoDB Local): ${Object.entries(w.indexUnitsPerHeartbeat)
      .map(([k, v]) => `${k} ${num(v, 2)}`)
      .join(
        ", ",
      )}; app log ${num(w.logBytesPerFrame, 0)} bytes per frame; sweep (fleet-wide) ${num(w.sweepPerMinute.requests, 1)} DynamoDB requests a minute`,
  );
  if (Object.keys(w.errors).length) console.log(`  unexpected: ${list(w.errors)}`);

  const j = r.jobs;
  if (j) {
    console.log(
      `\n== Jobs on the doorbell [measured]: ${j.accepted}/${j.jobs} echo jobs from one client (${args.submitInflight} submits in flight, nobody waiting), rung to up to ${setting("COORD_RING_FANOUT")} idle miners each, claimed with wait_seconds 0 ==`,
    );
    console.log(
      `${j.completed} completed, ${j.failed} failed, ${j.missing} not completed, in ${num(j.seconds, 1)} s (${num(j.jobsPerSecond, 1)} jobs/s); submit p50 ${fmt(j.submitMs.p50, "ms")}, submit -> result taken p50 ${fmt(j.submitToDoneMs.p50, "ms")} p99 ${fmt(j.submitToDoneMs.p99, "ms")}`,
    );
    console.log(figureTable("jobs", now, previous));
    const by = (r: Record<string, number>) =>
      Object.entries(r)
        .map(([k, v]) => `${k} ${num(v, 2)}`)
        .join(", ");
    console.log(
      `  ring -> claim: a miner receives the ring -> its poll returns the job (${j.ringToClaimMs.n} of ${j.completed + j.failed} claims followed a ring; the others a follow-up poll or a work hint); claim tx: TransactWriteItems of polls (${num(j.cancelledClaimTxPerClaimedJob, 2)} cancelled per claimed job); DynamoDB per job: ${JOB_BUCKETS.join(", ")}`,
    );
    console.log(
      `  polls per job by cause: ${by(j.pollsPerJobBy)}; of which empty: ${by(j.emptyPollsPerJobBy)}; rings reached ${j.minersRung} distinct miners (at most ${j.maxRingsOneMiner} rings on one), ${num(j.ringsWhileBusyPerJob, 2)} rings per job found the miner busy`,
    );
    console.log(
      `  per job: HTTP ${Object.entries(j.httpPerJob)
        .map(([k, v]) => `${k} ${num(v, 2)}`)
        .join(", ")}; server p50 ${Object.entries(j.serverMsP50)
        .map(([k, v]) => `${k} ${fmt(v, "ms")}`)
        .join(", ")}`,
    );
    console.log(
      `  per job: ring reads ${num(j.ringReadsPerJob.calls, 2)} BatchGetItem (${num(j.ringReadsPerJob.rcu, 2)} RCU); queue summary ${num(j.summaryPerJob.writes, 2)} writes, ${num(j.summaryPerJob.reads, 2)} reads; ${num(j.eventsPerJob, 2)} events, ${num(j.streamRecordsPerJob, 2)} stream records (${num(j.streamMsPerRecord, 1)} ms each), ${num(j.sqsDeliveriesPerJob, 2)} SQS deliveries; index write units ${Object.entries(
        j.indexUnitsPerJob,
      )
        .map(([k, v]) => `${k} ${num(v, 1)}`)
        .join(", ")}`,
    );
    if (Object.keys(j.errors).length) console.log(`  unexpected: ${list(j.errors)}`);
  }

  const lp = r.longPoll;
  if (lp) {
    console.log(
      `\n== The same miners long-polling over HTTP [measured]: ${lp.miners} miners for ${num(lp.seconds, 1)} s, wait_seconds ${lp.waitSeconds}, HTTP heartbeats every ${lp.heartbeatSeconds} s ==`,
    );
    console.log(figureTable("longPoll", now, previous));
    console.log(
      `  ${lp.polls} empty polls (${num(lp.poll.ddbRequests, 2)} DynamoDB requests, ${num(lp.poll.rcu, 2)} RCU, ${num(lp.poll.wcu, 2)} WCU each; ${num(lp.summaryReadsPerPoll, 2)} summary reads each: one process shares the summary cache, on Lambda each waiting poll re-reads it every COORD_POLL_RECHECK_MS, ${SETTINGS.COORD_POLL_RECHECK_MS.default} ms by default; this stack runs ${setting("COORD_POLL_RECHECK_MS")} ms), ${lp.heartbeats} heartbeats (${num(lp.heartbeat.ddbRequests, 2)} requests, ${num(lp.heartbeat.wcu, 2)} WCU, server p50 ${fmt(lp.heartbeat.serverMsP50, "ms")})`,
    );
    console.log("\nIdle miner-minute, doorbell vs long-poll [measured]:");
    console.log(
      table(
        ["per idle miner-minute", "doorbell", "long-poll"],
        [
          ["DynamoDB requests", num(w.perMinerMinute.requests, 3), num(lp.perMinerMinute.requests, 3)],
          ["WCU", num(w.perMinerMinute.wcu, 3), num(lp.perMinerMinute.wcu, 3)],
          ["RCU", num(w.perMinerMinute.rcu, 3), num(lp.perMinerMinute.rcu, 3)],
          [
            "requests reaching the coordinator (frames / HTTP requests)",
            num(w.perMinerMinute.framesIn, 3),
            num(lp.perMinerMinute.polls + lp.perMinerMinute.heartbeats, 3),
          ],
          [
            "server-seconds held (frame handling / requests held)",
            num((w.perMinerMinute.framesIn * (w.heartbeat.serverMsMean || 0)) / 1000, 4),
            num(lp.perMinerMinute.serverSeconds, 2),
          ],
        ],
      ),
    );
    console.log(
      "  dollars: npx tsx bench/capacity.ts (docs/capacity.md) prices these counts at AWS list prices.",
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const args = readDoorbellArgs();
  const started = performance.now();
  console.log(`Doorbell benchmark: ${machineLine()}`);
  const previous = readPrevious(args.previous);
  const stack = await startStack();
  let fiveXx = 0;
  instrument.setClassifier((method, path, status) => {
    if (method === "WS") return `ws ${path}`;
    if (status >= 500) fiveXx++;
    return classify(method, path, status);
  });
  instrument.installDoorbell();
  const run = Math.random().toString(36).slice(2, 8);
  const raw: Record<string, unknown> = {};
  let result: Result | undefined;
  const fleet = new Fleet(stack);
  try {
    const setupHttp = new Http(stack.url, 8);
    const client = await fundedClient(setupHttp, stack);
    setupHttp.close();
    const regStarted = performance.now();
    const miners = await registerFleet(stack, args.miners, args.minersPerAccount, run);
    const registerSeconds = (performance.now() - regStarted) / 1000;

    // 1. Connect, measuring memory around it.
    const before = await memory();
    instrument.reset();
    progress(`connecting ${miners.length} miners to the doorbell, ${args.connectConcurrency} at a time...`);
    const connStarted = performance.now();
    let connected = 0;
    await pool(miners, args.connectConcurrency, async (m) => {
      await fleet.connect(m);
      if (++connected % 200 === 0) progress(`connected ${connected}/${miners.length}`);
    });
    const connectSeconds = (performance.now() - connStarted) / 1000;
    const connSnap = instrument.snapshot();
    const after = await memory();
    const n = fleet.bells.length;
    const connect: ConnectResult = {
      miners: n,
      accounts: Math.ceil(args.miners / args.minersPerAccount),
      registerSeconds,
      connectSeconds,
      upgrade: perFrame(connSnap, "ws connect"),
      hello: perFrame(connSnap, "ws hello"),
      firstHeartbeat: perFrame(connSnap, "ws heartbeat"),
      indexUnitsPerFirstHeartbeat: Object.fromEntries(
        Object.entries(connSnap.writesByIndex).map(([k, v]) => [
          k,
          v / Math.max(1, requestsOf(connSnap, "ws heartbeat")),
        ]),
      ),
      errors: { ...fleet.t.errors },
    };
    const mem: MemoryResult = {
      before,
      after,
      connections: n,
      rssBytesPerConnection: (after.rssBytes - before.rssBytes) / n,
      heapBytesPerConnection: (after.heapUsedBytes - before.heapUsedBytes) / n,
      gcForced: gc !== undefined,
    };
    progress(
      `connected ${n} in ${connectSeconds.toFixed(1)} s; rss ${num(before.rssBytes / 2 ** 20, 0)} -> ${num(after.rssBytes / 2 ** 20, 0)} MB`,
    );
    raw.connect = connSnap;

    // 2. Idle on the doorbell.
    progress(`idle on the doorbell for ${args.idleSeconds} s (heartbeat every ${fleet.intervalSeconds} s)`);
    fleet.phase = "idle";
    fleet.t = newTally();
    instrument.reset();
    const idleStarted = performance.now();
    await sleep(args.idleSeconds * 1000);
    const idleSeconds = (performance.now() - idleStarted) / 1000;
    const idleSnap = instrument.snapshot();
    raw.idle = idleSnap;
    const websocket = wsIdleFrom(fleet, idleSnap, idleSeconds);
    progress(
      `idle: ${num(websocket.perMinerMinute.requests, 3)} DynamoDB requests and ${num(websocket.perMinerMinute.framesIn, 3)} frames in per miner-minute`,
    );
    result = { connect, memory: mem, websocket };

    // 3. Jobs, rung.
    if (args.jobs > 0) {
      progress(`jobs: ${args.jobs} echo jobs, ${args.submitInflight} submits in flight`);
      fleet.phase = "jobs";
      fleet.t = newTally();
      fleet.submittedAt.clear();
      instrument.reset();
      const clientHttp = new Http(stack.url, args.submitInflight + 4);
      const submitMs: number[] = [];
      let accepted = 0;
      const jobsStarted = performance.now();
      fleet.lastDone = jobsStarted;
      const ticker = setInterval(
        () =>
          progress(
            `jobs: ${fleet.t.completed}/${args.jobs} completed after ${((performance.now() - jobsStarted) / 1000).toFixed(0)} s`,
          ),
        5000,
      );
      await pool(
        Array.from({ length: args.jobs }, (_, i) => i),
        args.submitInflight,
        async (i) => {
          fleet.submittedAt.set(i, performance.now());
          const res = await call(() =>
            clientHttp.post(
              "/v1/jobs",
              { service: "echo", input: { bench: run, n: i } },
              { key: client.key },
            ),
          );
          if (res.status === 201) {
            accepted++;
            submitMs.push(res.ms);
          } else fleet.error(`submit ${res.status}`);
        },
      );
      // A ring lost is made good by the next heartbeat's `work` hint: wait up to three heartbeat intervals.
      const giveUp = performance.now() + Math.max(60, 3 * fleet.intervalSeconds) * 1000;
      while (fleet.t.completed + fleet.t.failed < accepted && performance.now() < giveUp) await sleep(20);
      clearInterval(ticker);
      clientHttp.close();
      const jobSeconds = (fleet.lastDone - jobsStarted) / 1000;
      await sleep(1000); // the stream and the queue consumers catch up
      const jobSnap = instrument.snapshot();
      raw.jobs = jobSnap;
      result.jobs = jobsFrom(
        fleet,
        jobSnap,
        { jobs: args.jobs, accepted, seconds: jobSeconds, submitMs },
        websocket.heartbeat.n ? websocket.indexUnitsPerHeartbeat : connect.indexUnitsPerFirstHeartbeat,
      );
      progress(
        `jobs: ${result.jobs.completed}/${accepted} completed; ring -> claim p50 ${fmt(result.jobs.ringToClaimMs.p50, "ms")}`,
      );
    }

    // 4. The same miners long-polling over HTTP.
    await fleet.closeAll();
    if (args.longPoll) {
      await sleep(500);
      progress(
        `long-poll: ${miners.length} miners, wait_seconds ${args.waitSeconds}, for ${args.idleSeconds} s (heartbeats every ${config.heartbeatSeconds} s)`,
      );
      const opts: LifecycleOptions = {
        jobs: 0,
        miners: miners.length,
        minerSlots: 1,
        clients: 0,
        inflight: 0,
        waitSeconds: args.waitSeconds,
        maxSeconds: 0,
        serialJobs: 0,
        idleSeconds: args.idleSeconds,
        idleWaitSeconds: args.waitSeconds,
      };
      const lp = await idle(stack, miners, "long-poll", args.waitSeconds, opts);
      raw.longPoll = lp.snap;
      result.longPoll = longPollFrom(lp, miners.length);
    }
  } finally {
    if (fleet.phase !== "closing") await fleet.closeAll().catch(() => undefined);
    instrument.uninstall();
    await stack.stop();
  }

  if (!result) throw new Error("no result");
  const figures = flatFigures(result);
  print(args, result, figures, previous);
  if (fiveXx) console.log(`\n5xx answers during the run: ${fiveXx}`);
  console.log(`\nFinished in ${num((performance.now() - started) / 1000, 0)} s: ${machineLine()}`);

  const latest = {
    label: `doorbell run of ${new Date().toISOString()} (${args.miners} miners, ${args.idleSeconds} s idle, ${args.jobs} jobs)`,
    machine: machineLine(),
    seconds: (performance.now() - started) / 1000,
    options: {
      miners: args.miners,
      idleSeconds: args.idleSeconds,
      jobs: args.jobs,
      minersPerAccount: args.minersPerAccount,
      submitInflight: args.submitInflight,
      waitSeconds: args.waitSeconds,
      idleHeartbeatSeconds: setting("COORD_IDLE_HEARTBEAT_SECONDS"),
      heartbeatSeconds: config.heartbeatSeconds,
      ringFanout: setting("COORD_RING_FANOUT"),
      pollRecheckMs: setting("COORD_POLL_RECHECK_MS"),
      summaryCacheMs: setting("COORD_SUMMARY_CACHE_MS"),
    },
    server5xx: fiveXx,
    figures,
    ...result,
  };
  mkdirSync(dirname(args.latest), { recursive: true });
  writeFileSync(args.latest, `${JSON.stringify(latest, null, 2)}\n`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ doorbell: latest, raw }, null, 2));
  progress(`figures written to ${args.latest}${previous ? `; compared with ${args.previous}` : ""}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

import "./env.ts";
import { config } from "../core/config.ts";
import { EVENT_SOURCE } from "../events/catalog.ts";
import { matches, RULES } from "../events/rules.ts";
import type { LocalStack } from "../local/stack.ts";
import { type Args, numArg } from "./lib/args.ts";
import { call, Http, sleep } from "./lib/http.ts";
import * as instrument from "./lib/instrument.ts";
import { ASSUMED, lambdaDuration, MEMORY_GB, PRICE_NOTES, PRICES } from "./lib/prices.ts";
import { type Account, fundedClient, type Miner, pool, registeredMiner } from "./lib/setup.ts";
import { benchMain } from "./lib/stack.ts";
import { num, progress, type Summary, summarize, table, usd } from "./lib/stats.ts";

/**
 * The job lifecycle through HTTP on the local stack, in four measurements:
 * 1. load: N simulated miners (each polls for up to its free slots and answers echo jobs at once) and M clients (each
 *    keeping I jobs in flight: submit, then long-poll the job until it is terminal) drive K echo jobs;
 * 2. serial: one client and one miner, one job at a time: the contention-free floor, and the per-call handler times
 *    used as Lambda durations (under load, the local server's queueing inflates server time; Lambda scales out);
 * 3. idle fleet, long-poll, then 4. short-poll (honouring Retry-After-Ms): the miners poll an empty queue and
 *    heartbeat.
 * Prints throughput, latencies, DynamoDB capacity per job by phase and operation, HTTP calls per job, what an empty
 * poll costs, and the AWS cost per million jobs and per idle miner-hour.
 */

export interface LifecycleOptions {
  jobs: number;
  miners: number;
  minerSlots: number;
  clients: number;
  inflight: number;
  waitSeconds: number;
  /** Stop submitting after this many seconds (0: no limit); the jobs in flight still finish. */
  maxSeconds: number;
  serialJobs: number;
  idleSeconds: number;
  idleWaitSeconds: number;
}

const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "timed_out"]);
/** Request phases, in the order they are printed. */
const PHASES = ["submit", "claim", "start", "result", "observe", "empty poll", "heartbeat", "other"] as const;
/** Phases that move a job (the rest is observation, waiting or upkeep). */
const JOB_PATH = new Set(["submit", "claim", "start", "result"]);

export const classify: instrument.Classifier = (method, path, status) => {
  const p = path.split("?")[0] ?? "";
  if (method === "POST" && p === "/v1/jobs") return "submit";
  if (method === "GET" && /^\/v1\/jobs\/[^/]+$/.test(p)) return "observe";
  if (p === "/v1/miners/poll") return status === 200 ? "claim" : "empty poll";
  if (p === "/v1/miners/heartbeat") return "heartbeat";
  const m = /^\/v1\/miners\/[^/]+\/(start|result|progress|fail)$/.exec(p);
  if (m) return m[1];
  return "other";
};

interface Job {
  job_id: string;
  claim_token: string;
  input: { n?: number };
}

interface Tally {
  submitMs: number[];
  claimMs: number[];
  endToEndMs: number[];
  errors: Record<string, number>;
  completed: number;
  failed: number;
}

const newTally = (): Tally => ({
  submitMs: [],
  claimMs: [],
  endToEndMs: [],
  errors: {},
  completed: 0,
  failed: 0,
});

function error(t: Tally, what: string): void {
  t.errors[what] = (t.errors[what] ?? 0) + 1;
}

/** Submits one echo job and long-polls it (`?wait=20&version=`) until it is terminal. */
async function submitAndObserve(
  http: Http,
  client: Account,
  input: Record<string, unknown>,
  t: Tally,
  onSubmitted?: (accepted: boolean) => void,
): Promise<void> {
  const t0 = performance.now();
  const res = await call(() =>
    http.post<{ id: string; status: string }>("/v1/jobs", { service: "echo", input }, { key: client.key }),
  );
  if (res.status !== 201) {
    error(t, `submit ${res.status}`);
    // A refused submit is over too: whoever waits for the submit must not wait forever.
    onSubmitted?.(false);
    return;
  }
  onSubmitted?.(true);
  t.submitMs.push(res.ms);
  let status = res.body.status;
  let version: number | undefined;
  while (!TERMINAL.has(status)) {
    const q = version === undefined ? "" : `&version=${version}`;
    const got = await call(() =>
      http.get<{ status: string; version: number }>(`/v1/jobs/${res.body.id}?wait=20${q}`, {
        key: client.key,
      }),
    );
    if (got.status !== 200) {
      error(t, `observe ${got.status}`);
      await sleep(100);
      continue;
    }
    status = got.body.status;
    version = got.body.version;
  }
  t.endToEndMs.push(performance.now() - t0);
  if (status === "completed") t.completed++;
  else t.failed++;
}

/** Runs a claimed echo job as a miner would: start, then the result (output = input). True if the result was taken. */
async function runJob(http: Http, miner: Miner, job: Job, t: Tally): Promise<boolean> {
  const auth = { key: miner.key, headers: miner.headers };
  const body = { claim_token: job.claim_token };
  const started = await call(() => http.post(`/v1/miners/${job.job_id}/start`, body, auth));
  if (started.status !== 200) error(t, `start ${started.status}`);
  const done = await call(() =>
    http.post(`/v1/miners/${job.job_id}/result`, { ...body, output: job.input }, auth),
  );
  if (done.status !== 200) error(t, `result ${done.status}`);
  return done.status === 200;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Under load

export interface LoadResult {
  seconds: number;
  jobs: number;
  completed: number;
  failed: number;
  errors: Record<string, number>;
  submitMs: Summary;
  claimMs: Summary;
  endToEndMs: Summary;
  snap: instrument.Snapshot;
}

/** How the load's clients behave (bench/hot-path.ts); the defaults are the lifecycle benchmark's. */
export interface LoadShape {
  /**
   * true (default): each client job is submitted, then long-polled until terminal. false: a client submits its next
   * job as soon as the submit returns and never looks at the job again; a job is complete when the miner's result is
   * taken (200), `endToEndMs` is submit -> result taken, and `seconds` runs from the first submit to the last
   * completion.
   */
  observe?: boolean;
  /** Seconds to wait after the measurement for abandoned polls to end (default: the polls' wait_seconds). */
  drainSeconds?: number;
}

export async function underLoad(
  stack: LocalStack,
  clients: Account[],
  miners: Miner[],
  opts: LifecycleOptions,
  shape: LoadShape = {},
): Promise<LoadResult> {
  const observe = shape.observe ?? true;
  const run = Math.random().toString(36).slice(2, 8);
  const t = newTally();
  const submittedAt = new Map<number, number>();
  let next = 0;
  let stopping = false;
  const clientHttp = new Http(stack.url, opts.clients * opts.inflight + 8);
  const minerHttp = new Http(stack.url, opts.miners * (opts.minerSlots + 2) + 8);
  const started = performance.now();
  const deadline = opts.maxSeconds > 0 ? started + opts.maxSeconds * 1000 : Number.POSITIVE_INFINITY;
  /** Unobserved load: jobs accepted (201), and when the last result was taken. */
  let accepted = 0;
  let lastDone = started;

  /** Unobserved load: one submit, nothing else. */
  async function submitOnly(client: Account, input: Record<string, unknown>) {
    const res = await call(() =>
      clientHttp.post<{ id: string }>("/v1/jobs", { service: "echo", input }, { key: client.key }),
    );
    if (res.status !== 201) error(t, `submit ${res.status}`);
    else {
      accepted++;
      t.submitMs.push(res.ms);
    }
  }

  async function pipeline(client: Account) {
    for (;;) {
      if (performance.now() > deadline) return;
      const n = next++;
      if (n >= opts.jobs) return;
      submittedAt.set(n, performance.now());
      if (observe) await submitAndObserve(clientHttp, client, { bench: run, n }, t);
      else await submitOnly(client, { bench: run, n });
    }
  }

  /** A miner agent: one poll at a time for up to its free slots; the jobs it gets run concurrently. */
  async function agent(miner: Miner) {
    const auth = { key: miner.key, headers: miner.headers };
    const held = new Map<string, string>();
    let slotFreed: () => void = () => {};
    const running = new Set<Promise<void>>();
    const beat = async () => {
      const every = config.heartbeatSeconds * 1000;
      await sleep(Math.random() * every);
      while (!stopping) {
        const jobs = [...held].map(([job_id, claim_token]) => ({ job_id, claim_token }));
        await call(() => minerHttp.post("/v1/miners/heartbeat", { jobs }, auth));
        await sleep(every);
      }
    };
    const heart = beat().catch((e) => {
      if (!stopping) error(t, `heartbeat: ${String(e)}`);
    });
    while (!stopping) {
      const free = opts.minerSlots - running.size;
      if (free <= 0) {
        await new Promise<void>((r) => {
          slotFreed = r;
        });
        continue;
      }
      const res = await call(() =>
        minerHttp.post<{ jobs: Job[] }>(
          "/v1/miners/poll",
          { wait_seconds: opts.waitSeconds, max_jobs: free },
          auth,
        ),
      );
      if (res.status === 204) {
        // Marked offline (silent too long, e.g. between runs): heartbeat at once, as the answer's Coord-Hint says.
        if (res.headers["coord-miner-status"] === "offline")
          await call(() => minerHttp.post("/v1/miners/heartbeat", {}, auth));
        else if (opts.waitSeconds === 0) await sleep(Number(res.headers["retry-after-ms"] ?? 1000));
        continue;
      }
      if (res.status !== 200) {
        error(t, `poll ${res.status}`);
        await sleep(100);
        continue;
      }
      for (const job of res.body.jobs) {
        const t0 = submittedAt.get(Number(job.input?.n));
        if (t0 !== undefined) t.claimMs.push(performance.now() - t0);
        held.set(job.job_id, job.claim_token);
        const p = runJob(minerHttp, miner, job, t)
          .then((ok) => {
            if (observe) return;
            const now = performance.now();
            if (ok) {
              t.completed++;
              if (t0 !== undefined) t.endToEndMs.push(now - t0);
            } else t.failed++;
            lastDone = now;
          })
          .catch((e) => {
            // The pool closes when the run ends: a job still in hand then is not an error of the stack.
            if (!stopping) error(t, `job: ${String(e)}`);
          })
          .finally(() => {
            held.delete(job.job_id);
            running.delete(p);
            slotFreed();
          });
        running.add(p);
      }
    }
    await Promise.allSettled([...running, heart]);
  }

  instrument.reset();
  const ticker = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    progress(`load: ${t.completed + t.failed}/${opts.jobs} jobs done after ${s.toFixed(0)} s`);
  }, 5000);
  const agents = Promise.all(
    miners.map((m) =>
      agent(m).catch((e) => {
        if (!stopping) error(t, `miner: ${String(e)}`);
      }),
    ),
  );
  await Promise.all(clients.flatMap((c) => Array.from({ length: opts.inflight }, () => pipeline(c))));
  if (!observe) {
    // Every accepted job is run by the miners; give up on stragglers after a while (they show as missing).
    const giveUp = performance.now() + Math.max(60, 3 * opts.waitSeconds) * 1000;
    while (t.completed + t.failed < accepted && performance.now() < giveUp) await sleep(20);
  }
  const seconds = ((observe ? performance.now() : lastDone) - started) / 1000;
  clearInterval(ticker);
  stopping = true;
  minerHttp.close(); // ends the waiting polls on our side; the server finishes their wait on its own
  clientHttp.close();
  await agents;
  await sleep(1000); // the stream and queue consumers catch up
  const snap = instrument.snapshot();
  await sleep((shape.drainSeconds ?? opts.waitSeconds) * 1000); // abandoned polls end before anything else is measured
  return {
    seconds,
    jobs: Math.min(next, opts.jobs),
    completed: t.completed,
    failed: t.failed,
    errors: t.errors,
    submitMs: summarize(t.submitMs),
    claimMs: summarize(t.claimMs),
    endToEndMs: summarize(t.endToEndMs),
    snap,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Serial: one job at a time

export interface SerialResult {
  jobs: number;
  errors: Record<string, number>;
  claimMs: Summary;
  endToEndMs: Summary;
  snap: instrument.Snapshot;
}

/**
 * One job at a time. By default the miner polls once the job is queued (the queued path: submit, claim, start,
 * result); with `minerWaiting` the miner's poll is already waiting when the client submits (a submit's direct
 * hand-off: the submit claims the job itself).
 */
export async function serial(
  stack: LocalStack,
  client: Account,
  miner: Miner,
  opts: LifecycleOptions,
  shape: { minerWaiting?: boolean } = {},
): Promise<SerialResult> {
  const http = new Http(stack.url, 8);
  const t = newTally();
  const auth = { key: miner.key, headers: miner.headers };
  instrument.reset();
  const pollOnce = () =>
    call(() =>
      http.post<{ jobs: Job[] }>("/v1/miners/poll", { wait_seconds: opts.waitSeconds, max_jobs: 1 }, auth),
    );
  for (let n = 0; n < opts.serialJobs; n++) {
    // Already waiting: the poll goes first and has looked (and found nothing) before the submit.
    const early = shape.minerWaiting ? pollOnce() : undefined;
    if (early) await sleep(100);
    const t0 = performance.now();
    let submitted!: (accepted: boolean) => void;
    const isSubmitted = new Promise<boolean>((r) => {
      submitted = r;
    });
    const observed = submitAndObserve(http, client, { serial: n }, t, submitted);
    // A refused submit (counted in errors) leaves no job to claim: the waiting poll ends empty.
    if (!(await isSubmitted)) {
      await early;
      continue;
    }
    // Otherwise the miner's poll arrives once the job is queued: it waits only for the job to become visible.
    for (let first = early; ; first = undefined) {
      const res = await (first ?? pollOnce());
      if (res.status !== 200) continue;
      t.claimMs.push(performance.now() - t0);
      for (const job of res.body.jobs) await runJob(http, miner, job, t);
      break;
    }
    await observed;
    await sleep(150); // let the stream and consumers handle this job on their own
  }
  await sleep(1000);
  http.close();
  return {
    jobs: opts.serialJobs,
    claimMs: summarize(t.claimMs),
    endToEndMs: summarize(t.endToEndMs),
    snap: instrument.snapshot(),
    errors: t.errors,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 3./4. The idle fleet

export interface IdleResult {
  mode: "long-poll" | "short-poll";
  waitSeconds: number;
  seconds: number;
  polls: number;
  heartbeats: number;
  pollsPerMinerHour: number;
  snap: instrument.Snapshot;
}

export async function idle(
  stack: LocalStack,
  miners: Miner[],
  mode: IdleResult["mode"],
  waitSeconds: number,
  opts: LifecycleOptions,
): Promise<IdleResult> {
  const http = new Http(stack.url, miners.length * 2 + 8);
  // Warm-up: a first round of polls finds the queue empty and clears a ready mark left behind by the runs
  // before (every miner queries every shard once when a queue drains); what follows is the steady state.
  await Promise.all(
    miners.map((m) =>
      call(() =>
        http.post("/v1/miners/poll", { wait_seconds: 0, max_jobs: 1 }, { key: m.key, headers: m.headers }),
      ),
    ),
  );
  await sleep(500);
  let polls = 0;
  let beats = 0;
  /** Sum of poll cycles (the poll, then the Retry-After-Ms pause it asked for), ms. */
  let cycles = 0;
  instrument.reset();
  const started = performance.now();
  const until = started + opts.idleSeconds * 1000;
  const left = () => Math.max(0, until - performance.now());
  const loops = miners.flatMap((m) => {
    const auth = { key: m.key, headers: m.headers };
    const poller = async () => {
      // Miners are not synchronised: each starts at a random point of its cycle.
      if (waitSeconds === 0) await sleep(Math.random() * 1000);
      while (left() > 0) {
        const t0 = performance.now();
        const res = await call(() =>
          http.post("/v1/miners/poll", { wait_seconds: waitSeconds, max_jobs: opts.minerSlots }, auth),
        );
        polls++;
        if (res.status !== 204)
          throw new Error(`idle poll answered ${res.status}: ${JSON.stringify(res.body)}`);
        const pause = waitSeconds === 0 ? Number(res.headers["retry-after-ms"] ?? 1000) : 0;
        cycles += performance.now() - t0 + pause;
        if (pause) await sleep(Math.min(pause, left()));
      }
    };
    const heart = async () => {
      const every = config.heartbeatSeconds * 1000;
      await sleep(Math.random() * Math.min(every, opts.idleSeconds * 1000));
      while (left() > 0) {
        await call(() => http.post("/v1/miners/heartbeat", { jobs: [] }, auth));
        beats++;
        await sleep(Math.min(every, left() + 1));
      }
    };
    return [poller(), heart()];
  });
  await Promise.all(loops);
  const seconds = (performance.now() - started) / 1000;
  http.close();
  await sleep(300);
  return {
    mode,
    waitSeconds,
    seconds,
    polls,
    heartbeats: beats,
    pollsPerMinerHour: polls ? 3_600_000 / (cycles / polls) : 0,
    snap: instrument.snapshot(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Costs

const sumMs = (ms: number[]) => ms.reduce((a, b) => a + Math.ceil(b), 0);
const meanMs = (b: instrument.Bucket | undefined) =>
  b?.requests ? sumMs(b.serverMs) / b.requests : Number.NaN;
const isRequestPhase = (name: string) => !name.startsWith("bg: ");

/** SQS messages the bus rules deliver for these events (each matching rule delivers one). */
function deliveries(events: Record<string, number>): number {
  let n = 0;
  for (const [type, count] of Object.entries(events)) {
    n += count * RULES.filter((r) => matches(r, { source: EVENT_SOURCE, "detail-type": type })).length;
  }
  return n;
}

/** Handler time per call, per record and per message, from unloaded measurements: the Lambda duration stand-ins. */
export interface UnitTimes {
  msPerCall: Record<string, number>;
  streamMsPerRecord: number;
  consumerMsPerMessage: number;
}

/** Median server time, ms (billed per started ms): robust to the stalls of a shared machine. */
const medianMs = (b: instrument.Bucket | undefined) =>
  b?.requests ? Math.ceil(summarize(b.serverMs).p50) : Number.NaN;

function unitTimes(serialSnap: instrument.Snapshot, idleRuns: IdleResult[]): UnitTimes {
  const msPerCall: Record<string, number> = {};
  for (const [name, b] of Object.entries(serialSnap.buckets)) if (b.requests) msPerCall[name] = medianMs(b);
  const short = idleRuns.find((r) => r.mode === "short-poll")?.snap.buckets;
  msPerCall["empty poll"] = medianMs(short?.["empty poll"]);
  msPerCall.heartbeat = medianMs(short?.heartbeat);
  const stream = serialSnap.invocations["stream handler"];
  const consumers = serialSnap.invocations["queue consumers"];
  return {
    msPerCall,
    streamMsPerRecord: stream?.records ? stream.ms / stream.records : 0,
    consumerMsPerMessage: consumers?.records ? consumers.ms / consumers.records : ASSUMED.consumerMs,
  };
}

export interface CostLine {
  item: string;
  quantity: string;
  usd: number;
}

/** AWS cost per job from a run's counts (per `jobs`), with Lambda durations from `unit`. */
function jobCosts(snap: instrument.Snapshot, jobs: number, unit: UnitTimes) {
  const buckets = Object.entries(snap.buckets).filter(([n]) => n !== "other" && n !== "bg: sweep (cron)");
  const per = (x: number) => x / jobs;
  const write = per(buckets.reduce((a, [, b]) => a + b.write, 0));
  const cancelled = per(buckets.reduce((a, [, b]) => a + b.cancelled, 0));
  const read = per(buckets.reduce((a, [, b]) => a + b.read, 0));
  const requests = buckets.filter(([n]) => isRequestPhase(n));
  const calls = per(requests.reduce((a, [, b]) => a + b.requests, 0));
  const msFor = (n: string, b: instrument.Bucket) => {
    const ms = unit.msPerCall[n];
    return ms !== undefined && Number.isFinite(ms) ? ms : meanMs(b);
  };
  const apiMs = per(requests.reduce((a, [n, b]) => a + b.requests * msFor(n, b), 0));
  const observe = snap.buckets.observe;
  const observeMs = per((observe?.requests ?? 0) * (unit.msPerCall.observe ?? 0));
  const events = per(Object.values(snap.events).reduce((a, b) => a + b, 0));
  const records = per(snap.streamRecords);
  const messages = per(deliveries(snap.events));
  // One stream invocation per record that passes the filter (a trickle of traffic; under load Lambda batches them),
  // each publishing its event with one PutEvents call.
  const streamMs = unit.streamMsPerRecord + (records ? (ASSUMED.putEventsMs * events) / records : 0);
  const logBytes = per(snap.logBytes) + ASSUMED.platformLogBytes * (calls + records + messages);
  const lines: CostLine[] = [
    {
      item: "DynamoDB writes",
      quantity: `${num(write - cancelled, 1)} WRU`,
      usd: (write - cancelled) * PRICES.dynamoWru,
    },
    {
      item: "  + cancelled transactions (upper bound)",
      quantity: `${num(cancelled, 1)} WRU`,
      usd: cancelled * PRICES.dynamoWru,
    },
    { item: "DynamoDB reads", quantity: `${num(read, 1)} RRU`, usd: read * PRICES.dynamoRru },
    {
      item: "API Gateway HTTP API",
      quantity: `${num(calls, 2)} requests`,
      usd: calls * PRICES.httpApiRequest,
    },
    {
      item: "Lambda API requests",
      quantity: `${num(calls, 2)} invocations`,
      usd: calls * PRICES.lambdaRequest,
    },
    {
      item: "Lambda API duration (1 GB)",
      quantity: `${num(apiMs, 0)} ms`,
      usd: lambdaDuration(apiMs, MEMORY_GB.api),
    },
    {
      item: "Lambda stream handler (512 MB)",
      quantity: `${num(records, 2)} x ${num(streamMs, 1)} ms`,
      usd: records * (PRICES.lambdaRequest + lambdaDuration(streamMs, MEMORY_GB.stream)),
    },
    {
      item: "EventBridge events",
      quantity: `${num(events, 2)} events`,
      usd: events * PRICES.eventBridgeEvent,
    },
    {
      item: "SQS (rule deliveries)",
      quantity: `${num(messages, 2)} msgs x ${ASSUMED.sqsRequestsPerMessage}`,
      usd: messages * ASSUMED.sqsRequestsPerMessage * PRICES.sqsRequest,
    },
    {
      item: "Lambda queue consumers (512 MB)",
      quantity: `${num(messages, 2)} x ${num(unit.consumerMsPerMessage, 1)} ms`,
      usd: messages * (PRICES.lambdaRequest + lambdaDuration(unit.consumerMsPerMessage, MEMORY_GB.consumer)),
    },
    {
      item: "CloudWatch Logs",
      quantity: `${num(logBytes / 1024, 1)} KB`,
      usd: (logBytes / 1e9) * PRICES.cloudWatchLogsGb,
    },
  ];
  const observeUsd = observe
    ? per(observe.requests) * (PRICES.httpApiRequest + PRICES.lambdaRequest) +
      per(observe.read) * PRICES.dynamoRru +
      per(observe.write) * PRICES.dynamoWru +
      lambdaDuration(observeMs, MEMORY_GB.api)
    : 0;
  return { lines, total: lines.reduce((a, l) => a + l.usd, 0), observeUsd };
}

interface PerRequest {
  requests: number;
  read: number;
  write: number;
  calls: number;
  serverMs: Summary;
  meanMs: number;
  ops: Record<string, instrument.OpUse>;
}

function perRequest(b: instrument.Bucket | undefined): PerRequest {
  const n = b?.requests ?? 0;
  const ops: Record<string, instrument.OpUse> = {};
  for (const [label, u] of Object.entries(b?.ops ?? {})) {
    ops[label] = {
      calls: u.calls / n,
      errors: u.errors / n,
      read: u.read / n,
      write: u.write / n,
      estimated: u.estimated / n,
      cancelled: u.cancelled / n,
      txAdded: u.txAdded / n,
    };
  }
  return {
    requests: n,
    read: n ? (b?.read ?? 0) / n : 0,
    write: n ? (b?.write ?? 0) / n : 0,
    calls: n ? (b?.calls ?? 0) / n : 0,
    serverMs: summarize(b?.serverMs ?? []),
    meanMs: n ? sumMs(b?.serverMs ?? []) / n : 0,
    ops,
  };
}

const isSummaryRead = (label: string) => label === "GetItem QUEUES/SUMMARY";
const isQueueRead = (label: string) => isSummaryRead(label) || label.startsWith("Query GSI1 QUEUE");

/** Summary reads one waiting poll makes on a Lambda instance of its own (nothing shares its cache). */
function summaryReadsPerInstance(waitSeconds: number): number {
  const recheck = Number(process.env.COORD_POLL_RECHECK_MS ?? 250);
  const cache = Number(process.env.COORD_SUMMARY_CACHE_MS ?? 250);
  return Math.ceil((waitSeconds * 1000) / Math.max(recheck, cache, 1)) + 1;
}

function idleCosts(r: IdleResult) {
  const poll = perRequest(r.snap.buckets["empty poll"]);
  const beat = perRequest(r.snap.buckets.heartbeat);
  const pollsPerHour = r.pollsPerMinerHour;
  const beatsPerHour = 3600 / config.heartbeatSeconds;
  const summaryLocal = Object.entries(poll.ops)
    .filter(([l]) => isSummaryRead(l))
    .reduce((a, [, u]) => a + u.calls, 0);
  // On Lambda each waiting poll has an instance to itself: it re-reads the summary on every recheck. A short poll
  // on a warm instance shares the cache with the polls before it, as measured.
  const summaryAws = r.waitSeconds > 0 ? summaryReadsPerInstance(r.waitSeconds) : summaryLocal;
  const pollRru = poll.read + Math.max(0, summaryAws - summaryLocal) * 0.5;
  const rru = pollRru * pollsPerHour + beat.read * beatsPerHour;
  const wru = poll.write * pollsPerHour + beat.write * beatsPerHour;
  const requests = pollsPerHour + beatsPerHour;
  // Median handler times (robust to a shared machine's stalls); a long poll is held for its whole wait.
  const pollMs = Math.ceil(poll.serverMs.p50 || 0);
  const beatMs = Math.ceil(beat.serverMs.p50 || 0);
  const lambdaMs = pollMs * pollsPerHour + beatMs * beatsPerHour;
  const logPerRequest = r.snap.logBytes / Math.max(1, r.polls + r.heartbeats) + ASSUMED.platformLogBytes;
  const lines: CostLine[] = [
    { item: "DynamoDB reads", quantity: `${num(rru, 0)} RRU`, usd: rru * PRICES.dynamoRru },
    { item: "DynamoDB writes", quantity: `${num(wru, 0)} WRU`, usd: wru * PRICES.dynamoWru },
    {
      item: "API Gateway + Lambda requests",
      quantity: `${num(requests, 0)} requests`,
      usd: requests * (PRICES.httpApiRequest + PRICES.lambdaRequest),
    },
    {
      item: "Lambda API duration (1 GB)",
      quantity: `${num(lambdaMs / 1000, 1)} s`,
      usd: lambdaDuration(lambdaMs, MEMORY_GB.api),
    },
    {
      item: "CloudWatch Logs",
      quantity: `${num((logPerRequest * requests) / 1024, 0)} KB`,
      usd: ((logPerRequest * requests) / 1e9) * PRICES.cloudWatchLogsGb,
    },
  ];
  return {
    poll,
    beat,
    pollsPerHour,
    beatsPerHour,
    summaryLocal,
    summaryAws,
    pollRru,
    lines,
    total: lines.reduce((a, l) => a + l.usd, 0),
    perPoll: requestCost(pollRru, poll.write, pollMs, logPerRequest),
    perHeartbeat: requestCost(beat.read, beat.write, beatMs, logPerRequest),
  };
}

/** What one API request costs on AWS: gateway, Lambda request and duration, DynamoDB, logs. */
function requestCost(rru: number, wru: number, ms: number, logBytes: number): number {
  return (
    PRICES.httpApiRequest +
    PRICES.lambdaRequest +
    lambdaDuration(ms, MEMORY_GB.api) +
    rru * PRICES.dynamoRru +
    wru * PRICES.dynamoWru +
    (logBytes / 1e9) * PRICES.cloudWatchLogsGb
  );
}

// ---------------------------------------------------------------------------------------------------------------

export interface LifecycleResult {
  options: LifecycleOptions;
  load: LoadResult;
  serial: SerialResult;
  idle: IdleResult[];
  sweep: { runs: number; readPerRun: number; writePerRun: number };
}

export async function runLifecycle(stack: LocalStack, opts: LifecycleOptions): Promise<LifecycleResult> {
  instrument.install(classify);
  instrument.setClassifier(classify);
  const admin = new Http(stack.url, 16);
  progress(`lifecycle: setting up ${opts.clients} clients and ${opts.miners} miners...`);
  const clients = await pool(Array.from({ length: Math.max(1, opts.clients) }), 8, () =>
    fundedClient(admin, stack),
  );
  const miners = await pool(Array.from({ length: Math.max(1, opts.miners) }), 8, () =>
    registeredMiner(admin, stack, opts.minerSlots),
  );
  admin.close();

  progress(
    `load: ${opts.jobs} echo jobs, ${opts.clients} clients x ${opts.inflight} in flight, ${opts.miners} miners x ${opts.minerSlots} slots${opts.maxSeconds ? `, submitting for at most ${opts.maxSeconds} s` : ""}`,
  );
  const load = await underLoad(stack, clients, miners, opts);
  progress(`serial: ${opts.serialJobs} jobs, one at a time`);
  const serialRun = await serial(stack, clients[0] as Account, miners[0] as Miner, opts);

  const idleRuns: IdleResult[] = [];
  for (const [mode, wait] of [
    ["long-poll", opts.idleWaitSeconds],
    ["short-poll", 0],
  ] as const) {
    progress(`idle fleet: ${miners.length} miners, ${mode} (wait_seconds ${wait}) for ${opts.idleSeconds} s`);
    idleRuns.push(await idle(stack, miners, mode, wait, opts));
  }
  const sweep = instrument.merge(
    idleRuns.map((r) => r.snap.buckets["bg: sweep (cron)"]).filter((b): b is instrument.Bucket => !!b),
  );
  const runs = idleRuns.reduce((a, r) => a + r.snap.sweepRuns, 0);
  return {
    options: opts,
    load,
    serial: serialRun,
    idle: idleRuns,
    sweep: { runs, readPerRun: runs ? sweep.read / runs : 0, writePerRun: runs ? sweep.write / runs : 0 },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Printing

function opsLine(ops: Record<string, instrument.OpUse>, scale = 1): string {
  return Object.entries(ops)
    .sort((a, b) => b[1].write + b[1].read - (a[1].write + a[1].read))
    .map(([label, u]) => {
      const extra = [
        u.errors ? `${num(u.errors * scale, 2)} failed` : "",
        u.estimated ? `${num(u.estimated * scale, 2)} est.` : "",
        u.cancelled ? `${num(u.cancelled * scale, 2)} cancelled-tx est.` : "",
      ].filter(Boolean);
      return `${label} x${num(u.calls * scale, 2)} (${num(u.read * scale, 2)} R, ${num(u.write * scale, 2)} W${extra.length ? `; ${extra.join(", ")}` : ""})`;
    })
    .join("; ");
}

function latencyTable(rows: [string, Summary][]): string {
  return table(
    ["latency (ms)", "n", "p50", "p90", "p99", "max"],
    rows.map(([name, s]) => [name, s.n, num(s.p50), num(s.p90), num(s.p99), num(s.max)]),
  );
}

function phaseTable(snap: instrument.Snapshot, jobs: number, unit?: UnitTimes): string {
  const rows: (string | number)[][] = [];
  const total = { calls: 0, w: 0, r: 0, ddb: 0 };
  for (const phase of PHASES) {
    const b = snap.buckets[phase];
    if (!b) continue;
    total.calls += b.requests;
    total.w += b.write;
    total.r += b.read;
    total.ddb += b.calls;
    rows.push([
      phase,
      num(b.requests / jobs, 2),
      num(b.write / jobs, 2),
      num(b.read / jobs, 2),
      num(b.calls / jobs, 2),
      num(meanMs(b), 1),
      unit ? num(unit.msPerCall[phase] ?? Number.NaN, 1) : "",
    ]);
  }
  for (const [name, b] of Object.entries(snap.buckets).filter(([n]) => !isRequestPhase(n))) {
    total.w += b.write;
    total.r += b.read;
    total.ddb += b.calls;
    rows.push([name, "-", num(b.write / jobs, 2), num(b.read / jobs, 2), num(b.calls / jobs, 2), "-", ""]);
  }
  rows.push([
    "total",
    num(total.calls / jobs, 2),
    num(total.w / jobs, 2),
    num(total.r / jobs, 2),
    num(total.ddb / jobs, 2),
    "",
    "",
  ]);
  return table(
    [
      "phase",
      "HTTP calls/job",
      "WCU/job",
      "RCU/job",
      "DDB calls/job",
      "server ms/call",
      unit ? "unloaded p50 ms" : "",
    ],
    rows,
  );
}

function byIndexLine(snap: instrument.Snapshot, jobs: number): string {
  return Object.entries(snap.writesByIndex)
    .sort(([a], [b]) => (a === "table" ? -1 : b === "table" ? 1 : a.localeCompare(b)))
    .map(([where, units]) => `${where} ${num(units / jobs, 1)}`)
    .join(", ");
}

function claimContention(snap: instrument.Snapshot, claimed: number): string {
  let attempts = 0;
  let failed = 0;
  for (const phase of ["claim", "empty poll"]) {
    for (const [label, u] of Object.entries(snap.buckets[phase]?.ops ?? {})) {
      if (!label.startsWith("TransactWriteItems")) continue;
      attempts += u.calls;
      failed += u.errors;
    }
  }
  return `claim transactions: ${num(attempts / Math.max(1, claimed), 2)} attempted per claimed job, ${num(failed / Math.max(1, claimed), 2)} of them cancelled (lost races)`;
}

export function printLifecycle(r: LifecycleResult): void {
  const { options: o, load, serial: s } = r;
  console.log(
    `\n== Job lifecycle under load: ${load.jobs} echo jobs, ${o.clients} clients x ${o.inflight} in flight, ${o.miners} miners x ${o.minerSlots} slots (poll wait_seconds ${o.waitSeconds}) ==`,
  );
  console.log(
    `${load.completed} completed, ${load.failed} failed in ${num(load.seconds, 1)} s: ${num(load.completed / load.seconds, 1)} jobs/s`,
  );
  if (Object.keys(load.errors).length) console.log(`unexpected answers: ${JSON.stringify(load.errors)}`);
  console.log(
    latencyTable([
      ["submit (POST /v1/jobs -> 201)", load.submitMs],
      ["submit -> claimed by a miner", load.claimMs],
      ["submit -> completed seen by the client", load.endToEndMs],
    ]),
  );
  const unit = unitTimes(s.snap, r.idle);
  console.log(
    "\nPer job, by phase (capacity as AWS would bill it; server time = request start -> response finished):",
  );
  console.log(phaseTable(load.snap, load.jobs, unit));
  console.log(`${claimContention(load.snap, load.completed + load.failed)}`);
  console.log("\nDynamoDB operations per job, by phase (calls; read and write units):");
  for (const [name, b] of Object.entries(load.snap.buckets)) {
    if (b.calls) console.log(`  ${name}: ${opsLine(b.ops, 1 / load.jobs)}`);
  }
  const ev = Object.entries(load.snap.events)
    .map(([t, n]) => `${t} x${num(n / load.jobs, 2)}`)
    .join(", ");
  console.log(
    `Outbox events per job: ${ev || "none"}; SQS deliveries by the bus rules: ${num(deliveries(load.snap.events) / load.jobs, 2)} per job`,
  );
  const inv = Object.entries(load.snap.invocations)
    .map(
      ([name, i]) =>
        `${name}: ${i.count} invocations, ${num(i.records / Math.max(1, i.count), 1)} records each, ${num(i.ms / Math.max(1, i.records), 1)} ms per record`,
    )
    .join("; ");
  console.log(`Local pollers: ${inv || "none"}`);
  console.log(
    `Stream records passing the Lambda filter: ${num(load.snap.streamRecords / load.jobs, 2)} per job; app log: ${num(load.snap.logBytes / load.jobs, 0)} bytes per job`,
  );
  console.log(
    `Write units per job by where they land (reported, GSIs project all attributes): ${byIndexLine(load.snap, load.jobs)}`,
  );
  if (load.snap.errorLines.length) console.log(`ERROR log line (first): ${load.snap.errorLines[0]}`);

  console.log(`\n== Serial: ${s.jobs} jobs, one at a time (1 client, 1 miner): the contention-free floor ==`);
  console.log(
    latencyTable([
      ["submit -> claimed by the miner", s.claimMs],
      ["submit -> completed seen by the client", s.endToEndMs],
    ]),
  );
  console.log(phaseTable(s.snap, s.jobs));
  console.log(claimContention(s.snap, s.jobs));
  console.log(`Write units per job by where they land: ${byIndexLine(s.snap, s.jobs)}`);
  const sInv = Object.entries(s.snap.invocations)
    .map(
      ([name, i]) =>
        `${name}: ${num(i.records / Math.max(1, i.count), 1)} records per invocation, ${num(i.ms / Math.max(1, i.records), 1)} ms per record`,
    )
    .join("; ");
  console.log(`Local pollers: ${sInv || "none"}`);

  console.log(
    `\n== Idle fleet: ${o.miners} miners, nothing queued, ${o.idleSeconds} s per mode, heartbeats every ${config.heartbeatSeconds} s ==`,
  );
  const idleRows = r.idle.map((i) => ({ i, c: idleCosts(i) }));
  console.log(
    table(
      [
        "mode",
        "polls",
        "polls/miner-h",
        "DDB calls/poll",
        "queue reads/poll",
        "RCU/poll",
        "WCU/poll",
        "server p50 ms",
        "server p99 ms",
      ],
      idleRows.map(({ i, c }) => [
        `${i.mode} (wait ${i.waitSeconds} s)`,
        i.polls,
        num(c.pollsPerHour, 0),
        num(c.poll.calls, 2),
        num(
          Object.entries(c.poll.ops)
            .filter(([l]) => isQueueRead(l))
            .reduce((a, [, u]) => a + u.calls, 0),
          3,
        ),
        num(c.poll.read, 2),
        num(c.poll.write, 2),
        num(c.poll.serverMs.p50, 1),
        num(c.poll.serverMs.p99, 1),
      ]),
    ),
  );
  for (const { i, c } of idleRows) console.log(`  empty poll, ${i.mode}: ${opsLine(c.poll.ops)}`);
  const hb = idleRows[0]?.c.beat;
  if (hb)
    console.log(
      `  heartbeat: ${num(hb.read, 2)} RCU, ${num(hb.write, 2)} WCU, server p50 ${num(hb.serverMs.p50, 1)} ms; ${opsLine(hb.ops)}`,
    );
  console.log(
    `  sweep (cron): ${r.sweep.runs} runs, ${num(r.sweep.readPerRun, 2)} RCU and ${num(r.sweep.writePerRun, 2)} WCU per run (locally every ${process.env.COORD_SWEEP_SECONDS ?? 1} s; on AWS once a minute: ${num(r.sweep.readPerRun * 60 * 730, 0)} RRU a month, fleet-wide)`,
  );
  const long = idleRows.find((x) => x.i.mode === "long-poll");
  if (long)
    console.log(
      `  note: locally all waiting polls share one process and its summary cache (${num(long.c.summaryLocal, 2)} summary reads per long poll); on Lambda each waiting poll has an instance to itself and re-reads the summary on every ${process.env.COORD_POLL_RECHECK_MS ?? 250} ms recheck: ~${long.c.summaryAws} reads (0.5 RRU each) per ${long.i.waitSeconds} s poll, as costed below.`,
    );

  console.log("\n== AWS cost estimate (us-east-1, on-demand list prices) ==");
  console.log(
    "Counts from the runs above; Lambda durations from the unloaded (serial and short-poll) median handler times. The sweep is fleet-wide upkeep (see above), not per job.",
  );
  const loaded = jobCosts(load.snap, load.jobs, unit);
  const floor = jobCosts(s.snap, s.jobs, unit);
  console.log(
    table(
      ["per job", "under load: qty/job", "$ per million jobs", "serial: qty/job", "$ per million jobs"],
      [
        ...loaded.lines.map((l, idx) => [
          l.item,
          l.quantity,
          usd(l.usd * 1e6),
          floor.lines[idx]?.quantity ?? "",
          usd((floor.lines[idx]?.usd ?? 0) * 1e6),
        ]),
        ["total", "", usd(loaded.total * 1e6), "", usd(floor.total * 1e6)],
      ],
    ),
  );
  console.log(
    `  of which the client's long-poll observation (GET /v1/jobs/{id}?wait=20): ${usd(loaded.observeUsd * 1e6)} under load, ${usd(floor.observeUsd * 1e6)} serial, per million jobs.`,
  );
  const pathPhases = [...JOB_PATH].filter((p) => unit.msPerCall[p] !== undefined);
  console.log(
    `  unloaded median handler time per call: ${pathPhases.map((p) => `${p} ${num(unit.msPerCall[p] ?? 0, 1)} ms`).join(", ")}, observe ${num(unit.msPerCall.observe ?? 0, 1)} ms (held until the job changes), empty poll ${num(unit.msPerCall["empty poll"] ?? 0, 1)} ms, heartbeat ${num(unit.msPerCall.heartbeat ?? 0, 1)} ms; stream handler ${num(unit.streamMsPerRecord, 1)} ms per record (+${ASSUMED.putEventsMs} ms assumed per PutEvents)`,
  );
  for (const { i, c } of idleRows) {
    console.log(
      `\nPer idle miner-hour, ${i.mode} (wait_seconds ${i.waitSeconds}): ${num(c.pollsPerHour, 0)} polls + ${num(c.beatsPerHour, 0)} heartbeats`,
    );
    console.log(
      table(
        ["item", "quantity/h", "$ per miner-hour"],
        [...c.lines.map((l) => [l.item, l.quantity, usd(l.usd)]), ["total", "", usd(c.total)]],
      ),
    );
    console.log(
      `  = ${usd(c.total * 730)} per idle miner-month (730 h); ${usd(c.total * 730 * 1000)} a month for 1,000 idle miners`,
    );
  }
  const short = idleRows.find((x) => x.i.mode === "short-poll")?.c;
  if (short) {
    const beatsUsd = short.perHeartbeat * short.beatsPerHour;
    console.log(
      `\nShort polls at other intervals (Retry-After-Ms), from the measured ${usd(short.perPoll * 1e6)} per million empty polls and ${usd(short.perHeartbeat * 1e6)} per million heartbeats (one every ${config.heartbeatSeconds} s):`,
    );
    console.log(
      table(
        ["poll every", "polls/h", "$ per miner-hour", "$ per miner-month", "$ per month, 1,000 miners"],
        [1, 5, 20, 60].map((sec) => {
          const h = (3600 / sec) * short.perPoll + beatsUsd;
          return [`${sec} s`, num(3600 / sec, 0), usd(h), usd(h * 730), usd(h * 730 * 1000)];
        }),
      ),
    );
  }
  console.log("\nPrices and assumptions:");
  for (const note of PRICE_NOTES) console.log(`  - ${note}`);
}

export function lifecycleOptions(args: Args, defaults: Partial<LifecycleOptions> = {}): LifecycleOptions {
  const d: LifecycleOptions = {
    jobs: 500,
    miners: 20,
    minerSlots: 2,
    clients: 4,
    inflight: 8,
    waitSeconds: 2,
    maxSeconds: 0,
    serialJobs: 20,
    idleSeconds: 10,
    idleWaitSeconds: 5,
    ...defaults,
  };
  return {
    jobs: numArg(args.jobs, d.jobs, "jobs"),
    miners: numArg(args.miners, d.miners, "miners"),
    minerSlots: numArg(args["miner-slots"], d.minerSlots, "miner-slots"),
    clients: numArg(args.clients, d.clients, "clients"),
    inflight: numArg(args.inflight, d.inflight, "inflight"),
    waitSeconds: numArg(args["wait-seconds"], d.waitSeconds, "wait-seconds"),
    maxSeconds: numArg(args["max-seconds"], d.maxSeconds, "max-seconds"),
    serialJobs: numArg(args["serial-jobs"], d.serialJobs, "serial-jobs"),
    idleSeconds: numArg(args["idle-seconds"], d.idleSeconds, "idle-seconds"),
    idleWaitSeconds: numArg(args["idle-wait-seconds"], d.idleWaitSeconds, "idle-wait-seconds"),
  };
}

benchMain(
  import.meta.url,
  "lifecycle",
  (stack, args) => runLifecycle(stack, lifecycleOptions(args)),
  printLifecycle,
);

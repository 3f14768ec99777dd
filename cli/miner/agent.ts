/**
 * The reference miner agent: registers, long-polls for work, runs claimed jobs concurrently through executors,
 * heartbeats the jobs it holds (renewing their leases) and abandons any job the coordinator names to stop. On stop
 * (a signal, `once`, `maxJobs`) it drains: tells the coordinator, takes no new work, finishes what it holds.
 *
 * Two transports. `poll`: all of the above over HTTP. `ws`: the doorbell socket (cli/miner/doorbell-client.ts)
 * carries the heartbeats, the rings ("work may be waiting") and pushed stop orders, and the agent polls (without
 * waiting) only when rung; whenever the socket is down it is the `poll` agent again (HTTP long-poll and heartbeats)
 * while the socket reconnects in the background. Claims and reports are HTTP either way, so a switch of transport
 * never touches a job: what the agent holds keeps running and keeps heartbeating over whichever transport is up.
 *
 * It speaks only the public API (docs/cli.md has the protocol walk-through), so it doubles as the reference
 * for anyone writing a miner in another language.
 */

import { Api, ApiError, sleep } from "../http.ts";
import { type ClaimLinks, jobArtifacts } from "./artifacts.ts";
import { type Backoff, type CoordinatorMessage, DoorbellClient, DoorbellRefused } from "./doorbell-client.ts";
import { Completed, defaultExecutors, type Executor, JobFailure } from "./executors.ts";
import type { MinerSigner } from "./signing.ts";
import { HeartbeatWatchdog } from "./watchdog.ts";

export interface Gpu {
  model: string;
  vram_mb: number;
  count?: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, event: string, fields?: Record<string, unknown>) => void;

export interface MinerOptions {
  url: string;
  /** A miner key (`mk_...`). */
  key: string;
  /** The miner's name; re-registering the same name updates the same miner. */
  name: string;
  services: string[];
  concurrency?: number;
  region?: string;
  gpus?: Gpu[];
  /** Unit price per service, micro-credits; the registry's default price where not given. */
  prices?: Record<string, number>;
  /** Further registration fields (cuda_version, models, pool, accepts_public...). */
  registration?: Record<string, unknown>;
  /** The miner's Ed25519 key: registered (with its proof) and used to co-sign every result. */
  signer?: MinerSigner;
  /**
   * The heartbeat watchdog (cli/miner/watchdog.ts): a worker thread that heartbeats the held jobs whenever this
   * thread's event loop is blocked (CPU-bound executor code). On by default.
   */
  watchdog?: boolean;
  /** One poll, run what it brought, then drain and return. */
  once?: boolean;
  /** Claim at most this many jobs, then drain and return once they finish. */
  maxJobs?: number;
  /** Long-poll wait per poll (the coordinator caps it at 20). */
  waitSeconds?: number;
  /** Aborting it drains the agent: no new work, in-flight jobs finish, then `run()` resolves. */
  signal?: AbortSignal;
  /** Executors by service id; defaults to `defaultExecutors` (echo). */
  executors?: Record<string, Executor>;
  log?: Logger;
  fetch?: typeof fetch;
  /** After draining, how long an in-flight poll may still bring work before it is abandoned. */
  drainGraceMs?: number;
  /**
   * How work reaches the agent: `ws` (the doorbell, with the HTTP long-poll as the fallback while the socket is
   * down) or `poll` (HTTP only). `poll` by default here, so that embedders keep the behaviour they had;
   * `coord miner run` defaults to `ws`.
   */
  transport?: Transport;
  /** The doorbell's address; by default the coordinator names it (a plain `GET /v1/miners/connect` answers 426). */
  doorbellUrl?: string;
  /** The doorbell's reconnect backoff (full jitter): base 1 s, cap 30 s, reset after a connection up 60 s. */
  reconnect?: Partial<Backoff>;
}

export type Transport = "ws" | "poll";
/** Where work comes from right now: the doorbell, the HTTP long-poll, or neither yet (the first connect). */
type Mode = "ws" | "http" | "connecting";

export interface MinerSummary {
  miner_id: string;
  claimed: number;
  completed: number;
  failed: number;
  abandoned: number;
  drained: boolean;
}

interface Assignment {
  job_id: string;
  claim_token: string;
  service: string;
  input: unknown;
  attempt: number;
  heartbeat_interval_seconds?: number;
  timeout_at?: string;
  /** Presigned links for the input's artifacts and the output slots, valid until the lease ends. */
  artifacts?: ClaimLinks;
}

interface HeartbeatResponse {
  stop?: { job_id: string; claim_token: string; reason: string }[];
  stop_claim_tokens?: string[];
  heartbeat_interval_seconds?: number;
  lease_seconds?: number;
}

interface Held {
  job: Assignment;
  controller: AbortController;
  done: Promise<void>;
}

/** Why a job was aborted: the coordinator's stop order, or the agent noticing its claim went stale. */
export class StopOrder extends Error {
  constructor(readonly reason: string) {
    super(`stopped by the coordinator: ${reason}`);
    this.name = "StopOrder";
  }
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line on stderr (or the given writer). */
export function jsonLogger(
  minLevel: LogLevel = "info",
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return (level, event, fields = {}) => {
    if (LEVELS[level] < LEVELS[minLevel]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })}\n`);
  };
}

const jitter = (ms: number) => Math.round(ms * (0.8 + Math.random() * 0.4));
/** Exponential backoff with jitter for errors: 0.5 s, 1 s, 2 s ... up to 30 s. */
const backoff = (n: number) => Math.round(Math.min(30_000, 500 * 2 ** (n - 1)) * (0.5 + Math.random() * 0.5));
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** An interval from the coordinator, if it is a sane one (a missing one must not make the heartbeat timer spin). */
const seconds = (v: unknown, fallback: number) =>
  typeof v === "number" && v >= 0.1 && v <= 3600 ? v : fallback;

/** A call the agent cannot recover from by retrying: the key, the account kind or the miner is wrong. */
function fatal(err: unknown): boolean {
  return err instanceof ApiError && [400, 401, 403, 404, 422].includes(err.status);
}

type Outcome = { ok: true; body: Record<string, unknown> } | { ok: false; stale: boolean; error: unknown };

export class MinerAgent {
  minerId = "";
  private readonly opts: MinerOptions;
  private watchdog: HeartbeatWatchdog | undefined;
  private readonly log: Logger;
  private readonly executors: Record<string, Executor>;
  private readonly api: Api;
  private miner!: Api;
  private readonly held = new Map<string, Held>();
  private readonly counts = { claimed: 0, completed: 0, failed: 0, abandoned: 0 };
  private stopping = false;
  private drained = false;
  private drainDone: Promise<void> = Promise.resolve();
  /** Aborts the current poll (after draining) and any back-off pause. */
  private readonly pollStop = new AbortController();
  private readonly pauseStop = new AbortController();
  private readonly heartbeatStop = new AbortController();
  private heartbeatInFlight: Promise<unknown> = Promise.resolve();
  private heartbeatMs = 10_000;
  /** When the agent last brought itself back online after a poll said it was offline. */
  private revivedAt = 0;
  private warnedBanned = false;
  /** Wakes the poll loop from a nap: a slot freed, a ring, a change of transport, the drain. */
  private wakeUp: (() => void) | undefined;

  private mode: Mode = "http";
  private doorbell: DoorbellClient | undefined;
  private doorbellAddress: string | undefined;
  private downSince = 0;
  /** On the doorbell: rung (or told work waits), or the last poll brought jobs: poll once more, without waiting. */
  private pollWanted = false;
  /** The poll loop is long-polling because the doorbell is down (for the log's "stopped"/"started" lines). */
  private longPolling = false;
  /** The doorbell's heartbeat intervals (from the welcome), and the one its last answer asked for. */
  private wsIdleMs = 60_000;
  private wsBusyMs = 10_000;
  private wsHintMs = Number.POSITIVE_INFINITY;

  /** The heartbeat timer: one heartbeat at a time, over whichever transport is up when it fires. */
  private beatTimer: NodeJS.Timeout | undefined;
  private beatDueAt = 0;
  private beating: Promise<void> | undefined;
  /** Asked for (sooner) while a heartbeat was on its way: the re-arm after it honours it. */
  private beatSoonMs: number | undefined;

  constructor(opts: MinerOptions) {
    this.opts = opts;
    this.log = opts.log ?? jsonLogger();
    this.executors = opts.executors ?? { ...defaultExecutors };
    this.api = new Api({ url: opts.url, key: opts.key, fetch: opts.fetch, userAgent: "coord-miner/0.1" });
  }

  private get concurrency() {
    return this.opts.concurrency ?? 1;
  }

  /** Registers (again, by name: the same miner), which also marks it online. */
  private async register() {
    const signer = this.opts.signer;
    let identity: Record<string, unknown> = {};
    if (signer) {
      // Proof of the key: a single-use challenge, signed with it (spent by this registration).
      const { body } = await this.api.post<{ challenge: string; account_id: string }>(
        "/v1/miners/challenge",
        {},
      );
      identity = {
        public_key: signer.publicKey,
        key_proof: signer.keyProof(body.challenge, body.account_id, this.opts.name),
      };
    }
    const reg = await this.api.post<{ miner_id: string; status: string }>("/v1/miners/register", {
      ...identity,
      name: this.opts.name,
      services: this.opts.services,
      concurrency: this.concurrency,
      ...(this.opts.gpus?.length ? { gpus: this.opts.gpus } : {}),
      ...(this.opts.region ? { region: this.opts.region } : {}),
      ...(this.opts.prices && Object.keys(this.opts.prices).length ? { prices: this.opts.prices } : {}),
      ...this.opts.registration,
    });
    if (this.watchdog && this.minerId !== reg.body.miner_id) {
      await this.watchdog.stop();
      this.watchdog = undefined;
    }
    this.minerId = reg.body.miner_id;
    this.miner = this.api.with({ "x-miner-id": this.minerId });
    if (this.opts.watchdog !== false && !this.watchdog) {
      this.watchdog = new HeartbeatWatchdog({
        url: this.api.url,
        key: this.opts.key,
        minerId: this.minerId,
        userAgent: "coord-miner/0.1",
        heartbeatMs: this.heartbeatMs,
        onStop: (orders) => this.applyStops(orders, "heartbeat", "http"),
        onLog: (event, fields) => this.log("warn", event, { miner_id: this.minerId, ...fields }),
      });
      this.tellWatchdog();
    }
    this.log("info", "miner.registered", {
      miner_id: this.minerId,
      name: this.opts.name,
      services: this.opts.services,
      concurrency: this.concurrency,
      region: this.opts.region ?? null,
    });
  }

  /** Registers, works until stopped, drains, and resolves with what it did. */
  async run(): Promise<MinerSummary> {
    await this.register();
    const unsupported = this.opts.services.filter((s) => !this.executors[s]);
    if (unsupported.length)
      this.log("warn", "miner.no_executor", {
        services: unsupported,
        note: "jobs of these services will fail",
      });

    const onAbort = () => this.stop("signal");
    this.opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (this.opts.transport === "ws") this.openDoorbell();
    // The heartbeat timer runs on its own, never behind a poll or a job, whatever the transport.
    this.armBeat(0);
    let failure: unknown;
    try {
      if (this.opts.signal?.aborted) this.stop("signal");
      await this.pollLoop();
    } catch (err) {
      failure = err;
      this.log("error", "miner.error", { error: errText(err) });
    } finally {
      this.stop(failure ? "error" : "done");
      await this.drainDone;
      while (this.held.size > 0) await Promise.all([...this.held.values()].map((h) => h.done));
      this.heartbeatStop.abort();
      clearTimeout(this.beatTimer);
      // Closing the doorbell also fails a socket heartbeat still waiting for its answer.
      this.doorbell?.close();
      await this.beating;
      await this.watchdog?.stop();
      this.opts.signal?.removeEventListener("abort", onAbort);
    }
    const summary: MinerSummary = { miner_id: this.minerId, ...this.counts, drained: this.drained };
    this.log("info", "miner.stopped", { ...summary });
    if (failure) throw failure;
    return summary;
  }

  /** Drain: no new work; in-flight jobs finish. Idempotent. */
  stop(why = "requested"): void {
    if (this.stopping) return;
    this.stopping = true;
    this.tellWatchdog();
    this.pauseStop.abort();
    this.wake();
    this.log("info", "miner.draining", { miner_id: this.minerId, reason: why, in_flight: this.held.size });
    this.drainDone = (async () => {
      if (!this.minerId) return;
      // A heartbeat already on its way says "online"; let it land first so that the drain is the last word.
      await this.heartbeatInFlight.catch(() => {});
      try {
        await this.miner.post("/v1/miners/drain", {});
        this.drained = true;
        this.log("info", "miner.drained", { miner_id: this.minerId });
      } catch (err) {
        this.log("warn", "miner.drain_failed", { error: errText(err) });
      }
      // A poll in flight may still have claimed work just before the drain: give it a moment to bring it home.
      setTimeout(() => this.pollStop.abort(), this.opts.drainGraceMs ?? 1000).unref?.();
    })();
  }

  private async pause(ms: number) {
    await sleep(ms, this.pauseStop.signal).catch(() => {});
  }

  /** Waits until `wake()` (or `ms`, if given). Only the poll loop naps, so one waiter is enough. */
  private nap(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private wake() {
    this.wakeUp?.();
  }

  /** A ring (or `work: true`): poll now. Only a hint: the poll's claim decides whether there is anything. */
  private ring() {
    this.pollWanted = true;
    this.wake();
  }

  private async pollLoop() {
    let errors = 0;
    const waitSeconds = Math.min(this.opts.waitSeconds ?? 20, 20);
    while (!this.stopping) {
      const budget =
        this.opts.maxJobs === undefined ? Number.POSITIVE_INFINITY : this.opts.maxJobs - this.counts.claimed;
      if (budget <= 0) return;
      const mode = this.mode;
      if (mode !== "http" && this.longPolling) {
        // The doorbell is back and the long-poll that was in flight came home (keeping what it claimed).
        this.longPolling = false;
        this.log("info", "poll.long_poll_stopped", { transport: "ws" });
      }
      const free = this.concurrency - this.held.size;
      if (free <= 0) {
        await this.nap();
        continue;
      }
      // On the doorbell the agent polls only when rung or told that work waits, and then without waiting: the socket
      // replaces the long-poll. `once` makes its one (long) poll whatever the transport.
      const rung = mode === "ws" && this.pollWanted;
      if (mode !== "http" && !rung && !this.opts.once) {
        await this.nap();
        continue;
      }
      if (mode === "http" && !this.longPolling && this.opts.transport === "ws") {
        this.longPolling = true;
        this.log("info", "poll.long_poll_started", { transport: "http" });
      }
      this.pollWanted = false;
      let res: { status: number; headers: Headers; body: { jobs?: Assignment[] } };
      try {
        res = await this.miner.request("POST", "/v1/miners/poll", {
          body: { wait_seconds: rung ? 0 : waitSeconds, max_jobs: Math.min(free, budget) },
          signal: this.pollStop.signal,
          retries429: 0,
        });
      } catch (err) {
        if (this.pollStop.signal.aborted) return;
        if (fatal(err)) throw err;
        // The ring still stands: poll again after the pause.
        if (rung) this.pollWanted = true;
        errors++;
        const retryAfter = err instanceof ApiError ? Number(err.problem.retry_after_seconds) : Number.NaN;
        const delay = Number.isFinite(retryAfter) ? jitter(retryAfter * 1000) : backoff(errors);
        this.log("warn", "poll.error", {
          transport: rung ? "ws" : "http",
          error: errText(err),
          retry_in_ms: delay,
        });
        await this.pause(delay);
        continue;
      }
      errors = 0;
      // A 204 that names the miner's own status: offline means the coordinator stopped counting on it (its
      // heartbeats went silent). Heartbeat (or register again) at once and poll again, rather than idle for ever.
      const minerStatus = res.status === 204 ? res.headers.get("coord-miner-status") : null;
      if (minerStatus === "offline" && !this.stopping && Date.now() - this.revivedAt > this.heartbeatMs) {
        this.log("warn", "miner.offline", { miner_id: this.minerId, hint: res.headers.get("coord-hint") });
        this.revivedAt = Date.now();
        if (await this.revive()) {
          // Back online: the ring that brought this poll still stands.
          if (rung) this.pollWanted = true;
          continue;
        }
      } else if (minerStatus === "banned" && !this.warnedBanned) {
        this.warnedBanned = true;
        this.log("error", "miner.banned", { miner_id: this.minerId, hint: res.headers.get("coord-hint") });
      }
      const jobs = res.status === 200 ? (res.body.jobs ?? []) : [];
      for (const job of jobs) this.launch(job, rung ? "ws" : "http");
      if (this.opts.once) return;
      // Work came: more may wait, so poll again while slots are free (a ring that came meanwhile stands anyway).
      if (jobs.length > 0) this.pollWanted = true;
      else if (rung) this.log("debug", "poll.empty", { transport: "ws" });
      else if (this.mode === "http") {
        const hint = Number(res.headers.get("retry-after-ms"));
        const delay = jitter(Number.isFinite(hint) && hint > 0 ? hint : 1000);
        this.log("debug", "poll.empty", { transport: "http", retry_in_ms: delay });
        // A nap, not a pause: the doorbell coming back (or the drain) ends it.
        await this.nap(delay);
      }
    }
  }

  /** `transport`: how the claim came about, a ring on the doorbell (`ws`) or the HTTP long-poll (`http`). */
  private launch(job: Assignment, transport: "ws" | "http") {
    this.counts.claimed++;
    if (job.heartbeat_interval_seconds) this.heartbeatMs = job.heartbeat_interval_seconds * 1000;
    this.log("info", "job.claimed", {
      job_id: job.job_id,
      service: job.service,
      attempt: job.attempt,
      transport,
    });
    const controller = new AbortController();
    const entry: Held = { job, controller, done: Promise.resolve() };
    this.held.set(job.job_id, entry);
    this.tellWatchdog();
    // The lease now rides on the heartbeats: an idle doorbell's next one may be a minute away, so bring it forward.
    this.armBeat(this.beatInterval());
    entry.done = this.execute(job, controller)
      .catch((err) => this.log("error", "job.error", { job_id: job.job_id, error: errText(err) }))
      .finally(() => {
        this.held.delete(job.job_id);
        this.tellWatchdog();
        this.wake();
      });
  }

  /**
   * A miner report with retries on transient trouble (network, 5xx, 429); 409 means the claim is stale. Progress and
   * start give up after five attempts (the next one will do). A result or a failure is the job's outcome: it is sent
   * until the coordinator acknowledges it (backoff capped at 30 s; the heartbeats keep vouching for the job meanwhile)
   * or the job is stopped. The same report sent twice is harmless: a second result under the claim that completed
   * the job answers 409 `conflict` with the job `completed` (the first landed and its answer was lost), which counts
   * as the acknowledgement.
   */
  private async report(
    job: Assignment,
    action: string,
    body: Record<string, unknown>,
    outcome?: { acknowledgedBy: string; signal: AbortSignal },
  ): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.miner.post(`/v1/miners/${job.job_id}/${action}`, {
          claim_token: job.claim_token,
          ...body,
        });
        return { ok: true, body: res.body };
      } catch (err) {
        if (
          outcome &&
          attempt > 1 &&
          err instanceof ApiError &&
          err.code === "conflict" &&
          err.problem.job_status === outcome.acknowledgedBy
        ) {
          this.log("info", "job.report_acknowledged", { job_id: job.job_id, action, attempts: attempt });
          return { ok: true, body: {} };
        }
        if (err instanceof ApiError && err.status === 409) return { ok: false, stale: true, error: err };
        const transient = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
        if (!transient || (!outcome && attempt >= 5) || outcome?.signal.aborted)
          return { ok: false, stale: false, error: err };
        if (outcome && attempt % 5 === 0)
          this.log("warn", "job.report_retrying", {
            job_id: job.job_id,
            action,
            attempts: attempt,
            error: errText(err),
          });
        await sleep(backoff(attempt), outcome?.signal).catch(() => {});
      }
    }
  }

  /**
   * The coordinator turned a report down with 409: the claim no longer holds (cancelled, timed out, moved on).
   * Same effect as a heartbeat's stop order, with the job's status as the reason when the answer gives it.
   */
  private refused(job: Assignment, err: unknown): StopOrder {
    const status = err instanceof ApiError ? err.problem.job_status : undefined;
    const reason =
      typeof status === "string" && status !== "queued" && status !== "assigned" && status !== "running"
        ? status
        : "stale_claim";
    this.log("info", "job.stop", { job_id: job.job_id, reason });
    return new StopOrder(reason);
  }

  private abandon(job: Assignment, reason: unknown) {
    this.counts.abandoned++;
    this.log("info", "job.abandoned", {
      job_id: job.job_id,
      reason: reason instanceof StopOrder ? reason.reason : errText(reason),
    });
  }

  private async fail(
    job: Assignment,
    signal: AbortSignal,
    code: string,
    message: string,
    retryable: boolean,
  ) {
    const out = await this.report(
      job,
      "fail",
      { error_code: code, error_message: message, retryable },
      { acknowledgedBy: "failed", signal },
    );
    if (out.ok) {
      this.counts.failed++;
      this.log("info", "job.failed", { job_id: job.job_id, error_code: code, retryable });
    } else if (out.stale) {
      this.abandon(job, this.refused(job, out.error));
    } else {
      this.log("error", "job.fail_not_sent", { job_id: job.job_id, error: errText(out.error) });
    }
  }

  private async execute(job: Assignment, controller: AbortController) {
    const { signal } = controller;
    const started = await this.report(job, "start", {});
    if (!started.ok) {
      if (started.stale) return this.abandon(job, this.refused(job, started.error));
      this.log("warn", "job.start_failed", { job_id: job.job_id, error: errText(started.error) });
    }
    const t0 = Date.now();
    const executor = this.executors[job.service];
    if (!executor) {
      return this.fail(
        job,
        signal,
        "unsupported_service",
        `this miner has no executor for '${job.service}'`,
        false,
      );
    }
    let output: unknown;
    try {
      output = await executor({
        jobId: job.job_id,
        service: job.service,
        input: job.input,
        attempt: job.attempt,
        timeoutAt: job.timeout_at,
        artifacts: jobArtifacts(
          job.artifacts,
          async () =>
            (
              await this.miner.post<ClaimLinks>(`/v1/miners/${job.job_id}/artifacts`, {
                claim_token: job.claim_token,
              })
            ).body,
          signal,
        ),
        signal,
        progress: async (fraction, message) => {
          if (signal.aborted) return;
          const out = await this.report(job, "progress", {
            progress: Math.max(0, Math.min(1, fraction)),
            ...(message ? { message } : {}),
          });
          if (!out.ok && out.stale) controller.abort(this.refused(job, out.error));
          else if (!out.ok)
            this.log("warn", "job.progress_failed", { job_id: job.job_id, error: errText(out.error) });
          else this.log("debug", "job.progress", { job_id: job.job_id, progress: fraction });
        },
        log: (event, fields) => this.log("info", event, { job_id: job.job_id, ...fields }),
      });
    } catch (err) {
      if (signal.aborted) return this.abandon(job, signal.reason);
      if (err instanceof JobFailure) return this.fail(job, signal, err.code, err.message, err.retryable);
      return this.fail(job, signal, "executor_error", errText(err).slice(0, 4000), true);
    }
    // Stopped while finishing: the coordinator no longer wants this result.
    if (signal.aborted) return this.abandon(job, signal.reason);
    const value = (output instanceof Completed ? output.output : output) ?? null;
    const usage = output instanceof Completed ? output.usage : undefined;
    const out = await this.report(
      job,
      "result",
      {
        output: value,
        ...(usage ? { usage } : {}),
        // The miner's own word for this output, embedded in the receipt.
        ...(this.opts.signer
          ? { signature: this.opts.signer.signResult(job.job_id, job.attempt, job.claim_token, value) }
          : {}),
      },
      { acknowledgedBy: "completed", signal },
    );
    if (out.ok) {
      this.counts.completed++;
      this.log("info", "job.completed", {
        job_id: job.job_id,
        ms: Date.now() - t0,
        price: out.body.price ?? null,
      });
      return;
    }
    if (out.stale) return this.abandon(job, this.refused(job, out.error));
    if (out.error instanceof ApiError && (out.error.status === 413 || out.error.status === 422)) {
      return this.fail(job, signal, "invalid_output", out.error.message, false);
    }
    this.log("error", "job.result_not_sent", { job_id: job.job_id, error: errText(out.error) });
  }

  /** Back online after the coordinator marked the miner offline: a heartbeat, or a new registration if it is gone. */
  private async revive(): Promise<boolean> {
    const sent = this.heartbeat();
    this.heartbeatInFlight = sent;
    const err = await sent;
    if (err === undefined) {
      this.log("info", "miner.online", { miner_id: this.minerId, by: "heartbeat" });
      return true;
    }
    if (!(err instanceof ApiError) || err.status !== 404) return false;
    try {
      await this.register();
      this.log("info", "miner.online", { miner_id: this.minerId, by: "registration" });
      return true;
    } catch (regErr) {
      this.log("warn", "miner.register_failed", { error: errText(regErr) });
      return false;
    }
  }

  // ---- heartbeats ----

  /**
   * Arms the heartbeat timer to fire within `ms` (never later than it already would). A plain timer of its own, like
   * the HTTP heartbeat's always was: no poll, report or job is ever awaited before it fires. (Executors must not
   * block the event loop for long: CPU-heavy work belongs in a worker or a child process, or no timer fires.)
   */
  private armBeat(ms: number): void {
    if (this.heartbeatStop.signal.aborted) return;
    if (this.beating) {
      this.beatSoonMs = Math.min(this.beatSoonMs ?? ms, ms);
      return;
    }
    const at = Date.now() + ms;
    if (this.beatTimer !== undefined && this.beatDueAt <= at) return;
    clearTimeout(this.beatTimer);
    this.beatDueAt = at;
    this.beatTimer = setTimeout(() => this.fireBeat(), ms);
  }

  private fireBeat(): void {
    this.beatTimer = undefined;
    const sent = this.mode === "ws" ? this.wsHeartbeat() : this.heartbeat();
    this.heartbeatInFlight = sent;
    this.beating = sent.then(() => {
      this.beating = undefined;
      // The interval may have changed with the answer (or the transport): the watchdog keeps the same pace.
      this.tellWatchdog();
      const soon = this.beatSoonMs ?? Number.POSITIVE_INFINITY;
      this.beatSoonMs = undefined;
      this.armBeat(Math.min(soon, this.beatInterval()));
    });
  }

  private beatInterval(): number {
    if (this.mode !== "ws") return this.heartbeatMs;
    // Idle on the socket, the socket itself shows the miner is there; busy, every held job's lease rides on these.
    // The coordinator's last answer may know of a job whose claim has not reached the agent yet: it says busy then.
    return this.held.size > 0 ? this.wsBusyMs : Math.min(this.wsIdleMs, this.wsHintMs);
  }

  /** The watchdog's copy of what it must vouch for should this thread stall. */
  private tellWatchdog(): void {
    this.watchdog?.hold(this.heldClaims(), this.heartbeatMs, this.stopping ? "draining" : "online");
  }

  private heldClaims() {
    return [...this.held.values()].map((h) => ({ job_id: h.job.job_id, claim_token: h.job.claim_token }));
  }

  /** Aborts the held jobs the coordinator names (their results are never sent). */
  private applyStops(
    orders: { claim_token: string; reason: string }[],
    via: "heartbeat" | "push",
    transport: "ws" | "http",
  ) {
    for (const order of orders) {
      const held = [...this.held.values()].find((h) => h.job.claim_token === order.claim_token);
      if (!held || held.controller.signal.aborted) continue;
      this.log("info", "job.stop", { job_id: held.job.job_id, reason: order.reason, via, transport });
      held.controller.abort(new StopOrder(order.reason));
    }
  }

  /** One heartbeat over HTTP; resolves with the error when it failed (logged here), else undefined. */
  private async heartbeat(): Promise<unknown> {
    const jobs = this.heldClaims();
    try {
      const res = await this.miner.post<HeartbeatResponse>(
        "/v1/miners/heartbeat",
        { status: this.stopping ? "draining" : "online", jobs },
        { signal: this.heartbeatStop.signal },
      );
      const body = res.body;
      if (body.heartbeat_interval_seconds) this.heartbeatMs = body.heartbeat_interval_seconds * 1000;
      const orders =
        body.stop ??
        (body.stop_claim_tokens ?? []).map((t) => ({ job_id: "", claim_token: t, reason: "stop" }));
      this.applyStops(orders, "heartbeat", "http");
      this.log("debug", "miner.heartbeat", { transport: "http", jobs: jobs.length, stop: orders.length });
      return undefined;
    } catch (err) {
      if (this.heartbeatStop.signal.aborted) return err;
      this.log("warn", "heartbeat.error", { transport: "http", error: errText(err) });
      return err;
    }
  }

  /** One heartbeat over the doorbell, answered on the socket; like `heartbeat()`, never throws. */
  private async wsHeartbeat(): Promise<unknown> {
    const jobs = this.heldClaims();
    const bell = this.doorbell;
    try {
      if (!bell) throw new Error("no doorbell");
      const reply = await bell.heartbeat({ status: this.stopping ? "draining" : "online", jobs });
      this.wsHintMs = seconds(reply.heartbeat_interval_seconds, Number.POSITIVE_INFINITY) * 1000;
      this.applyStops(reply.stop ?? [], "heartbeat", "ws");
      if (reply.work && !this.stopping) this.ring();
      this.log("debug", "miner.heartbeat", {
        transport: "ws",
        jobs: jobs.length,
        stop: reply.stop?.length ?? 0,
      });
      return undefined;
    } catch (err) {
      // A drop fails the heartbeat too; the fall-back (the `down` event) sends the next one over HTTP at once.
      if (this.heartbeatStop.signal.aborted) return err;
      this.log("warn", "heartbeat.error", { transport: "ws", error: errText(err) });
      return err;
    }
  }

  // ---- the doorbell ----

  /** Opens the doorbell; its events move the agent between the socket and the HTTP long-poll. */
  private openDoorbell(): void {
    this.mode = "connecting";
    const bell = new DoorbellClient({
      url: () => this.doorbellUrl(),
      key: this.opts.key,
      minerId: () => this.minerId,
      userAgent: "coord-miner/0.1",
      backoff: this.opts.reconnect,
    });
    bell.on("up", (welcome, info) => {
      this.wsIdleMs = seconds(welcome.heartbeat_interval_seconds, 60) * 1000;
      this.wsBusyMs = seconds(welcome.busy_heartbeat_interval_seconds, 10) * 1000;
      this.wsHintMs = Number.POSITIVE_INFINITY;
      // The busy interval is the HTTP heartbeat's: should the socket drop, the fallback beats at the right pace.
      this.heartbeatMs = this.wsBusyMs;
      this.mode = "ws";
      const fields = { transport: "ws", connection_id: welcome.connection_id, held: this.held.size };
      if (info.reconnect)
        this.log("info", "transport.reconnected", {
          ...fields,
          attempts: info.attempts,
          down_ms: Date.now() - this.downSince,
        });
      else
        this.log("info", "transport.connected", {
          ...fields,
          url: this.opts.doorbellUrl ?? this.doorbellAddress,
        });
      // A heartbeat over the socket at once: it vouches for the held jobs, fetches pending stops, and from then on
      // the coordinator judges the miner's silence on the socket's idle interval rather than the HTTP one.
      this.armBeat(0);
      if (welcome.work) this.pollWanted = true;
      this.wake();
    });
    bell.on("down", (info) => {
      this.toHttp();
      this.log("warn", "transport.fell_back", {
        transport: "http",
        reason: info.reason,
        close_code: info.code ?? null,
        up_ms: info.upMs ?? null,
        retry_in_ms: info.retryInMs,
        held: this.held.size,
      });
    });
    bell.on("retry", (info) =>
      this.log("info", "transport.reconnect_failed", {
        transport: "http",
        reason: info.reason,
        attempt: info.attempt,
        retry_in_ms: info.retryInMs,
      }),
    );
    bell.on("refused", (err) => {
      // Not retried. If the key itself is refused, the HTTP calls that follow meet the same refusal and end the
      // agent as they always did (401/403/404 are fatal there); if only the socket is (a proxy, a coordinator
      // without a doorbell), HTTP carries on alone.
      this.toHttp();
      this.log("error", "transport.refused", {
        transport: "http",
        status: err.status,
        code: err.code ?? null,
        detail: err.message,
        note: "the doorbell is not retried; long-polling and heartbeating over HTTP",
      });
    });
    bell.on("message", (message) => this.onDoorbellMessage(message));
    this.doorbell = bell;
    bell.start();
  }

  /** The socket is down (or never came up): the HTTP long-poll and heartbeats take over at once. */
  private toHttp(): void {
    this.mode = "http";
    this.downSince = Date.now();
    this.pollWanted = false;
    // The held jobs' leases now ride on HTTP heartbeats: send one right away (one may have died with the socket).
    this.armBeat(0);
    this.wake();
  }

  private onDoorbellMessage(message: CoordinatorMessage): void {
    switch (message.type) {
      case "work":
        this.log("debug", "doorbell.ring", { service: message.service, job_id: message.job_id });
        if (!this.stopping) this.ring();
        return;
      case "stop":
        this.applyStops(message.stop ?? [], "push", "ws");
        return;
      case "heartbeat":
        // An answer nobody waited for any more (its wait timed out): its stop orders still count.
        this.applyStops(message.stop ?? [], "heartbeat", "ws");
        if (message.work && !this.stopping) this.ring();
        return;
      case "error":
        this.log("warn", "transport.error", { transport: "ws", code: message.code, detail: message.detail });
        return;
    }
  }

  /**
   * Where the doorbell is. The coordinator names it: a plain `GET /v1/miners/connect` answers 426 with `url` (on
   * AWS the socket lives on a WebSocket API of its own); an answer without one means this server's own path with
   * the ws scheme. Asked once; a 404 means a coordinator without a doorbell.
   */
  private async doorbellUrl(): Promise<string> {
    if (this.opts.doorbellUrl) return this.opts.doorbellUrl;
    if (this.doorbellAddress) return this.doorbellAddress;
    let named: unknown;
    try {
      const res = await this.miner.request<{ url?: unknown }>("GET", "/v1/miners/connect", {
        accept: [426],
        retries429: 0,
      });
      named = res.body?.url;
    } catch (err) {
      if (err instanceof ApiError && DoorbellRefused.isFinal(err.status)) {
        const detail = err.status === 404 ? `this coordinator has no doorbell (${err.message})` : err.message;
        throw new DoorbellRefused(err.status, err.code, detail);
      }
      throw err;
    }
    this.doorbellAddress =
      typeof named === "string" && /^wss?:\/\//.test(named)
        ? named
        : `${this.api.url.replace(/^http/, "ws")}/v1/miners/connect`;
    return this.doorbellAddress;
  }
}

/** Runs the reference miner until `signal` aborts (or `once` / `maxJobs` is satisfied); resolves after draining. */
export function runMiner(opts: MinerOptions): Promise<MinerSummary> {
  return new MinerAgent(opts).run();
}

/**
 * The reference miner agent: registers, long-polls for work, runs claimed jobs concurrently through executors,
 * heartbeats the jobs it holds (renewing their leases) and abandons any job the coordinator names to stop. On stop
 * (a signal, `once`, `maxJobs`) it drains: tells the coordinator, takes no new work, finishes what it holds.
 *
 * It speaks only the public HTTP API (docs/cli.md has the protocol walk-through), so it doubles as the reference
 * for anyone writing a miner in another language.
 */
import { Api, ApiError, sleep } from "../http.ts";
import { defaultExecutors, type Executor, JobFailure } from "./executors.ts";

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
  /** Further registration fields (cuda_version, models, pool, accepts_public, public_key...). */
  registration?: Record<string, unknown>;
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
}

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

/** A call the agent cannot recover from by retrying: the key, the account kind or the miner is wrong. */
function fatal(err: unknown): boolean {
  return err instanceof ApiError && [400, 401, 403, 404, 422].includes(err.status);
}

type Outcome = { ok: true; body: Record<string, unknown> } | { ok: false; stale: boolean; error: unknown };

export class MinerAgent {
  minerId = "";
  private readonly opts: MinerOptions;
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
  private slotFreed: (() => void) | undefined;

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
    const reg = await this.api.post<{ miner_id: string; status: string }>("/v1/miners/register", {
      name: this.opts.name,
      services: this.opts.services,
      concurrency: this.concurrency,
      ...(this.opts.gpus?.length ? { gpus: this.opts.gpus } : {}),
      ...(this.opts.region ? { region: this.opts.region } : {}),
      ...(this.opts.prices && Object.keys(this.opts.prices).length ? { prices: this.opts.prices } : {}),
      ...this.opts.registration,
    });
    this.minerId = reg.body.miner_id;
    this.miner = this.api.with({ "x-miner-id": this.minerId });
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
    const heartbeats = this.heartbeatLoop();
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
      await heartbeats;
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
    this.pauseStop.abort();
    this.slotFreed?.();
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

  private async pollLoop() {
    let errors = 0;
    const waitSeconds = Math.min(this.opts.waitSeconds ?? 20, 20);
    while (!this.stopping) {
      const budget =
        this.opts.maxJobs === undefined ? Number.POSITIVE_INFINITY : this.opts.maxJobs - this.counts.claimed;
      if (budget <= 0) return;
      const free = this.concurrency - this.held.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.slotFreed = resolve;
        });
        this.slotFreed = undefined;
        continue;
      }
      let res: { status: number; headers: Headers; body: { jobs?: Assignment[] } };
      try {
        res = await this.miner.request("POST", "/v1/miners/poll", {
          body: { wait_seconds: waitSeconds, max_jobs: Math.min(free, budget) },
          signal: this.pollStop.signal,
          retries429: 0,
        });
      } catch (err) {
        if (this.pollStop.signal.aborted) return;
        if (fatal(err)) throw err;
        errors++;
        const retryAfter = err instanceof ApiError ? Number(err.problem.retry_after_seconds) : Number.NaN;
        const delay = Number.isFinite(retryAfter) ? jitter(retryAfter * 1000) : backoff(errors);
        this.log("warn", "poll.error", { error: errText(err), retry_in_ms: delay });
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
        if (await this.revive()) continue;
      } else if (minerStatus === "banned" && !this.warnedBanned) {
        this.warnedBanned = true;
        this.log("error", "miner.banned", { miner_id: this.minerId, hint: res.headers.get("coord-hint") });
      }
      const jobs = res.status === 200 ? (res.body.jobs ?? []) : [];
      for (const job of jobs) this.launch(job);
      if (this.opts.once) return;
      if (jobs.length === 0) {
        const hint = Number(res.headers.get("retry-after-ms"));
        const delay = jitter(Number.isFinite(hint) && hint > 0 ? hint : 1000);
        this.log("debug", "poll.empty", { retry_in_ms: delay });
        await this.pause(delay);
      }
    }
  }

  private launch(job: Assignment) {
    this.counts.claimed++;
    if (job.heartbeat_interval_seconds) this.heartbeatMs = job.heartbeat_interval_seconds * 1000;
    this.log("info", "job.claimed", { job_id: job.job_id, service: job.service, attempt: job.attempt });
    const controller = new AbortController();
    const entry: Held = { job, controller, done: Promise.resolve() };
    this.held.set(job.job_id, entry);
    entry.done = this.execute(job, controller)
      .catch((err) => this.log("error", "job.error", { job_id: job.job_id, error: errText(err) }))
      .finally(() => {
        this.held.delete(job.job_id);
        this.slotFreed?.();
      });
  }

  /** A miner report with retries on transient trouble (network, 5xx, 429). 409 means the claim is stale. */
  private async report(job: Assignment, action: string, body: Record<string, unknown>): Promise<Outcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.miner.post(`/v1/miners/${job.job_id}/${action}`, {
          claim_token: job.claim_token,
          ...body,
        });
        return { ok: true, body: res.body };
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) return { ok: false, stale: true, error: err };
        if ((err instanceof ApiError && err.status < 500) || attempt >= 5)
          return { ok: false, stale: false, error: err };
        await sleep(backoff(attempt));
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

  private async fail(job: Assignment, code: string, message: string, retryable: boolean) {
    const out = await this.report(job, "fail", { error_code: code, error_message: message, retryable });
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
      return this.fail(job, "unsupported_service", `this miner has no executor for '${job.service}'`, false);
    }
    let output: unknown;
    try {
      output = await executor({
        jobId: job.job_id,
        service: job.service,
        input: job.input,
        attempt: job.attempt,
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
      if (err instanceof JobFailure) return this.fail(job, err.code, err.message, err.retryable);
      return this.fail(job, "executor_error", errText(err).slice(0, 4000), true);
    }
    // Stopped while finishing: the coordinator no longer wants this result.
    if (signal.aborted) return this.abandon(job, signal.reason);
    const out = await this.report(job, "result", { output: output ?? null });
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
      return this.fail(job, "invalid_output", out.error.message, false);
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

  private async heartbeatLoop() {
    const stopSignal = this.heartbeatStop.signal;
    while (!stopSignal.aborted) {
      const sent = this.heartbeat();
      this.heartbeatInFlight = sent;
      await sent;
      await sleep(this.heartbeatMs, stopSignal).catch(() => {});
    }
  }

  /** One heartbeat; resolves with the error when it failed (logged here), else undefined. */
  private async heartbeat(): Promise<unknown> {
    const jobs = [...this.held.values()].map((h) => ({
      job_id: h.job.job_id,
      claim_token: h.job.claim_token,
    }));
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
      for (const order of orders) {
        const held = [...this.held.values()].find((h) => h.job.claim_token === order.claim_token);
        if (!held || held.controller.signal.aborted) continue;
        this.log("info", "job.stop", { job_id: held.job.job_id, reason: order.reason });
        held.controller.abort(new StopOrder(order.reason));
      }
      this.log("debug", "miner.heartbeat", { jobs: jobs.length, stop: orders.length });
      return undefined;
    } catch (err) {
      if (this.heartbeatStop.signal.aborted) return err;
      this.log("warn", "heartbeat.error", { error: errText(err) });
      return err;
    }
  }
}

/** Runs the reference miner until `signal` aborts (or `once` / `maxJobs` is satisfied); resolves after draining. */
export function runMiner(opts: MinerOptions): Promise<MinerSummary> {
  return new MinerAgent(opts).run();
}

import type { JobArtifacts } from "./artifacts.ts";

/**
 * Executors: the code that actually runs a job of one service on this machine. The reference miner ships one,
 * `echo` (no GPU needed). Real GPU executors (whisper, stable-diffusion, llm, ffmpeg, blender...) plug in here:
 * write a function of type `Executor` and pass it to `runMiner({ executors: { ...defaultExecutors, whisper } })`.
 *
 * The contract:
 * - resolve with the job's output (JSON, at most 256 KB inline);
 * - throw `JobFailure` to report a failure with a stable code (retryable or not);
 * - watch `ctx.signal`: when it aborts (the client cancelled, the lease moved on, the timeout passed) stop work
 *   promptly and throw (any error will do; the agent sends neither a result nor a failure for an aborted job);
 * - call `ctx.progress(fraction, message)` from time to time: it renews the lease and shows up on the job.
 */

export interface ExecutionContext {
  jobId: string;
  service: string;
  input: unknown;
  attempt: number;
  /** When the coordinator times the job out (ISO 8601), if the claim said: work past it is wasted. */
  timeoutAt?: string;
  /** The input's artifacts to download and the output slots to upload to (cli/miner/artifacts.ts). */
  artifacts: JobArtifacts;
  /** Aborts when the coordinator says to stop this job. */
  signal: AbortSignal;
  /** Reports progress (0..1). Never throws; a stale claim aborts `signal` instead. */
  progress(fraction: number, message?: string): Promise<void>;
  log(event: string, fields?: Record<string, unknown>): void;
}

export type Executor = (ctx: ExecutionContext) => Promise<unknown>;

/**
 * An executor's answer with what it used (token counts, media seconds...), sent with the result as `usage`:
 * recorded on the job, never billed (the coordinator meters the work itself). A plain value is the output alone.
 */
export class Completed {
  constructor(
    readonly output: unknown,
    readonly usage: Record<string, number> | undefined,
  ) {}
}

/** A failure the executor reports to the coordinator: `POST /v1/miners/{job_id}/fail`. */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = "JobFailure";
  }
}

/** Sleeps `ms`, rejecting with the signal's reason if it aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * `echo`: output = input. `input.sleep_ms` waits that long first (progress every second); `input.fail`
 * ({code, message, retryable?}) reports that failure instead of a result.
 */
export const echo: Executor = async (ctx) => {
  const input = isRecord(ctx.input) ? ctx.input : {};
  const sleepMs = typeof input.sleep_ms === "number" && input.sleep_ms > 0 ? input.sleep_ms : 0;
  // Whole seconds, then the rest: one progress report a second, a fixed number of them (timers that fire a
  // millisecond early must not add one).
  const steps = Math.ceil(sleepMs / 1000);
  for (let step = 1; step <= steps; step++) {
    await abortableSleep(Math.min(1000, sleepMs - (step - 1) * 1000), ctx.signal);
    const slept = Math.min(sleepMs, step * 1000);
    if (step < steps)
      await ctx.progress(Number((slept / sleepMs).toFixed(3)), `slept ${slept} of ${sleepMs} ms`);
  }
  ctx.signal.throwIfAborted();
  if (isRecord(input.fail)) {
    const f = input.fail;
    throw new JobFailure(
      typeof f.code === "string" ? f.code : "echo_failure",
      typeof f.message === "string" ? f.message : "echo was asked to fail",
      f.retryable === true,
    );
  }
  return ctx.input;
};

/** The executors the reference miner runs out of the box. */
export const defaultExecutors: Readonly<Record<string, Executor>> = { echo };

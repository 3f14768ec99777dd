/**
 * The heartbeat watchdog: a worker thread that keeps the held jobs' leases alive while the agent's own event loop is
 * blocked. The agent heartbeats on a timer of its own, but a timer cannot fire while an executor runs CPU-bound
 * JavaScript on the same thread; without this, a job that computes for longer than its lease would be taken away
 * from the miner that is doing it.
 *
 * The agent ticks a shared clock (a SharedArrayBuffer) a few times a second and tells the worker which claims it
 * holds. The worker, on its own event loop, watches the clock: when the agent has not ticked for `stallMs` it sends
 * the heartbeat itself over HTTP (`POST /v1/miners/heartbeat`, the same call the agent makes) every heartbeat
 * interval until the agent ticks again. Stop orders in its answers are handed back to the agent, which applies them
 * as soon as its loop is free. Idle or healthy, the worker sends nothing.
 *
 * The worker's code is an inline script (plain JavaScript, `eval: true`), so that it runs the same under tsx, a
 * bundle or plain Node, with no loader of its own.
 */
import { Worker } from "node:worker_threads";

export interface WatchdogOptions {
  url: string;
  key: string;
  minerId: string;
  userAgent: string;
  heartbeatMs: number;
  /** How long the agent's loop may be silent before the worker takes over (default: a third of the interval). */
  stallMs?: number;
  onStop(orders: { claim_token: string; reason: string }[]): void;
  onLog(event: string, fields: Record<string, unknown>): void;
}

export interface Claim {
  job_id: string;
  claim_token: string;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const clock = new BigInt64Array(workerData.clock);
let claims = [];
let status = "online";
let heartbeatMs = workerData.heartbeatMs;
let lastBeat = 0;
let sending = false;
parentPort.on("message", (m) => {
  if (m.claims) claims = m.claims;
  if (m.status) status = m.status;
  if (m.heartbeatMs) heartbeatMs = m.heartbeatMs;
  if (m.stop) { clearInterval(timer); parentPort.close(); }
});
async function beat(stalledMs) {
  sending = true;
  lastBeat = Date.now();
  try {
    const res = await fetch(workerData.url + "/v1/miners/heartbeat", {
      method: "POST",
      headers: {
        authorization: "Bearer " + workerData.key,
        "x-miner-id": workerData.minerId,
        "content-type": "application/json",
        "user-agent": workerData.userAgent + " (watchdog)",
      },
      body: JSON.stringify({ status, jobs: claims }),
      signal: AbortSignal.timeout(Math.max(1000, heartbeatMs)),
    });
    const body = await res.json().catch(() => ({}));
    parentPort.postMessage({ beat: { status: res.status, jobs: claims.length, stalled_ms: stalledMs, stop: body.stop || [] } });
  } catch (err) {
    parentPort.postMessage({ beat: { error: String(err && err.message || err), jobs: claims.length, stalled_ms: stalledMs, stop: [] } });
  } finally {
    sending = false;
  }
}
const timer = setInterval(() => {
  const stalledMs = Date.now() - Number(Atomics.load(clock, 0));
  // A third of the interval by default: the pace follows the coordinator's answers, so the threshold does too.
  const stallMs = workerData.stallMs || Math.max(300, Math.round(heartbeatMs / 3));
  if (claims.length === 0 || sending || stalledMs < stallMs) return;
  if (Date.now() - lastBeat < heartbeatMs) return;
  void beat(stalledMs);
}, 100);
`;

/** Starts the watchdog; `tick()` from the agent's loop, `hold()` on every change of what it holds. */
export class HeartbeatWatchdog {
  private readonly worker: Worker;
  private readonly clock = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly ticker: NodeJS.Timeout;

  constructor(opts: WatchdogOptions) {
    this.tick();
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        clock: this.clock.buffer,
        url: opts.url,
        key: opts.key,
        minerId: opts.minerId,
        userAgent: opts.userAgent,
        heartbeatMs: opts.heartbeatMs,
        stallMs: opts.stallMs ?? 0,
      },
    });
    // Neither the worker nor the ticker keeps the process alive on its own.
    this.worker.unref();
    this.worker.on("message", (m: { beat?: Record<string, unknown> & { stop: never[] } }) => {
      if (!m.beat) return;
      const { stop, ...fields } = m.beat;
      opts.onLog("miner.watchdog_heartbeat", { ...fields, stop: stop.length });
      if (stop.length) opts.onStop(stop);
    });
    this.worker.on("error", (err) => opts.onLog("miner.watchdog_error", { error: String(err) }));
    this.ticker = setInterval(() => this.tick(), 100);
    this.ticker.unref();
  }

  private tick() {
    Atomics.store(this.clock, 0, BigInt(Date.now()));
  }

  /** What the agent holds now, how often its heartbeats go, and what they say. */
  hold(claims: Claim[], heartbeatMs: number, status: "online" | "draining"): void {
    this.worker.postMessage({ claims, heartbeatMs, status });
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    await this.worker.terminate();
  }
}

/**
 * The miner's end of the doorbell: one WebSocket to the coordinator that carries heartbeats (and their answers),
 * work rings and pushed stop orders. This module owns the socket and nothing else: it connects (`hello`, then waits
 * for the `welcome`), turns frames into events, answers `heartbeat()` with the coordinator's reply, and reconnects
 * in the background after a drop. What the agent does meanwhile (fall back to the HTTP long-poll, claim on rings,
 * abort stopped jobs) is the agent's business (cli/miner/agent.ts): a ring is only a hint, never a claim.
 *
 * Like the agent it speaks only the public protocol, so its message types are spelled out here rather than taken
 * from the server's code.
 */
import { EventEmitter } from "node:events";
import { WebSocket } from "ws";

export interface StopOrderMessage {
  job_id: string;
  claim_token: string;
  reason: string;
}

export interface Welcome {
  type: "welcome";
  miner_id: string;
  connection_id: string;
  /** Heartbeat this often while holding no job... */
  heartbeat_interval_seconds: number;
  /** ...and this often while holding some (the HTTP heartbeat's interval). */
  busy_heartbeat_interval_seconds: number;
  lease_seconds: number;
  /** Work may already be waiting: poll now. */
  work: boolean;
}

export interface HeartbeatReply {
  type: "heartbeat";
  status: string;
  held: { job_id: string; claim_token: string }[];
  lease_expires_at: string;
  stop: StopOrderMessage[];
  heartbeat_interval_seconds: number;
  work: boolean;
}

/** "Work may be waiting for `service`": claim it through `POST /v1/miners/poll`, as for any poll. */
export interface WorkRing {
  type: "work";
  service: string;
  job_id: string;
}

/** Drop these jobs now (cancelled, timed out): abort them and report nothing. */
export interface StopPush {
  type: "stop";
  stop: StopOrderMessage[];
}

export interface ErrorMessage {
  type: "error";
  code: string;
  detail: string;
  errors?: { path: string; message: string }[];
}

export type CoordinatorMessage = Welcome | HeartbeatReply | WorkRing | StopPush | ErrorMessage;

export interface HeartbeatFrame {
  status?: "online" | "draining";
  jobs?: { job_id: string; claim_token: string }[];
}

/** The coordinator's close codes: the key was refused at a later frame; the miner no longer exists. */
export const CLOSE_KEY_REFUSED = 4401;
export const CLOSE_MINER_GONE = 4404;

/** Refusals a retry cannot fix (the key, its kind, the miner, the request itself): the doorbell stops trying. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 422]);

/** The doorbell was refused for good (an upgrade answered 401/403/404..., or a coordinator without one). */
export class DoorbellRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    detail: string,
  ) {
    super(detail);
    this.name = "DoorbellRefused";
  }

  static isFinal(status: number): boolean {
    return FINAL_STATUSES.has(status);
  }
}

export interface Backoff {
  baseMs: number;
  capMs: number;
  /** A connection that stayed up this long resets the backoff (a flapping one keeps backing off). */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, capMs: 30_000, resetAfterMs: 60_000 };

/**
 * Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(failures-1))]. Full jitter spreads a fleet
 * that lost its sockets at the same moment (a deploy, a network blip) over the whole window instead of reconnecting
 * in waves.
 */
export function reconnectDelay(
  failures: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(random() * ceiling);
}

export interface DoorbellOptions {
  /** Where the socket is; asked on every attempt (it may look the address up; a `DoorbellRefused` ends the tries). */
  url: () => Promise<string>;
  key: string;
  minerId: () => string;
  userAgent?: string;
  backoff?: Partial<Backoff>;
  /** How long the upgrade, and then the welcome, may take before the attempt counts as failed. */
  openTimeoutMs?: number;
  /** How long a heartbeat may wait for its answer before the socket is judged dead (a cut cable sends no FIN). */
  replyTimeoutMs?: number;
  random?: () => number;
}

export interface DoorbellEvents {
  /** Connected and welcomed. `reconnect`: it had been up before; `attempts`: tries since the last connection. */
  up: [welcome: Welcome, info: { reconnect: boolean; attempts: number }];
  /** The socket dropped, or the very first attempt failed: the agent must fall back. A retry is scheduled. */
  down: [info: { reason: string; code?: number; upMs?: number; retryInMs: number }];
  /** Another attempt failed while already down; the next one is scheduled. */
  retry: [info: { reason: string; attempt: number; retryInMs: number }];
  /** Refused for good: no more attempts. */
  refused: [err: DoorbellRefused];
  /** Rings, stop pushes, and error frames that answer no pending heartbeat. */
  message: [message: WorkRing | StopPush | ErrorMessage | HeartbeatReply];
}

type State = "idle" | "connecting" | "up" | "down" | "refused" | "closed";

interface Pending {
  resolve(reply: HeartbeatReply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const CLOSE_REASONS: Record<number, string> = {
  1000: "closed by the coordinator",
  1001: "the coordinator went away",
  1006: "connection lost",
  [CLOSE_KEY_REFUSED]: "the key was refused",
  [CLOSE_MINER_GONE]: "the miner is gone",
};

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class DoorbellClient extends EventEmitter<DoorbellEvents> {
  private readonly opts: DoorbellOptions;
  private readonly backoff: Backoff;
  private state: State = "idle";
  private ws: WebSocket | undefined;
  private upAt = 0;
  private everUp = false;
  /** Failed attempts (and short-lived connections) since the backoff was last reset. */
  private failures = 0;
  /** Attempts since the last successful connection (for the log). */
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pending: Pending | undefined;

  constructor(opts: DoorbellOptions) {
    super();
    this.opts = opts;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  get connected(): boolean {
    return this.state === "up";
  }

  /** Starts connecting; from here on it reconnects by itself until `close()` or a final refusal. */
  start(): void {
    if (this.state !== "idle") return;
    this.state = "connecting";
    void this.attempt();
  }

  /** Closes the socket for good (the agent stopped): no more events, no reconnects. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearTimeout(this.retryTimer);
    this.failPending(new Error("the doorbell was closed"));
    const ws = this.ws;
    this.ws = undefined;
    if (!ws) return;
    if (ws.readyState !== WebSocket.OPEN) {
      ws.terminate();
      return;
    }
    ws.close(1000, "miner stopped");
    // A coordinator that never answers the close would hold the process open for ws's 30 s: a second is plenty.
    const timer = setTimeout(() => ws.terminate(), 1000);
    timer.unref?.();
    ws.once("close", () => clearTimeout(timer));
  }

  /** Sends one heartbeat and resolves with its answer; rejects if the socket is down, drops, or stays silent. */
  heartbeat(frame: HeartbeatFrame): Promise<HeartbeatReply> {
    const ws = this.ws;
    if (this.state !== "up" || !ws) return Promise.reject(new Error("the doorbell is not connected"));
    if (this.pending) return Promise.reject(new Error("a heartbeat is already waiting for its answer"));
    return new Promise<HeartbeatReply>((resolve, reject) => {
      const timeoutMs = this.opts.replyTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        // An open socket that answers nothing is as good as gone: drop it, so that the agent falls back.
        this.failPending(new Error(`no heartbeat answer within ${timeoutMs} ms`));
        ws.terminate();
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      ws.send(JSON.stringify({ type: "heartbeat", ...frame }), (err) => {
        if (err) this.failPending(err);
      });
    });
  }

  private failPending(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.reject(err);
  }

  private get closed(): boolean {
    return this.state === "closed";
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    this.attempts++;
    let url: string;
    try {
      url = await this.opts.url();
    } catch (err) {
      if (err instanceof DoorbellRefused) return this.refuse(err);
      return this.failed(errText(err));
    }
    // close() may have come while the address was being looked up.
    if (this.closed) return;
    this.open(url);
  }

  private open(url: string): void {
    // Short: until the first attempt settles the agent does not poll at all (it has no transport yet).
    const openTimeoutMs = this.opts.openTimeoutMs ?? 5000;
    const ws = new WebSocket(url, {
      headers: {
        authorization: `Bearer ${this.opts.key}`,
        "x-miner-id": this.opts.minerId(),
        "user-agent": this.opts.userAgent ?? "coord-miner/0.1",
      },
      handshakeTimeout: openTimeoutMs,
      maxPayload: 1024 * 1024,
      // Small JSON frames: compression would cost CPU and buy nothing.
      perMessageDeflate: false,
    });
    this.ws = ws;
    let welcomed = false;
    /** Rings and stops can come between the upgrade and the welcome (the socket is registered first): kept. */
    const early: CoordinatorMessage[] = [];
    let lastError: string | undefined;
    let refusal: DoorbellRefused | undefined;
    let welcomeTimer: NodeJS.Timeout | undefined;

    ws.on("unexpected-response", (_req, res) => {
      // A refused upgrade is an ordinary HTTP answer (problem+json): read it, then let the socket close.
      const status = res.statusCode ?? 0;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (text.length < 16_384) text += chunk;
      });
      res.on("end", () => {
        let problem: { code?: unknown; detail?: unknown } = {};
        try {
          problem = JSON.parse(text) as typeof problem;
        } catch {
          // not problem+json (a proxy's page, say): the status says enough
        }
        const code = typeof problem.code === "string" ? problem.code : undefined;
        const detail =
          typeof problem.detail === "string" ? problem.detail : `the upgrade was answered ${status}`;
        if (DoorbellRefused.isFinal(status)) refusal = new DoorbellRefused(status, code, detail);
        else lastError = `the upgrade was answered ${status}${code ? ` (${code})` : ""}: ${detail}`;
        ws.terminate();
      });
    });

    ws.on("open", () => {
      ws.send(JSON.stringify({ type: "hello" }));
      welcomeTimer = setTimeout(() => {
        lastError = `no welcome within ${openTimeoutMs} ms`;
        ws.terminate();
      }, openTimeoutMs);
    });

    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let message: CoordinatorMessage;
      try {
        message = JSON.parse(data.toString()) as CoordinatorMessage;
      } catch {
        return; // not ours to answer: the coordinator only sends JSON
      }
      if (!welcomed) {
        if (message.type === "welcome") {
          welcomed = true;
          clearTimeout(welcomeTimer);
          this.welcomed(message);
          for (const m of early.splice(0)) if (this.ws === ws) this.dispatch(m);
        } else if (message.type === "error") {
          lastError = `the hello was refused: ${message.code}: ${message.detail}`;
          ws.terminate();
        } else if (early.length < 100) early.push(message);
        return;
      }
      this.dispatch(message);
    });

    ws.on("error", (err) => {
      lastError ??= errText(err);
    });

    ws.on("close", (code, reasonBuf) => {
      clearTimeout(welcomeTimer);
      if (this.ws !== ws || this.state === "closed") return;
      this.ws = undefined;
      if (refusal) return this.refuse(refusal);
      if (!welcomed) return this.failed(lastError ?? `closed before the welcome (${code})`);
      const reason = reasonBuf.toString() || CLOSE_REASONS[code] || `closed (${code})`;
      this.dropped(reason, code);
    });
  }

  private welcomed(welcome: Welcome): void {
    const reconnect = this.everUp;
    const attempts = this.attempts;
    this.state = "up";
    this.everUp = true;
    this.upAt = Date.now();
    this.attempts = 0;
    this.emit("up", welcome, { reconnect, attempts });
  }

  private dispatch(message: CoordinatorMessage): void {
    if (message.type === "heartbeat" && this.pending) {
      const p = this.pending;
      this.pending = undefined;
      clearTimeout(p.timer);
      p.resolve(message);
      return;
    }
    if (message.type === "error" && this.pending) {
      // The coordinator answers a frame it refused with an error frame: that is this heartbeat's answer.
      this.failPending(new Error(`${message.code}: ${message.detail}`));
      return;
    }
    if (message.type === "welcome") return;
    this.emit("message", message);
  }

  /** An established connection dropped. */
  private dropped(reason: string, code: number): void {
    this.failPending(new Error(`the doorbell dropped: ${reason}`));
    const upMs = Date.now() - this.upAt;
    if (upMs >= this.backoff.resetAfterMs) this.failures = 0;
    this.failures++;
    const retryInMs = reconnectDelay(this.failures, this.backoff, this.opts.random);
    this.state = "down";
    this.schedule(retryInMs);
    this.emit("down", { reason, code, upMs, retryInMs });
  }

  /** An attempt failed before the welcome. */
  private failed(reason: string): void {
    if (this.state === "closed") return;
    this.failures++;
    const retryInMs = reconnectDelay(this.failures, this.backoff, this.opts.random);
    const first = this.state === "connecting";
    this.state = "down";
    this.schedule(retryInMs);
    if (first) this.emit("down", { reason, retryInMs });
    else this.emit("retry", { reason, attempt: this.attempts, retryInMs });
  }

  private refuse(err: DoorbellRefused): void {
    if (this.state === "closed") return;
    this.state = "refused";
    this.emit("refused", err);
  }

  private schedule(ms: number): void {
    clearTimeout(this.retryTimer);
    // Unref'd: a pending reconnect never keeps a stopping agent's process alive.
    this.retryTimer = setTimeout(() => void this.attempt(), ms);
    this.retryTimer.unref?.();
  }
}

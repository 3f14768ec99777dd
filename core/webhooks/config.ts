/**
 * Webhook tunables, read from the environment on every use (tests and the local stack set them at start-up).
 * `COORD_WEBHOOK_ALLOW_PRIVATE` and `COORD_WEBHOOK_RETRY_SCHEDULE` are fixed names (docs/webhooks.md lists all).
 */

/**
 * Seconds between attempts: 5 s, 30 s, 5 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h. Ten attempts over about 23.6 hours:
 * a receiver that is down for most of a day still gets every message.
 */
export const DEFAULT_RETRY_SCHEDULE = [5, 30, 300, 1800, 3600, 7200, 14_400, 28_800, 28_800];

const MAX_DELAY_SECONDS = 86_400;

function number(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Parses `COORD_WEBHOOK_RETRY_SCHEDULE`-style text: seconds, comma-separated, each from 0 to 86400. */
export function parseRetrySchedule(raw: string): number[] {
  const parts = raw.split(",").map((p) => p.trim());
  const out = parts.map(Number);
  if (
    raw.trim() === "" ||
    parts.some((p) => p === "") ||
    out.some((n) => !Number.isFinite(n) || n < 0 || n > MAX_DELAY_SECONDS)
  ) {
    throw new Error(
      `COORD_WEBHOOK_RETRY_SCHEDULE must be seconds from 0 to ${MAX_DELAY_SECONDS}, comma-separated (e.g. "5,30,300"), got ${JSON.stringify(raw)}`,
    );
  }
  return out;
}

export const webhookConfig = {
  /** Let deliveries reach loopback and private addresses (local development only). Link-local and cloud metadata
   * addresses stay refused regardless. */
  get allowPrivate(): boolean {
    return process.env.COORD_WEBHOOK_ALLOW_PRIVATE === "1";
  },
  /** Delays before the 2nd, 3rd... attempt; its length + 1 is the number of attempts a message gets. */
  get retrySchedule(): number[] {
    const raw = process.env.COORD_WEBHOOK_RETRY_SCHEDULE;
    return raw === undefined || raw.trim() === "" ? DEFAULT_RETRY_SCHEDULE : parseRetrySchedule(raw);
  },
  /** One attempt's deadline: connect, send and read the status line (ms). */
  get timeoutMs(): number {
    return number("COORD_WEBHOOK_TIMEOUT_MS", 10_000, 100, 30_000);
  },
  /** An endpoint is disabled after this many messages in a row failed every attempt (no success in between). */
  get disableAfter(): number {
    return number("COORD_WEBHOOK_DISABLE_AFTER", 5, 1, 10_000);
  },
  /** At most one `job.progress.v1` delivery per job per this many ms. */
  get progressIntervalMs(): number {
    return number("COORD_WEBHOOK_PROGRESS_INTERVAL_MS", 500, 0, 3_600_000);
  },
  /** How long the previous secret stays valid after a rotation unless the request says otherwise. */
  get rotationOverlapSeconds(): number {
    return number("COORD_WEBHOOK_ROTATION_OVERLAP_SECONDS", 86_400, 0, 7 * 86_400);
  },
  /** Endpoints per account. */
  get maxEndpoints(): number {
    return number("COORD_WEBHOOK_MAX_ENDPOINTS", 20, 1, 1000);
  },
};

/** The delay before attempt `next` (2, 3, ...) with +-20% jitter, or undefined when the schedule is exhausted. */
export function retryDelaySeconds(next: number, schedule = webhookConfig.retrySchedule, rand = Math.random) {
  const base = schedule[next - 2];
  if (base === undefined) return undefined;
  return Math.max(0, base * (0.8 + 0.4 * rand()));
}

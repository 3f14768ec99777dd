/**
 * How `coord` shows a job it follows (`jobs submit --wait`, `jobs get --wait`, `jobs watch`), on stderr:
 * - on a terminal, one line redrawn in place: a spinner, the status, a progress bar and percentage, the miner's
 *   progress message and the time elapsed (`renderFrame`), redrawn ten times a second and whenever the job changes;
 * - elsewhere (a pipe, a log file, CI), a plain line each time the status, the whole percentage or the message
 *   changes (`plainLine`, `changed`), nothing in between;
 * - with `--json`, nothing: stdout carries the JSON.
 * The rendering is pure (a snapshot and a time in, a string out) and tested as such (progress.test.ts); only
 * `progressView` writes, and keeps the timer.
 */
import type { IO } from "./command.ts";

/** What the renderer reads of a job (the public job view). */
export interface Snapshot {
  id?: string;
  status: string;
  progress?: number | null;
  progress_message?: string | null;
}

export const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "timed_out"]);

export const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Text from the job (its progress message is the miner's) made safe for a terminal: control characters and escape
 * sequences removed (a message cannot move the cursor, recolour or retitle the terminal, nor reorder the line),
 * whitespace collapsed.
 */
export function sanitize(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x1b) {
      const next = text[i + 1];
      if (next === "[") {
        // CSI: parameters and intermediates, then one final byte in @-~.
        i += 2;
        while (i < text.length && !(text.charCodeAt(i) >= 0x40 && text.charCodeAt(i) <= 0x7e)) i++;
      } else if (next === "]" || next === "P" || next === "_" || next === "^") {
        // OSC, DCS, APC, PM: up to BEL or ST (ESC \\).
        i += 2;
        while (
          i < text.length &&
          text.charCodeAt(i) !== 0x07 &&
          !(text[i] === "\u001b" && text[i + 1] === "\\")
        )
          i++;
        if (text[i] === "\u001b") i++;
      } else i++;
      out += " ";
      continue;
    }
    // C0 and C1 controls, and the bidirectional overrides (which reorder what follows on screen).
    const control =
      c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    out += control ? " " : text[i];
  }
  return out.replace(/\s+/g, " ").trim();
}

/** Columns a character takes on a terminal: 0 for combining marks, 2 for wide (CJK, emoji), else 1. */
function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f))
    return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  )
    return 2;
  return 1;
}

/** The columns `text` takes on a terminal. */
export function displayWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += charWidth(ch.codePointAt(0) ?? 0);
  return w;
}

/** `text` cut to at most `width` columns, ending in `…` when cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (displayWidth(text) <= width) return text;
  let out = "";
  let w = 0;
  for (const ch of text) {
    const cw = charWidth(ch.codePointAt(0) ?? 0);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return `${out}…`;
}

/** The whole percentage of a progress fraction (0-100), or undefined when there is none (or it is not a number). */
export function percent(progress: number | null | undefined): number | undefined {
  if (typeof progress !== "number" || !Number.isFinite(progress)) return undefined;
  return Math.floor(Math.min(1, Math.max(0, progress)) * 100);
}

/** `0:04`, `1:05`, `1:02:03`: elapsed time, never negative. */
export function formatElapsed(ms: number): string {
  const total = Math.floor(Math.max(0, Number.isFinite(ms) ? ms : 0) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/**
 * A bar `width` cells wide: filled in proportion to `fraction`; with no fraction (nothing reported yet) a short block
 * that moves with `tick` while the job runs, an empty bar otherwise.
 */
export function bar(fraction: number | undefined, width: number, tick = 0, moving = false): string {
  if (width <= 0) return "";
  if (fraction === undefined) {
    if (!moving) return "░".repeat(width);
    const block = Math.min(3, width);
    const span = width - block + 1;
    const period = Math.max(1, 2 * (span - 1));
    const phase = ((tick % period) + period) % period;
    const at = phase < span ? phase : period - phase;
    return "░".repeat(at) + "█".repeat(block) + "░".repeat(width - block - at);
  }
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

export interface FrameOptions {
  elapsedMs: number;
  /** The redraw count: turns the spinner. */
  tick: number;
  /** The terminal's width; the frame takes at most `columns - 1` (the last column would wrap on some terminals). */
  columns: number;
  /** Shown instead of the progress message (e.g. `reconnecting...`). */
  note?: string;
}

const mark = (status: string, tick: number) =>
  status === "completed"
    ? "✔"
    : TERMINAL.has(status)
      ? "✖"
      : (SPINNER[((tick % SPINNER.length) + SPINNER.length) % SPINNER.length] ?? "-");

/**
 * The live line for a terminal: `⠹ running   [██████░░░░░░░░░░░░░░]  30%  encoding  0:12`. One line, no control
 * characters, at most `columns - 1` columns wide: the message is cut first, then the bar narrowed, then dropped.
 */
export function renderFrame(snap: Snapshot, opts: FrameOptions): string {
  const max = Math.max(1, Math.floor(opts.columns) - 1);
  const status = sanitize(snap.status);
  const pct = percent(snap.progress);
  const fraction = pct === undefined ? undefined : Math.min(1, Math.max(0, snap.progress as number));
  const shown = status === "completed" ? 1 : fraction;
  const head = `${mark(status, opts.tick)} ${status.padEnd(9)}`;
  const pctText = `${shown === undefined ? "  -" : String(Math.floor(shown * 100)).padStart(3)}%`;
  const tail = formatElapsed(opts.elapsedMs);
  const message = sanitize(opts.note ?? snap.progress_message ?? "");
  const moving = status === "running" || status === "assigned";
  for (const width of [20, 10, 0]) {
    const meter = width > 0 ? `[${bar(shown, width, opts.tick, moving)}] ${pctText}` : pctText;
    const fixed = `${head} ${meter}  ${tail}`;
    const room = max - displayWidth(fixed) - 2;
    if (room < 0) continue;
    const msg = message && room >= 4 ? `  ${truncate(message, room)}` : "";
    return `${head} ${meter}${msg}  ${tail}`;
  }
  return truncate(`${head} ${pctText}  ${tail}`, max);
}

/** A line for logs: `job_01hx… running 30% encoding (0:12)`. */
export function plainLine(snap: Snapshot, elapsedMs: number): string {
  const pct = percent(snap.progress);
  const message = sanitize(snap.progress_message ?? "");
  return [
    snap.id ? sanitize(snap.id) : undefined,
    sanitize(snap.status),
    pct === undefined ? undefined : `${pct}%`,
    message || undefined,
    `(${formatElapsed(elapsedMs)})`,
  ]
    .filter((p) => p !== undefined)
    .join(" ");
}

/** Whether a plain line is due: the status, the whole percentage or the message changed. */
export function changed(prev: Snapshot | undefined, next: Snapshot): boolean {
  if (!prev) return true;
  return (
    prev.status !== next.status ||
    percent(prev.progress) !== percent(next.progress) ||
    sanitize(prev.progress_message ?? "") !== sanitize(next.progress_message ?? "")
  );
}

// ---- the part that writes ----

export type ProgressMode = "tty" | "plain" | "off";

/** `off` with --json; `tty` when stderr is a terminal (IO.isTTY) that is not `TERM=dumb`; else `plain`. */
export function progressMode(io: IO, json: boolean): ProgressMode {
  if (json) return "off";
  return io.isTTY === true && io.env.TERM !== "dumb" ? "tty" : "plain";
}

export interface ProgressView {
  /** A snapshot of the job (the first, and each one after). */
  update(snap: Snapshot): void;
  /** Following hit trouble (a dropped connection) and will try again. */
  trouble(message: string): void;
  /** The end: the last frame stays on screen, the line ended (tty); plain lines were all written already. */
  done(): void;
}

export function progressView(
  io: IO,
  mode: ProgressMode,
  opts: { startedAt?: number; now?: () => number; intervalMs?: number } = {},
): ProgressView {
  const now = opts.now ?? Date.now;
  const startedAt = opts.startedAt ?? now();
  let last: Snapshot | undefined;
  let printed: Snapshot | undefined;
  let note: string | undefined;
  if (mode === "off") return { update() {}, trouble() {}, done() {} };
  if (mode === "plain") {
    return {
      update(snap) {
        note = undefined;
        if (!changed(printed, snap)) return;
        printed = snap;
        io.stderr(`${plainLine(snap, now() - startedAt)}\n`);
      },
      trouble(message) {
        if (note === message) return;
        note = message;
        io.stderr(`${sanitize(message)}\n`);
      },
      // Every change was written as it came: nothing is left to say.
      done() {},
    };
  }
  let tick = 0;
  const draw = () => {
    if (!last) return;
    const frame = renderFrame(last, { elapsedMs: now() - startedAt, tick, columns: io.columns ?? 80, note });
    io.stderr(`\r\u001b[2K${frame}`);
  };
  const timer = setInterval(() => {
    tick++;
    draw();
  }, opts.intervalMs ?? 100);
  timer.unref?.();
  return {
    update(snap) {
      last = snap;
      note = undefined;
      draw();
    },
    trouble(message) {
      note = message;
      draw();
    },
    done() {
      clearInterval(timer);
      if (!last) return;
      draw();
      io.stderr("\n");
    },
  };
}

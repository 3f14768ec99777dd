import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JOB_STATUSES } from "../core/jobs/statuses.ts";
import type { IO } from "./command.ts";
import {
  bar,
  changed,
  displayWidth,
  formatElapsed,
  percent,
  plainLine,
  progressMode,
  progressView,
  renderFrame,
  type Snapshot,
  sanitize,
  truncate,
} from "./progress.ts";

/* The progress renderer (cli/progress.ts): pure functions of a snapshot and a time, checked as properties. */

/** Any text a miner could send as a progress message: controls, escapes, wide and combining characters included. */
const anyText = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom(
    "\u001b[2J\u001b[Hcleared",
    "\u001b]0;owned\u0007title",
    "line\nbreak\rreturn",
    "‮reversed",
    "編碼中 🎬 pass 2",
    "e\u0301\u0301\u0301",
  ),
);

const anyProgress = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.double(),
  fc.double({ min: 0, max: 1, noNaN: true }),
);

const snapshot = fc.record({
  id: fc.constantFrom("job_01hxabcdefghjkmnpqrstvwxyz", undefined),
  // The server's own statuses (core/jobs/statuses.ts), so a status added there is rendered here too.
  status: fc.oneof(fc.constantFrom(...JOB_STATUSES), anyText),
  progress: anyProgress,
  progress_message: fc.oneof(fc.constant(null), anyText),
});

/** C0/C1 controls (ESC among them): nothing of the job's may reach the terminal as one. */
const hasControl = (s: string) =>
  [...s].some((ch) => {
    const c = ch.codePointAt(0) ?? 0;
    return (
      c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)
    );
  });

describe("the progress renderer", () => {
  it("a frame is one line of printable text that fits the terminal, whatever the job says", () => {
    fc.assert(
      fc.property(
        snapshot,
        fc.nat(),
        fc.integer(),
        fc.integer({ min: 1, max: 300 }),
        fc.option(anyText, { nil: undefined }),
        (snap, elapsedMs, tick, columns, note) => {
          const frame = renderFrame(snap as Snapshot, { elapsedMs, tick, columns, note });
          expect(hasControl(frame)).toBe(false);
          expect(displayWidth(frame)).toBeLessThanOrEqual(Math.max(1, columns - 1));
          expect(frame.length).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("on a wide enough terminal a frame shows the status, the percentage, its bar and the time", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("assigned", "running"),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat(10 * 3600_000),
        fc.nat(),
        fc.integer({ min: 60, max: 300 }),
        (status, progress, elapsedMs, tick, columns) => {
          const frame = renderFrame({ status, progress }, { elapsedMs, tick, columns });
          const pct = Math.floor(progress * 100);
          expect(frame).toContain(status);
          expect(frame).toContain(`${String(pct).padStart(3)}%`);
          expect(frame).toContain(`[${bar(progress, 20)}]`);
          expect(frame.endsWith(formatElapsed(elapsedMs))).toBe(true);
        },
      ),
    );
  });

  it("the message is cut to the room left, never the status or the time", () => {
    const message = "x".repeat(500);
    const frame = renderFrame(
      { status: "running", progress: 0.5, progress_message: message },
      { elapsedMs: 65_000, tick: 0, columns: 80 },
    );
    expect(displayWidth(frame)).toBe(79);
    expect(frame).toContain("running");
    expect(frame).toContain(" 50%");
    expect(frame).toContain("x…");
    expect(frame.endsWith("1:05")).toBe(true);
  });

  it("a finished job's frame has a mark instead of the spinner; a completed one is at 100%", () => {
    const done = renderFrame({ status: "completed", progress: 0.8 }, { elapsedMs: 0, tick: 3, columns: 80 });
    expect(done.startsWith("✔ completed")).toBe(true);
    expect(done).toContain(`[${"█".repeat(20)}] 100%`);
    const failed = renderFrame({ status: "failed", progress: 0.4 }, { elapsedMs: 0, tick: 3, columns: 80 });
    expect(failed.startsWith("✖ failed")).toBe(true);
  });

  it("the spinner turns with the tick while the job runs", () => {
    const frames = new Set(
      [0, 1, 2, 3].map((tick) => renderFrame({ status: "running" }, { elapsedMs: 0, tick, columns: 80 })[0]),
    );
    expect(frames.size).toBe(4);
  });

  it("a bar is exactly its width, filled in proportion, or a moving block when nothing is reported", () => {
    fc.assert(
      fc.property(
        fc.option(fc.double(), { nil: undefined }),
        fc.nat(60),
        fc.integer(),
        fc.boolean(),
        (f, width, tick, moving) => {
          const fraction = f === undefined || Number.isNaN(f) ? undefined : f;
          const b = bar(fraction, width, tick, moving);
          expect([...b]).toHaveLength(width);
          const filled = [...b].filter((c) => c === "█").length;
          if (fraction !== undefined)
            expect(filled).toBe(Math.round(Math.min(1, Math.max(0, fraction)) * width));
          else expect(filled).toBe(moving ? Math.min(3, width) : 0);
        },
      ),
    );
  });

  it("the percentage is a whole number from 0 to 100 that never goes down as progress goes up", () => {
    fc.assert(
      fc.property(fc.double(), fc.double(), (a, b) => {
        const pa = percent(a);
        if (!Number.isFinite(a)) {
          expect(pa).toBeUndefined();
          return;
        }
        expect(Number.isInteger(pa)).toBe(true);
        expect(pa).toBeGreaterThanOrEqual(0);
        expect(pa).toBeLessThanOrEqual(100);
        if (Number.isFinite(b) && a <= b) expect(pa).toBeLessThanOrEqual(percent(b) as number);
      }),
    );
    expect(percent(null)).toBeUndefined();
    expect(percent(0.999)).toBe(99);
    expect(percent(1)).toBe(100);
  });

  it("elapsed time reads back as the whole seconds it was given", () => {
    fc.assert(
      fc.property(fc.nat(1_000 * 3600_000), (ms) => {
        const text = formatElapsed(ms);
        expect(text).toMatch(/^\d+:\d{2}(:\d{2})?$/);
        const seconds = text
          .split(":")
          .map(Number)
          .reduce((acc, n) => acc * 60 + n, 0);
        expect(seconds).toBe(Math.floor(ms / 1000));
      }),
    );
    expect(formatElapsed(-5)).toBe("0:00");
    expect(formatElapsed(3_723_000)).toBe("1:02:03");
  });

  it("sanitize leaves no control character, is idempotent and keeps plain text as it is", () => {
    fc.assert(
      fc.property(anyText, (t) => {
        const s = sanitize(t);
        expect(hasControl(s)).toBe(false);
        expect(sanitize(s)).toBe(s);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[!-~]+( [!-~]+)*$/), (t) => {
        expect(sanitize(t)).toBe(t);
      }),
    );
    expect(sanitize("\u001b[31mred\u001b[0m \u001b]0;title\u0007done")).toBe("red done");
  });

  it("truncate keeps a prefix within the width", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), fc.nat(80), (t, width) => {
        const cut = truncate(t, width);
        expect(displayWidth(cut)).toBeLessThanOrEqual(width);
        if (displayWidth(t) <= width) expect(cut).toBe(t);
        else expect(t.startsWith(cut.slice(0, -1))).toBe(true);
      }),
    );
  });

  it("a plain line is due exactly when the status, the whole percentage or the message changes", () => {
    fc.assert(
      fc.property(snapshot, snapshot, (a, b) => {
        expect(changed(a as Snapshot, a as Snapshot)).toBe(false);
        const due = changed(a as Snapshot, b as Snapshot);
        const differs =
          a.status !== b.status ||
          percent(a.progress) !== percent(b.progress) ||
          sanitize(a.progress_message ?? "") !== sanitize(b.progress_message ?? "");
        expect(due).toBe(differs);
      }),
    );
    expect(changed(undefined, { status: "queued" })).toBe(true);
    expect(
      plainLine({ id: "job_1", status: "running", progress: 0.42, progress_message: "pass 2" }, 3500),
    ).toBe("job_1 running 42% pass 2 (0:03)");
  });
});

describe("the progress view", () => {
  const capture = (extra: Partial<IO> = {}) => {
    let err = "";
    const io: IO = {
      stdout: () => {},
      stderr: (t) => {
        err += t;
      },
      env: {},
      ...extra,
    };
    return { io, err: () => err };
  };

  it("picks a live line only for a terminal, plain lines elsewhere, nothing with --json", () => {
    expect(progressMode(capture({ isTTY: true }).io, false)).toBe("tty");
    expect(progressMode(capture({ isTTY: true, env: { TERM: "dumb" } }).io, false)).toBe("plain");
    expect(progressMode(capture().io, false)).toBe("plain");
    expect(progressMode(capture({ isTTY: true }).io, true)).toBe("off");
  });

  it("writes one plain line per change and nothing else", () => {
    fc.assert(
      fc.property(fc.array(snapshot, { maxLength: 20 }), (snaps) => {
        const { io, err } = capture();
        let t = 0;
        const view = progressView(io, "plain", { startedAt: 0, now: () => (t += 1000) });
        let expected = 0;
        let printed: Snapshot | undefined;
        for (const s of snaps) {
          if (changed(printed, s as Snapshot)) {
            expected++;
            printed = s as Snapshot;
          }
          view.update(s as Snapshot);
        }
        view.done();
        const lines = err().split("\n").slice(0, -1);
        expect(lines).toHaveLength(expected);
        for (const line of lines) expect(hasControl(line)).toBe(false);
      }),
    );
  });

  it("redraws one line in place on a terminal and ends it with a newline", () => {
    const { io, err } = capture({ isTTY: true, columns: 100 });
    const view = progressView(io, "tty", { startedAt: 0, now: () => 2000, intervalMs: 3_600_000 });
    view.update({ status: "queued" });
    view.update({ status: "running", progress: 0.5, progress_message: "half" });
    view.trouble("connection lost; following again in 1 s...");
    view.update({ status: "completed", progress: 1 });
    view.done();
    const out = err();
    const frames = out.split("\r\u001b[2K").slice(1);
    expect(frames.length).toBe(5);
    expect(frames[1]).toContain("running");
    expect(frames[1]).toContain(" 50%");
    expect(frames[1]).toContain("half");
    expect(frames[2]).toContain("connection lost");
    expect(frames.at(-1)).toMatch(/^✔ completed .* 100% {2}0:02\n$/);
    expect(out.split("\n")).toHaveLength(2);
  });
});

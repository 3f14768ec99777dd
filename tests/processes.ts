import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stack } from "./fixture.ts";

/**
 * Real `coord` processes for end-to-end tests: the CLI as a user runs it (`node --import tsx cli/coord.ts ...`),
 * pointed at the test stack, its output kept for assertions. Every process started here is killed when its test
 * file ends, whatever happened (see `killAll`).
 */

const root = fileURLToPath(new URL("..", import.meta.url));
const running = new Set<ChildProcess>();

export interface CoordProcess {
  child: ChildProcess;
  pid: number;
  /** Everything it wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Its JSON log lines (the miner agent logs one object per line on stderr). */
  logs(): Record<string, unknown>[];
  /** Resolves once its log has a line with this event (and the fields given), or rejects after `timeoutMs`. */
  logged(
    event: string,
    fields?: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Its exit: the code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its exit with everything it wrote: what a test that runs it to the end asserts on. */
  finished: Promise<CoordExit>;
}

export interface CoordExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function coordProcess(
  args: string[],
  opts: { key?: string; env?: Record<string, string>; stdin?: string; timeoutMs?: number } = {},
): CoordProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "cli/coord.ts", ...args], {
    cwd: root,
    env: {
      ...process.env,
      COORD_URL: stack.url,
      ...(opts.key ? { COORD_API_KEY: opts.key } : {}),
      ...opts.env,
    },
    stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  running.add(child);
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 90_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const logs = () =>
    err
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  const matches = (line: Record<string, unknown>, event: string, fields: Record<string, unknown>) =>
    line.event === event && Object.entries(fields).every(([k, v]) => line[k] === v);
  return {
    child,
    pid: child.pid as number,
    stdout: () => out,
    stderr: () => err,
    logs,
    exited,
    finished: exited.then((exit) => ({ ...exit, stdout: out, stderr: err })),
    async logged(event, fields = {}, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs().find((l) => matches(l, event, fields));
        if (hit) return hit;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no ${event} ${JSON.stringify(fields)} in the log:\n${err.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** Kills every process this file started and still runs (an afterAll of every file that uses them). */
export async function killAll(): Promise<void> {
  for (const child of running) child.kill("SIGKILL");
  while (running.size > 0) await new Promise((r) => setTimeout(r, 50));
}

/**
 * `killAll`, then the pids a test recorded of processes those leave behind (a stand-in's render, a script's child:
 * not children of this file, so killAll cannot reach them) that are still there.
 */
export async function killAllAnd(leftovers: Iterable<number>): Promise<void> {
  await killAll();
  for (const pid of leftovers) if (alive(pid)) process.kill(pid, "SIGKILL");
}

/**
 * Whether a process with this pid is still there. A zombie (dead, not yet reaped: a killed grandchild whose parent
 * died too waits for init) counts as gone; /proc says which, kill(pid, 0) alone would not.
 */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    try {
      process.kill(pid, 0);
      return process.platform !== "linux";
    } catch {
      return false;
    }
  }
}

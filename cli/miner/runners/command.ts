import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { list, str } from "../../command.ts";
import { type ExecutionContext, type Executor, JobFailure } from "../executors.ts";
import type { RunnerConfig, RunnerSpec } from "./index.ts";

/**
 * The `command` runner: any executable serves a service (`--command SERVICE=PATH`). The job's input goes to the
 * executable's stdin as JSON; what it writes to stdout, parsed as JSON, is the job's output. Lines on stderr that
 * are JSON `{"progress": 0.5, "message": "..."}` are reported as the job's progress (at most once a second, the
 * latest one winning); other stderr lines are logged and the last of them explain a failure. Exit 0 completes the
 * job; exit 75 (EX_TEMPFAIL, sysexits.h) is a retryable failure, any other exit a final one.
 *
 * The executable runs in a process group of its own, and the whole group is stopped (SIGTERM, then SIGKILL after a
 * grace) when the job is cancelled, times out or the lease is lost, and also once the executable itself exits: a
 * grandchild it started (a shell pipeline, a server it forked) never outlives the job.
 */

/** sysexits.h: "temporary failure; user is invited to retry". */
export const EX_TEMPFAIL = 75;
/** Stdout kept for the output: the coordinator takes at most 256 KB inline, so more than this is never valid. */
const MAX_STDOUT_BYTES = 1024 * 1024;
/** Between SIGTERM and SIGKILL. */
const DEFAULT_GRACE_MS = 5000;
/** setTimeout's largest delay (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CommandRunnerConfig {
  /** The executable (a path, or a name looked up on the PATH). It gets no arguments. */
  command: string;
  /** Kill it after this long (default: never before the job's own timeout). */
  timeoutSeconds?: number;
  /** Between SIGTERM and SIGKILL (default 5 s). */
  graceMs?: number;
}

// ---- pure parts (cli/miner/runners/command.test.ts) ----

/**
 * `--command SERVICE=PATH` values as service -> executable, or the first malformed one as an error. The first `=`
 * splits (a path may contain one); a service named twice is an error rather than a silent choice.
 */
export function parseCommands(entries: readonly string[]): Map<string, string> | string {
  const out = new Map<string, string>();
  for (const entry of entries) {
    const at = entry.indexOf("=");
    const service = entry.slice(0, at).trim();
    const path = entry.slice(at + 1).trim();
    if (at < 1 || !service || !path)
      return `--command takes SERVICE=PATH, e.g. --command echo=./serve.sh; got ${JSON.stringify(entry)}`;
    if (out.has(service)) return `--command names ${service} twice`;
    out.set(service, path);
  }
  return out;
}

/**
 * When to kill the command, epoch ms: `timeoutSeconds` after `now`, but never past the job's own `timeout_at`
 * (the coordinator times the job out then, and its result would be refused anyway). Undefined: no deadline.
 */
export function commandDeadline(
  now: number,
  timeoutSeconds?: number,
  timeoutAt?: string,
): number | undefined {
  const own = timeoutSeconds !== undefined ? now + timeoutSeconds * 1000 : undefined;
  const job =
    timeoutAt !== undefined && Number.isFinite(Date.parse(timeoutAt)) ? Date.parse(timeoutAt) : undefined;
  if (own === undefined) return job;
  if (job === undefined) return own;
  return Math.min(own, job);
}

/** A stderr line that reports progress (`{"progress": 0..1, "message"?: string}`), or undefined for any other. */
export function parseProgressLine(line: string): { progress: number; message?: string } | undefined {
  const text = line.trim();
  if (!text.startsWith("{")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const { progress, message } = parsed as { progress?: unknown; message?: unknown };
  if (typeof progress !== "number" || !Number.isFinite(progress)) return undefined;
  return {
    progress: Math.max(0, Math.min(1, progress)),
    // The coordinator keeps at most 1000 characters of a progress message.
    ...(typeof message === "string" && message !== "" ? { message: message.slice(0, 1000) } : {}),
  };
}

/** The command's stdout as the job's output: one JSON value, or why it is not. */
export function parseOutput(
  stdout: string,
  truncated = false,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (truncated)
    return { ok: false, reason: `the command wrote more than ${MAX_STDOUT_BYTES} bytes to stdout` };
  if (stdout.trim() === "")
    return { ok: false, reason: "the command wrote nothing to stdout (its output must be JSON)" };
  try {
    return { ok: true, value: JSON.parse(stdout) };
  } catch (err) {
    return {
      ok: false,
      reason: `the command's stdout is not JSON (${(err as Error).message}): ${JSON.stringify(stdout.slice(0, 200))}`,
    };
  }
}

/** Feeds chunks, calls `onLine` for each complete line (and for the rest at `end`). */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; end(): void } {
  let buffered = "";
  return {
    push(chunk) {
      buffered += chunk;
      const lines = buffered.split(/\r?\n/);
      buffered = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    },
    end() {
      if (buffered) onLine(buffered);
      buffered = "";
    },
  };
}

/**
 * Progress at most once per `everyMs`: each report renews the lease and is a write on the coordinator, and a
 * command may print many. A report inside the window is held and the latest held one is sent when it closes.
 */
export function throttled(send: (fraction: number, message?: string) => void, everyMs = 1000) {
  let last = Number.NEGATIVE_INFINITY;
  let held: { fraction: number; message: string | undefined } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    timer = undefined;
    if (!held) return;
    last = Date.now();
    const { fraction, message } = held;
    held = undefined;
    send(fraction, message);
  };
  return {
    report(fraction: number, message?: string) {
      held = { fraction, message };
      if (timer) return;
      const wait = last + everyMs - Date.now();
      if (wait <= 0) fire();
      else timer = setTimeout(fire, wait);
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      held = undefined;
    },
  };
}

// ---- the process group ----

export interface GroupRun {
  file: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  stdin?: string;
  /** Stops the group (the job was cancelled, timed out, the lease moved on). */
  signal: AbortSignal;
  /** Epoch ms after which the group is stopped. */
  deadline?: number;
  graceMs?: number;
  onStdout?(chunk: string): void;
  onStderr?(chunk: string): void;
}

export interface GroupExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why we stopped it, if we did. */
  stopped?: "aborted" | "timed_out";
}

/** Process groups that may still have members, killed when this process exits (a second Ctrl-C exits at once). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pgid: number) {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const g of liveGroups) signalGroup(g, "SIGKILL");
    });
  }
  liveGroups.add(pgid);
}

/** Signals every process of the group; false when none is left. */
function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `file` as the leader of a new process group and resolves when it has exited and its stdout and stderr are
 * closed. Rejects only when it cannot be started (not found, not executable). When `signal` aborts or `deadline`
 * passes, and also when the leader exits, whatever is left of the group gets SIGTERM and, if any of it is still
 * there after the grace, SIGKILL: nothing it started survives it.
 */
export function runGroup(opts: GroupRun): Promise<GroupExit> {
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) return resolve({ code: null, signal: null, stopped: "aborted" });
    let child: ChildProcess;
    try {
      child = spawn(opts.file, [...opts.args], {
        cwd: opts.cwd,
        env: opts.env,
        // Its own process group (setsid), so that one kill reaches its children too; and no Ctrl-C from the
        // miner's terminal: the miner drains (lets jobs finish) on the first one.
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      return reject(err);
    }
    const pgid = child.pid;
    let stopped: GroupExit["stopped"];
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let closeGuard: NodeJS.Timeout | undefined;
    let settled = false;

    /** SIGTERM the group now, SIGKILL whatever is left of it after the grace. */
    const terminate = () => {
      if (pgid === undefined || killTimer) return;
      if (!signalGroup(pgid, "SIGTERM")) {
        liveGroups.delete(pgid);
        return;
      }
      killTimer = setTimeout(() => {
        signalGroup(pgid, "SIGKILL");
        liveGroups.delete(pgid);
      }, grace);
      // The escalation must happen even when the job is long done, but must not keep a finished miner alive: the
      // exit hook kills what is left then.
      killTimer.unref();
    };
    const stop = (why: NonNullable<GroupExit["stopped"]>) => {
      if (stopped || exited) return;
      stopped = why;
      terminate();
    };
    const onAbort = () => stop("aborted");
    opts.signal.addEventListener("abort", onAbort, { once: true });
    if (opts.deadline !== undefined) {
      const fireAt = opts.deadline;
      const arm = () => {
        const wait = fireAt - Date.now();
        if (wait <= 0) return stop("timed_out");
        deadlineTimer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
      };
      arm();
    }
    const cleanup = () => {
      opts.signal.removeEventListener("abort", onAbort);
      if (deadlineTimer) clearTimeout(deadlineTimer);
      if (closeGuard) clearTimeout(closeGuard);
    };

    if (pgid !== undefined) trackGroup(pgid);
    // A command that does not read its stdin (or exits first) must not crash the miner with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.stdin ?? "");
    child.stdout?.setEncoding("utf8");
    child.stderr?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => opts.onStdout?.(chunk));
    child.stderr?.on("data", (chunk: string) => opts.onStderr?.(chunk));

    child.on("error", (err) => {
      // Not started at all (ENOENT, EACCES): no exit or close follows reliably.
      if (child.pid !== undefined || settled) return;
      settled = true;
      cleanup();
      reject(err);
    });
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      // The leader is gone: what it left behind goes too.
      terminate();
      // A process that escaped the group (its own setsid) can hold stdout open forever: stop listening after the
      // grace, so that the job ends anyway.
      closeGuard = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, grace + 1000);
    });
    child.on("close", (code, signal) => {
      if (settled) return;
      settled = true;
      cleanup();
      // Nothing of the group is left: no SIGKILL for a process group id the system may hand out again.
      if (pgid !== undefined && !signalGroup(pgid, 0)) {
        liveGroups.delete(pgid);
        if (killTimer) clearTimeout(killTimer);
      }
      const how = exited ?? { code, signal };
      resolve({ code: how.code, signal: how.signal, ...(stopped ? { stopped } : {}) });
    });
  });
}

// ---- the executor ----

/** Whether `command` names an executable file (a path, or a name found on the PATH). */
function executable(command: string, env: NodeJS.ProcessEnv): boolean {
  const isFile = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes("/")) return isFile(command);
  return (env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && isFile(join(dir, command)));
}

export function commandRunner(cfg: CommandRunnerConfig): Executor {
  return async (ctx: ExecutionContext) => {
    const started = Date.now();
    const deadline = commandDeadline(started, cfg.timeoutSeconds, ctx.timeoutAt);
    let stdout = "";
    let truncated = false;
    let tail = "";
    // Reports go one after another (never reordered) and are all in before the result: a report still on its
    // way when the result lands would be refused, and the job would not show it.
    let reported: Promise<void> = Promise.resolve();
    const progress = throttled((fraction, message) => {
      reported = reported.then(() => ctx.progress(fraction, message));
    });
    const stderr = lineSplitter((line) => {
      const reported = parseProgressLine(line);
      if (reported) return progress.report(reported.progress, reported.message);
      if (line.trim() === "") return;
      tail = `${tail}${line}\n`.slice(-3000);
      ctx.log("command.stderr", { line: line.slice(0, 2000) });
    });
    let exit: GroupExit;
    try {
      exit = await runGroup({
        file: cfg.command,
        args: [],
        stdin: JSON.stringify(ctx.input ?? null),
        // What the command may want to know of its job, beside the input itself.
        env: {
          ...process.env,
          COORD_JOB_ID: ctx.jobId,
          COORD_SERVICE: ctx.service,
          COORD_ATTEMPT: String(ctx.attempt),
          ...(ctx.timeoutAt ? { COORD_TIMEOUT_AT: ctx.timeoutAt } : {}),
        },
        signal: ctx.signal,
        deadline,
        graceMs: cfg.graceMs,
        onStdout: (chunk) => {
          if (truncated) return;
          stdout += chunk;
          if (Buffer.byteLength(stdout) > MAX_STDOUT_BYTES) {
            truncated = true;
            stdout = "";
          }
        },
        onStderr: (chunk) => stderr.push(chunk),
      });
    } catch (err) {
      // This miner cannot run it (moved, lost its mode): another miner may.
      throw new JobFailure(
        "command_unavailable",
        `could not run ${cfg.command}: ${(err as Error).message}`,
        true,
      );
    } finally {
      stderr.end();
      progress.stop();
    }
    await reported;
    if (exit.stopped === "aborted" || ctx.signal.aborted) throw ctx.signal.reason ?? new Error("aborted");
    if (exit.stopped === "timed_out")
      throw new JobFailure(
        "command_timeout",
        `${cfg.command} was still running after ${Math.round(((deadline ?? started) - started) / 1000)} s and was killed${tail ? `; stderr: ${tail.trim()}` : ""}`,
        false,
      );
    if (exit.code !== 0) {
      const how = exit.code !== null ? `exited with ${exit.code}` : `was killed by ${exit.signal}`;
      throw new JobFailure(
        "command_failed",
        `${cfg.command} ${how}${tail ? `: ${tail.trim()}` : ""}`,
        exit.code === EX_TEMPFAIL,
      );
    }
    const output = parseOutput(stdout, truncated);
    if (!output.ok) throw new JobFailure("invalid_output", output.reason, false);
    return output.value;
  };
}

/** `--command` as parsed, or the error `coord miner run` refuses to start with. */
function commandsOf({ opts }: RunnerConfig): Map<string, string> | string {
  return parseCommands(list(opts, "command"));
}

/** `coord miner run --services my.service --command my.service=./serve.sh`. */
export const commandRunnerSpec: RunnerSpec = {
  name: "command",
  // Configured, not fixed: `handles` says which.
  services: [],
  summary:
    "any service through an executable: --command SERVICE=PATH (input JSON on stdin, output JSON on stdout)",
  options: {
    command: {
      type: "string",
      multiple: true,
      value: "SVC=PATH",
      description:
        "Serve SVC with the executable PATH (input JSON on stdin, output JSON on stdout; over a built-in runner)",
    },
    "command-timeout": {
      type: "string",
      value: "S",
      description: "Kill a --command process after S seconds (default: at the job's own timeout)",
    },
  },
  // A malformed --command claims every service, so that `make` refuses to start with why instead of the miner
  // quietly running a built-in runner the operator meant to replace.
  handles: (service, config) => {
    const commands = commandsOf(config);
    return typeof commands === "string" || commands.has(service);
  },
  make: (config, service) => {
    const commands = commandsOf(config);
    if (typeof commands === "string") return commands;
    const command = commands.get(service);
    if (!command) return `${service} has no --command SERVICE=PATH`;
    if (!executable(command, config.env))
      return `--command ${service}=${command}: not an executable file (check the path and its mode)`;
    const raw = str(config.opts, "command-timeout");
    const timeoutSeconds = raw === undefined ? undefined : Number(raw);
    if (timeoutSeconds !== undefined && !(Number.isFinite(timeoutSeconds) && timeoutSeconds > 0))
      return `--command-timeout takes a number of seconds above 0, got ${JSON.stringify(raw)}`;
    return commandRunner({ command, ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}) });
  },
};

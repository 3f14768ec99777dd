import { type ChildProcess, spawn } from "node:child_process";

/**
 * `npm start`'s entry point (local/main.ts) as a child process, for tests that need a whole stack of their own (a
 * restart with persisted data, counters no other test touches). Resolves once it prints its admin key.
 */
export async function npmStart(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ child: ChildProcess; adminKey: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "local/main.ts"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + timeoutMs;
  while (!/Admin key:\s+(\S+)/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`stack did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, adminKey: /Admin key:\s+(\S+)/.exec(out)?.[1] ?? "" };
}

/** SIGTERM, and the exit code once it is gone (undefined if it had already exited). */
export function stopProcess(child: ChildProcess): Promise<number | null | undefined> {
  if (child.exitCode !== null) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}

import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { api, coordInProcess, createAccount, eventually, fundedClient, isolated } from "./fixture.ts";
import { alive, coordProcess, killAllAnd } from "./processes.ts";

/*
 * The reference miner's `command` runner end to end: a real `coord miner run` process serves `echo` (the registry's
 * service that takes any JSON object) with an executable written here, against the real local stack. The input
 * reaches the executable on stdin, its stdout is the output, its JSON stderr lines are the job's progress, its exit
 * code decides the failure, and a cancel or a timeout kills it together with what it started.
 */

const dir = mkdtempSync(join(tmpdir(), "coord-command-test-"));
/** Scripts a failed test may leave behind (the miners are killAll's): killed by pid at the end. */
const leftovers = new Set<number>();
afterAll(async () => {
  await killAllAnd(leftovers);
  rmSync(dir, { recursive: true, force: true });
});

type Job = {
  id: string;
  status: string;
  attempt: number;
  error?: { code: string; message: string; retryable: boolean } | null;
};
type Events = { events: { type: string; data?: Record<string, unknown> }[] };

/** An executable script in the test's directory. */
function script(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

/** A miner of `echo` in the test's own region, through the command runner. */
async function commandMiner(region: string, command: string, extra: string[] = [], maxJobs = 1) {
  const miner = await createAccount("miner");
  // A miner that never exits fails its test instead of hanging the run.
  return coordProcess(
    [
      ...["miner", "run", "--name", `command-${region}`, "--services", "echo", "--region", region],
      ...["--command", `echo=${command}`, "--max-jobs", String(maxJobs), ...extra],
    ],
    { key: miner.key, timeoutMs: 80_000 },
  );
}

async function submit(key: string, constraints: Record<string, unknown>, input: unknown, extra = {}) {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: { service: "echo", input, constraints, ...extra },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const getJob = async (key: string, id: string) => (await api<Job>("GET", `/v1/jobs/${id}`, { key })).body;

/** The pid a script wrote to `file`, once it is there. */
const pidIn = (file: string) =>
  eventually(async () => {
    const text = (() => {
      try {
        return readFileSync(file, "utf8").trim();
      } catch {
        return "";
      }
    })();
    if (!/^\d+$/.test(text)) return undefined;
    leftovers.add(Number(text));
    return Number(text);
  }, 20_000);

/**
 * A bash script that records its pid and a grandchild's (a `sleep` it starts in the background) in `pids`, reports
 * progress, then waits for ever: what a stuck or long render looks like.
 */
function sleeper(name: string): { path: string; pids: string } {
  const pids = join(dir, `${name}-pids`);
  mkdirSync(pids);
  const path = script(
    `${name}.sh`,
    `#!/usr/bin/env bash
cat > /dev/null
echo $$ > "${pids}/leader.tmp" && mv "${pids}/leader.tmp" "${pids}/leader"
sleep 600 &
echo $! > "${pids}/grandchild.tmp" && mv "${pids}/grandchild.tmp" "${pids}/grandchild"
echo '{"progress":0.1,"message":"sleeping"}' >&2
wait
`,
  );
  return { path, pids };
}

/** Serves echo by the input: echoes it back with the job's context, or exits with `exit_code`, or prints `raw`. */
const serve = script(
  "serve.mjs",
  `#!/usr/bin/env node
let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => { text += c; });
process.stdin.on("end", () => {
  const input = JSON.parse(text);
  if (input.exit_code !== undefined) {
    process.stderr.write("working...\\n" + input.say + "\\n");
    process.exit(input.exit_code);
  }
  if (input.raw !== undefined) return process.stdout.write(input.raw);
  process.stdout.write(JSON.stringify({
    received: input,
    job_id: process.env.COORD_JOB_ID,
    service: process.env.COORD_SERVICE,
    attempt: process.env.COORD_ATTEMPT,
    has_timeout_at: Number.isFinite(Date.parse(process.env.COORD_TIMEOUT_AT ?? "")),
  }));
});
`,
);

describe("the command runner", () => {
  it("hands the job's input to the executable on stdin and returns what it prints on stdout as the output", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const input = { text: "héllo wörld", nested: { list: [1, 2, 3], flag: true } };
    const job = await submit(client.key, constraints, input);
    const exit = await (await commandMiner(region, serve)).finished;
    expect(exit.code, exit.stderr).toBe(0);
    const result = await api<{ status: string; output: unknown }>("GET", `/v1/jobs/${job.id}/result`, {
      key: client.key,
    });
    expect(result.body).toMatchObject({
      status: "completed",
      output: { received: input, job_id: job.id, service: "echo", attempt: "1", has_timeout_at: true },
    });
  }, 90_000);

  it("reports JSON lines on stderr as the job's progress and logs the other lines", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    // The second report comes after the runner's one-a-second window, so it is sent rather than superseded.
    const reporter = script(
      "reporter.sh",
      `#!/usr/bin/env bash
cat > /dev/null
echo '{"progress":0.25,"message":"a quarter"}' >&2
echo 'plain diagnostic line' >&2
sleep 1.5
echo '{"progress":0.75,"message":"three quarters"}' >&2
echo '{"done":true}'
`,
    );
    const job = await submit(client.key, constraints, { any: "thing" });
    const exit = await (await commandMiner(region, reporter)).finished;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain("plain diagnostic line");
    const events = await api<Events>("GET", `/v1/jobs/${job.id}/events`, { key: client.key });
    const progress = events.body.events.filter((e) => e.type === "job.progress.v1").map((e) => e.data);
    expect(progress).toEqual([
      expect.objectContaining({ progress: 0.25, message: "a quarter" }),
      expect.objectContaining({ progress: 0.75, message: "three quarters" }),
    ]);
    expect((await getJob(client.key, job.id)).status).toBe("completed");
  }, 90_000);

  it("fails the job with command_failed and the stderr tail on a non-zero exit; exit 75 is retried", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const broken = await submit(
      client.key,
      constraints,
      { exit_code: 3, say: "the disk is on fire" },
      { max_attempts: 2 },
    );
    const busy = await submit(
      client.key,
      constraints,
      { exit_code: 75, say: "the GPU is busy, try later" },
      { max_attempts: 2 },
    );
    // Three claims: the broken job once (not retried), the busy one twice (retried once, then out of attempts).
    const exit = await (await commandMiner(region, serve, [], 3)).finished;
    expect(exit.code, exit.stderr).toBe(0);

    const failed = await getJob(client.key, broken.id);
    expect(failed).toMatchObject({ status: "failed", attempt: 1 });
    expect(failed.error).toMatchObject({ code: "command_failed", retryable: false });
    expect(failed.error?.message).toContain("exited with 3");
    expect(failed.error?.message).toContain("the disk is on fire");

    const retried = await getJob(client.key, busy.id);
    expect(retried).toMatchObject({ status: "failed", attempt: 2 });
    expect(retried.error).toMatchObject({ code: "command_failed", retryable: true });
    expect(retried.error?.message).toContain("exited with 75");
  }, 90_000);

  it("fails the job with invalid_output when stdout is not JSON", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, { raw: "this is not json\n" });
    const exit = await (await commandMiner(region, serve)).finished;
    expect(exit.code, exit.stderr).toBe(0);
    const done = await getJob(client.key, job.id);
    expect(done).toMatchObject({ status: "failed" });
    expect(done.error).toMatchObject({ code: "invalid_output", retryable: false });
    expect(done.error?.message).toContain("this is not json");
  }, 90_000);

  it("kills the executable and what it started at --command-timeout, failing the job with command_timeout", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const { path, pids } = sleeper("timeout");
    const job = await submit(client.key, constraints, { wait: "forever" });
    const miner = await commandMiner(region, path, ["--command-timeout", "2"]);
    const leader = await pidIn(join(pids, "leader"));
    const grandchild = await pidIn(join(pids, "grandchild"));
    const exit = await miner.finished;
    expect(exit.code, exit.stderr).toBe(0);
    const done = await getJob(client.key, job.id);
    expect(done).toMatchObject({ status: "failed" });
    expect(done.error).toMatchObject({ code: "command_timeout", retryable: false });
    await eventually(async () => !alive(leader) && !alive(grandchild), 15_000);
  }, 90_000);

  it("a cancel reaches a running job and kills its process and the process's children; the job never completes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const { path, pids } = sleeper("cancel");
    const job = await submit(client.key, constraints, { wait: "until cancelled" });
    const miner = await commandMiner(region, path);
    const leader = await pidIn(join(pids, "leader"));
    const grandchild = await pidIn(join(pids, "grandchild"));
    expect(alive(leader) && alive(grandchild)).toBe(true);
    await eventually(async () => (await getJob(client.key, job.id)).status === "running", 15_000);

    const cancel = await api<Job>("POST", `/v1/jobs/${job.id}/cancel`, { key: client.key, body: {} });
    expect(cancel.status, cancel.text).toBe(200);
    // The miner hears of it (heartbeat or doorbell) and stops the whole process group.
    await eventually(async () => !alive(leader) && !alive(grandchild), 20_000);
    const exit = await miner.finished;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain("job.abandoned");

    expect((await getJob(client.key, job.id)).status).toBe("cancelled");
    const events = await api<Events>("GET", `/v1/jobs/${job.id}/events`, { key: client.key });
    expect(events.body.events.map((e) => e.type)).toContain("job.cancelled.v1");
    expect(events.body.events.map((e) => e.type)).not.toContain("job.completed.v1");
    const result = await api<{ status: string; output?: unknown }>("GET", `/v1/jobs/${job.id}/result`, {
      key: client.key,
    });
    expect(result.body.status).toBe("cancelled");
    expect(result.body.output ?? null).toBeNull();
  }, 90_000);

  it("coord miner run refuses to start with a --command that is not an executable", async () => {
    const account = await createAccount("miner");
    const out = await coordInProcess(
      ["miner", "run", "--services", "echo", "--command", `echo=${join(dir, "missing.sh")}`, "--once"],
      { COORD_API_KEY: account.key },
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("not an executable file");
  });
});

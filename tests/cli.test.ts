import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Logger, type MinerOptions, type MinerSummary, runMiner } from "../cli/miner/agent.ts";
import {
  api,
  coordInProcess,
  coordWithIO,
  createAccount,
  eventually,
  fundedClient,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Each test works in its own region, so parallel tests never claim each other's jobs. */
const isolated = () => {
  const region = `t-${Math.random().toString(36).slice(2, 10)}`;
  return { region, constraints: { regions: [region] } };
};

interface LogLine {
  level: string;
  event: string;
  [k: string]: unknown;
}

/** The reference miner in-process, its logs collected. */
function startAgent(opts: Partial<MinerOptions> & { key: string; region: string }) {
  const controller = new AbortController();
  const logs: LogLine[] = [];
  const log: Logger = (level, event, fields = {}) => logs.push({ level, event, ...fields });
  const done: Promise<MinerSummary> = runMiner({
    url: stack.url,
    name: `ref-${Math.random().toString(36).slice(2, 10)}`,
    services: ["echo"],
    signal: controller.signal,
    log,
    ...opts,
  });
  const saw = (event: string, jobId?: string) =>
    logs.some((l) => l.event === event && (jobId === undefined || l.job_id === jobId));
  return { controller, logs, done, saw };
}

type Job = { id: string; status: string; error?: { code: string } | null; version?: number };

async function submit(client: { key: string }, body: Record<string, unknown>) {
  const res = await api<Job>("POST", "/v1/jobs", { key: client.key, body: { service: "echo", ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

async function untilStatus(client: { key: string }, id: string, status: string, timeoutMs = 15_000) {
  return eventually(async () => {
    const res = await api<Job>("GET", `/v1/jobs/${id}?wait=1`, { key: client.key });
    return res.body.status === status ? res.body : undefined;
  }, timeoutMs);
}

/** `coord <args>` as a child process, the way a user runs it. */
function coord(
  args: string[],
  env: Record<string, string> = {},
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/coord.ts", ...args], {
      cwd: root,
      env: { ...process.env, COORD_URL: stack.url, COORD_API_KEY: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the reference miner", () => {
  it("the reference miner completes an echo job end to end", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    const agent = startAgent({ key: minerAccount.key, region, prices: { echo: 11 } });

    const input = { hello: "world", nested: { n: [1, 2, 3] }, sleep_ms: 1200 };
    const job = await submit(client, { input, constraints });
    const follow = coord(["jobs", "events", job.id, "--follow", "--json"], { COORD_API_KEY: client.key });
    await untilStatus(client, job.id, "completed");
    const followed = await follow;
    expect(followed.code, followed.stderr).toBe(0);
    const streamed = followed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).type);
    expect(streamed.at(-1)).toBe("job.completed.v1");

    const result = await api<{ output: unknown; price: number }>("GET", `/v1/jobs/${job.id}/result`, {
      key: client.key,
    });
    expect(result.body.output).toEqual(input);
    expect(result.body.price).toBe(11);
    const events = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${job.id}/events`, {
      key: client.key,
    });
    expect(events.body.events.map((e) => e.type)).toEqual([
      "job.submitted.v1",
      "job.assigned.v1",
      "job.started.v1",
      "job.progress.v1",
      "job.completed.v1",
    ]);

    agent.controller.abort();
    const summary = await agent.done;
    expect(summary).toMatchObject({ claimed: 1, completed: 1, failed: 0, abandoned: 0, drained: true });
    expect(agent.saw("miner.drained")).toBe(true);
    const miners = await api<{ miners: { id: string; status: string }[] }>("GET", "/v1/miners", {
      key: minerAccount.key,
    });
    expect(miners.body.miners.find((m) => m.id === summary.miner_id)?.status).toBe("draining");
  });

  it("a job cancelled while the reference miner runs it is abandoned", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    const agent = startAgent({ key: minerAccount.key, region });

    const job = await submit(client, { input: { sleep_ms: 5000 }, constraints });
    await untilStatus(client, job.id, "running");
    const runningSince = Date.now();
    const cancelled = await api<Job>("POST", `/v1/jobs/${job.id}/cancel`, { key: client.key });
    expect(cancelled.body.status).toBe("cancelled");

    // The next heartbeat (every second in tests) names the claim token; the agent aborts the job.
    await eventually(async () => agent.saw("job.abandoned", job.id), 5000);
    expect(agent.logs.find((l) => l.event === "job.stop" && l.job_id === job.id)?.reason).toBe("cancelled");
    expect(Date.now() - runningSince).toBeLessThan(4500);

    // Past the time the echo would have finished: no result was posted, the job stays cancelled.
    await new Promise((r) => setTimeout(r, Math.max(0, 5500 - (Date.now() - runningSince))));
    const after = await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key });
    expect(after.body.status).toBe("cancelled");
    const events = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${job.id}/events`, {
      key: client.key,
    });
    expect(events.body.events.map((e) => e.type)).not.toContain("job.completed.v1");
    expect(agent.saw("job.completed", job.id)).toBe(false);

    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, completed: 0, abandoned: 1, drained: true });
  });

  it("input.fail makes the reference miner report that failure", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    const agent = startAgent({ key: minerAccount.key, region });

    const job = await submit(client, {
      input: { fail: { code: "oom", message: "out of memory", retryable: false } },
      constraints,
    });
    const failed = await untilStatus(client, job.id, "failed");
    expect(failed.error).toMatchObject({ code: "oom", message: "out of memory", retryable: false });

    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, failed: 1, completed: 0 });
  });

  it("the reference miner runs jobs concurrently, never more than its concurrency", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const jobs = await Promise.all(
      Array.from({ length: 3 }, (_, i) => submit(client, { input: { i, sleep_ms: 1500 }, constraints })),
    );
    const minerAccount = await createAccount("miner");
    const agent = startAgent({ key: minerAccount.key, region, concurrency: 2 });
    for (const job of jobs) await untilStatus(client, job.id, "completed", 20_000);

    let held = 0;
    let most = 0;
    for (const l of agent.logs) {
      if (l.event === "job.claimed") most = Math.max(most, ++held);
      if (l.event === "job.completed") held--;
    }
    expect(most).toBe(2);
    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 3, completed: 3 });
  });

  it("the reference miner told by a poll that it is offline heartbeats at once and takes the waiting job", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    // The network drops the agent's heartbeats until a poll has told it that it is offline (and only then).
    let toldOffline = false;
    let dropped = 0;
    const partitioned: typeof fetch = async (input, init) => {
      const path = new URL(String(input instanceof Request ? input.url : input)).pathname;
      if (path === "/v1/miners/heartbeat" && !toldOffline) {
        dropped++;
        throw new TypeError("fetch failed (test: heartbeats cut off)");
      }
      const res = await fetch(input, init);
      if (path === "/v1/miners/poll" && res.headers.get("coord-miner-status") === "offline")
        toldOffline = true;
      return res;
    };
    const agent = startAgent({ key: minerAccount.key, region, waitSeconds: 1, fetch: partitioned });
    await eventually(() => Promise.resolve(toldOffline), 20_000);
    const job = await submit(client, { input: { after: "offline" }, constraints });
    await untilStatus(client, job.id, "completed");
    expect(dropped).toBeGreaterThan(0);
    const offline = agent.logs.findIndex((l) => l.event === "miner.offline");
    expect(offline).toBeGreaterThanOrEqual(0);
    expect(agent.logs[offline]?.hint).toMatch(/heartbeat/);
    expect(agent.logs.slice(offline).some((l) => l.event === "miner.online")).toBe(true);
    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, completed: 1 });
  }, 40_000);

  it("with max_jobs the reference miner stops by itself once its jobs are done", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    const job = await submit(client, { input: { one: 1 }, constraints });
    const summary = await startAgent({ key: minerAccount.key, region, maxJobs: 1 }).done;
    expect(summary).toMatchObject({ claimed: 1, completed: 1, drained: true });
    await untilStatus(client, job.id, "completed");
  });

  it("coord miner run drains and exits 0 on SIGTERM, finishing the job it holds", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const minerAccount = await createAccount("miner");
    let job: Job | undefined;
    let signalled = false;
    const run = coord(
      ["miner", "run", "--name", `cli-${region}`, "--services", "echo", "--region", region, "--json"],
      { COORD_API_KEY: minerAccount.key },
      (stderr, child) => {
        if (!job && stderr.includes('"event":"miner.registered"')) {
          job = {} as Job;
          void submit(client, { input: { sleep_ms: 1500 }, constraints }).then((j) =>
            Object.assign(job as Job, j),
          );
        }
        if (!signalled && stderr.includes('"event":"job.claimed"')) {
          signalled = true;
          child.kill("SIGTERM");
        }
      },
    );
    const out = await run;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain('"event":"miner.drained"');
    expect(JSON.parse(out.stdout)).toMatchObject({ claimed: 1, completed: 1, drained: true });
    const done = await api<Job>("GET", `/v1/jobs/${job?.id}`, { key: client.key });
    expect(done.body.status).toBe("completed");
  });
});

describe("the coord command", () => {
  it("coord jobs submit prints the job as JSON", async () => {
    const { constraints } = isolated();
    const client = await fundedClient();
    const out = await coord(
      [
        "jobs",
        "submit",
        "echo",
        "--input",
        '{"hello":"cli"}',
        "--priority",
        "7",
        "--constraints",
        JSON.stringify(constraints),
        "--json",
      ],
      { COORD_API_KEY: client.key },
    );
    expect(out.code, out.stderr).toBe(0);
    const job = JSON.parse(out.stdout);
    expect(job).toMatchObject({ status: "queued", service: "echo", priority: 7, constraints });
    expect(job.id).toMatch(/^job_/);

    const got = await coord(["jobs", "get", job.id, "--json", "--key", client.key]);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: job.id, status: "queued" });
    const cancelled = await coord(["jobs", "cancel", job.id, "--json", "--key", client.key]);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ id: job.id, status: "cancelled" });
    const result = await coord(["jobs", "result", job.id, "--key", client.key]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("cancelled");
  });

  it("a CLI error names the field", async () => {
    const client = await fundedClient();
    const out = await coord(["jobs", "submit", "echo", "--input", "{}", "--priority", "42"], {
      COORD_API_KEY: client.key,
    });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("body.priority");
    expect(out.stdout).toBe("");

    const notNumber = await coord(["jobs", "submit", "echo", "--priority", "high"], {
      COORD_API_KEY: client.key,
    });
    expect(notNumber.code).toBe(1);
    expect(notNumber.stderr).toContain("--priority");
    expect(notNumber.stderr).toContain("body.priority");
  });

  it("coord jobs list --all follows cursors and reports progress on stderr", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(client, { input: { i }, constraints })).id);
    const out = await coord(["jobs", "list", "--limit", "1", "--all", "--json"], {
      COORD_API_KEY: client.key,
    });
    expect(out.code, out.stderr).toBe(0);
    const body = JSON.parse(out.stdout);
    expect(body.jobs.map((j: Job) => j.id).sort()).toEqual(ids.sort());
    expect(body.next_cursor).toBeNull();
    expect(out.stderr).toContain("following the cursor");

    const table = await coord(["jobs", "list", "--status", "queued"], { COORD_API_KEY: client.key });
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+STATUS\s+SERVICE/);
    expect(table.stdout).toContain(ids[0]);
  });

  it("coord admin creates an account, mints its key and credits it; coord account shows the balance", async () => {
    const admin = { COORD_API_KEY: stack.adminKey };
    const created = await coord(
      ["admin", "accounts", "create", "--name", "cli-co", "--kind", "client", "--json"],
      admin,
    );
    expect(created.code, created.stderr).toBe(0);
    const account = JSON.parse(created.stdout);
    expect(account).toMatchObject({ name: "cli-co", kind: "client" });

    const minted = await coord(["admin", "keys", "create", account.id, "--json"], admin);
    expect(minted.code, minted.stderr).toBe(0);
    const { key } = JSON.parse(minted.stdout);
    expect(key).toMatch(/^ck_/);

    const credited = await coord(
      ["admin", "adjust", account.id, "--amount", "5000", "--reason", "cli test", "--json"],
      admin,
    );
    expect(credited.code, credited.stderr).toBe(0);

    const balance = await coord(["account", "--json"], { COORD_API_KEY: key });
    expect(JSON.parse(balance.stdout).balance).toEqual({ available: 5000, held: 0 });
    const ledger = await coord(["account", "ledger", "--json"], { COORD_API_KEY: key });
    expect(JSON.parse(ledger.stdout).items[0]).toMatchObject({ kind: "adjustment", delta_available: 5000 });
    const human = await coord(["account"], { COORD_API_KEY: key });
    expect(human.stdout).toMatch(/available\s+5000/);
  });

  it("coord services lists the registry and shows a service", async () => {
    const listed = await coordInProcess(["services", "list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).items.map((s: { id: string }) => s.id)).toContain("echo");
    const shown = await coordInProcess(["services", "show", "echo", "--json"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: "echo", category: "test" });
    const missing = await coordInProcess(["services", "show", "no-such-service"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not_found");
  });

  it("coord help lists every command and each command has its own help", async () => {
    const help = await coordInProcess(["help"]);
    expect(help.code).toBe(0);
    for (const cmd of [
      "start",
      "jobs submit",
      "jobs list",
      "services show",
      "account ledger",
      "miner run",
      "receipts verify",
    ]) {
      expect(help.stdout).toContain(`coord ${cmd}`);
    }
    const sub = await coordInProcess(["jobs", "submit", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--idempotency-key");
    expect(sub.stdout).toContain("Examples:");
    expect((await coordInProcess(["help", "admin", "adjust"])).stdout).toContain("--amount");
  });

  it("coord refuses unknown commands, foreign options and a missing key", async () => {
    const unknown = await coordInProcess(["jobs", "frobnicate"]);
    expect(unknown.code).toBe(1);
    const foreign = await coordInProcess(["jobs", "get", "job_x", "--priority", "3", "--key", "ck_x"]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain("takes no --priority");
    const keyless = await coordInProcess(["jobs", "list"]);
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toContain("COORD_API_KEY");
    const missingArg = await coordInProcess(["jobs", "get", "--key", "ck_x"]);
    expect(missingArg.stderr).toContain("missing <job_id>");
  });
});

describe("coord miner run's GPU detection", () => {
  it("registers the GPUs nvidia-smi reports when none are declared (a stand-in nvidia-smi here)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "coord-smi-"));
    try {
      // A STAND-IN for NVIDIA's nvidia-smi (no driver here): it answers the query the miner makes, in its format.
      const smi = join(dir, "nvidia-smi");
      writeFileSync(
        smi,
        '#!/bin/sh\nprintf "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15\\nNVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15\\n"\n',
        { mode: 0o755 },
      );
      const account = await createAccount("miner");
      const name = `smi-${Math.random().toString(36).slice(2, 8)}`;
      const out = await coordInProcess(
        ["miner", "run", "--name", name, "--services", "echo", "--once", "--wait-seconds", "0"],
        { COORD_API_KEY: account.key, COORD_NVIDIA_SMI: smi },
      );
      expect(out.code, out.stderr).toBe(0);
      expect(out.stderr).toContain("detected GPUs: 2 x NVIDIA H100 80GB HBM3 (81559 MiB)");
      const listed = await api<{ miners: { name: string; gpus: unknown; driver_version: string | null }[] }>(
        "GET",
        "/v1/miners",
        { key: account.key },
      );
      expect(listed.body.miners.find((m) => m.name === name)).toMatchObject({
        gpus: [{ model: "NVIDIA H100 80GB HBM3", vram_mb: 81559, count: 2 }],
        driver_version: "550.54.15",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("coord receipts verify, offline", () => {
  it("checks a receipt file against pinned keys without a single request; without them it says to pin them", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints, input: { offline: true } });
    const claimed = (await pollJobs(miner, { wait_seconds: 5 })).jobs.find((j) => j.job_id === sub.body.id);
    const done = await minerCall(miner, sub.body.id, "result", {
      claim_token: claimed?.claim_token,
      output: { offline: true },
    });
    expect(done.status).toBe(200);
    const doc = (
      await api<{ receipt: Record<string, unknown> }>("GET", `/v1/jobs/${sub.body.id}/receipt`, {
        key: client.key,
      })
    ).body;
    const published = (await api<{ keys: unknown[] }>("GET", "/v1/receipts/keys")).body;
    const dir = mkdtempSync(join(tmpdir(), "coord-offline-"));
    try {
      const file = join(dir, "receipt.json");
      const keys = join(dir, "keys.json");
      const bareKeys = join(dir, "bare-keys.json");
      const changed = join(dir, "changed.json");
      writeFileSync(file, JSON.stringify(doc));
      writeFileSync(keys, JSON.stringify(published));
      writeFileSync(bareKeys, JSON.stringify(published.keys));
      writeFileSync(changed, JSON.stringify({ ...doc, receipt: { ...doc.receipt, amount: 1 } }));
      // No network at all: every request fails (and is counted), and the URL is one nobody listens on.
      const requests: string[] = [];
      const unplugged: typeof fetch = async (input) => {
        requests.push(String(input instanceof Request ? input.url : input));
        throw new TypeError("fetch failed");
      };
      const run = (args: string[], stdin?: string) =>
        coordWithIO(args, {
          env: { COORD_URL: "http://127.0.0.1:9", XDG_CONFIG_HOME: dir },
          fetch: unplugged,
          ...(stdin !== undefined ? { stdin: async () => stdin } : {}),
        });

      const valid = await run(["receipts", "verify", file, "--keys", keys, "--json"]);
      expect(valid.code, valid.stderr).toBe(0);
      expect(JSON.parse(valid.stdout)).toMatchObject({ valid: true, receipt_id: doc.receipt.receipt_id });
      const piped = await run(["receipts", "verify", "-", "--keys", bareKeys], JSON.stringify(doc));
      expect(piped.code, piped.stderr).toBe(0);
      expect(piped.stdout).toMatch(/^valid\s+yes$/m);
      const tampered = await run(["receipts", "verify", changed, "--keys", keys]);
      expect(tampered.code).toBe(2);
      expect(tampered.stdout).toContain("bad_signature");
      expect(requests).toEqual([]);

      const unpinned = await run(["receipts", "verify", file]);
      expect(unpinned.code).toBe(1);
      expect(unpinned.stderr).toContain("cannot reach the coordinator at http://127.0.0.1:9");
      expect(unpinned.stderr).toContain("--keys FILE");
      expect(requests.length).toBeGreaterThan(0);
      const notKeys = await run(["receipts", "verify", file, "--keys", file]);
      expect(notKeys.code).toBe(1);
      expect(notKeys.stderr).toContain(`--keys ${file} holds no published keys`);
      const missing = await run(["receipts", "verify", join(dir, "nope.json"), "--keys", keys]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`cannot read ${join(dir, "nope.json")}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { type MinerSummary, runMiner } from "../cli/miner/agent.ts";
import { api, coordWithIO, createAccount, fundedClient, isolated, stack } from "./fixture.ts";

/*
 * Following a job from the command line (`jobs submit --wait`, `jobs watch`) on the real local stack, with the
 * reference miner running the jobs in-process: plain progress lines off a terminal, live frames on one (forced
 * through the IO), JSON lines for scripts, and the exit status of the job's end.
 */

type Job = { id: string; status: string; version?: number };

/** `coord <args>` in-process, as a terminal or not. */
function coord(
  args: string[],
  opts: { key?: string; isTTY?: boolean; columns?: number; fetch?: typeof fetch } = {},
) {
  return coordWithIO(args, {
    env: {
      COORD_URL: stack.url,
      XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME,
      ...(opts.key ? { COORD_API_KEY: opts.key } : {}),
    },
    isTTY: opts.isTTY,
    columns: opts.columns,
    fetch: opts.fetch,
  });
}

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

/** The reference miner in its own region, stopped (drained) after the test. */
async function miner(region: string) {
  const account = await createAccount("miner");
  const controller = new AbortController();
  const done: Promise<MinerSummary> = runMiner({
    url: stack.url,
    key: account.key,
    name: `watch-${region}`,
    services: ["echo"],
    region,
    transport: "poll",
    waitSeconds: 1,
    signal: controller.signal,
    log: () => {},
  });
  done.catch(() => {});
  stops.push(() => {
    controller.abort();
    return done.catch(() => {});
  });
}

/** Lines that say the same thing (elapsed time aside) never come twice in a row. */
function withoutTime(line: string) {
  return line.replace(/ \(\d+:\d{2}(:\d{2})?\)$/, "");
}

/**
 * `coord jobs submit echo --input <input> --wait 60` by a funded client, with a reference miner in the job's own
 * region to run it: what every `--wait` test does before asserting on how the wait was shown.
 */
async function submitWait(
  input: Record<string, unknown>,
  terminal: { isTTY?: boolean; columns?: number } = {},
  extra: string[] = [],
) {
  const { region, constraints } = isolated();
  const client = await fundedClient();
  await miner(region);
  return coord(
    [
      ...["jobs", "submit", "echo", "--input", JSON.stringify(input)],
      ...["--constraints", JSON.stringify(constraints), "--wait", "60", ...extra],
    ],
    { key: client.key, ...terminal },
  );
}

describe("coord jobs submit --wait", () => {
  it("off a terminal prints a plain line per change (queued, progress, completed) on stderr and exits 0", async () => {
    const out = await submitWait({ hello: "progress", sleep_ms: 2500 });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^status\s+completed$/m);
    const id = /^id\s+(job_\S+)$/m.exec(out.stdout)?.[1];
    expect(id).toBeDefined();
    const lines = out.stderr.trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(new RegExp(`^${id} \\S+.* \\(\\d+:\\d{2}\\)$`));
    // The submit's own answer first: queued, or assigned already when the miner was waiting for work.
    expect(lines[0]).toMatch(new RegExp(`^${id} (queued|assigned) \\(`));
    // The echo reports progress every second: 1000 of 2500 ms (40%), 2000 (80%), each a line of its own.
    expect(lines.some((l) => / running 40% slept 1000 of 2500 ms /.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/ completed 100%/);
    for (let i = 1; i < lines.length; i++)
      expect(withoutTime(lines[i] as string)).not.toBe(withoutTime(lines[i - 1] as string));
    expect(out.stderr).not.toContain("\r");
  });

  it("on a terminal redraws a spinner, bar, percentage and message in place, ending on the completed frame", async () => {
    const out = await submitWait({ sleep_ms: 1500 }, { isTTY: true, columns: 100 });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^status\s+completed$/m);
    const frames = out.stderr.split("\r\u001b[2K");
    expect(frames[0]).toBe("");
    const drawn = frames.slice(1);
    expect(drawn[0]).toMatch(/^\S (queued|assigned) /);
    const progress = drawn.find((f) => f.includes("slept 1000 of 1500 ms"));
    expect(progress).toMatch(/^\S running +\[█{13}░{7}\] {2}66% {2}slept 1000 of 1500 ms {2}\d+:\d{2}$/);
    expect(drawn.at(-1)).toMatch(/^✔ completed +\[█{20}\] 100% .*\d+:\d{2}\n$/);
    // One line, redrawn: the only newline ends the last frame.
    expect(out.stderr.indexOf("\n")).toBe(out.stderr.length - 1);
    for (const f of drawn) expect(f.replace(/\n$/, "").length).toBeLessThanOrEqual(99);
  });

  it("with --json prints only the final job as JSON, and no progress", async () => {
    const out = await submitWait({ json: true, sleep_ms: 1200 }, { isTTY: true }, ["--json"]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ status: "completed", service: "echo", progress: 1 });
    expect(out.stderr).toBe("");
  });
});

describe("coord jobs watch", () => {
  it("follows a job to its failure, prints the error and exits 1", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const sub = await api<Job>("POST", "/v1/jobs", {
      key: client.key,
      body: {
        service: "echo",
        input: { sleep_ms: 1200, fail: { code: "oom", message: "out of memory", retryable: false } },
        constraints,
      },
    });
    expect(sub.status).toBe(201);
    const watching = coord(["jobs", "watch", sub.body.id], { key: client.key });
    await miner(region);
    const out = await watching;
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^status\s+failed$/m);
    expect(out.stdout).toContain('"code":"oom"');
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^${sub.body.id} queued`));
    expect(lines.at(-1)).toMatch(new RegExp(`^${sub.body.id} failed `));
  });

  it("exits 0 for a completed job; with --json one JSON line per snapshot, then the result", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const input = { watched: "json", sleep_ms: 1200 };
    const sub = await api<Job>("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input, constraints },
    });
    const watching = coord(["jobs", "watch", sub.body.id, "--json"], { key: client.key });
    await miner(region);
    const out = await watching;
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toBe("");
    const docs = out.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const snapshots = docs.slice(0, -1);
    expect(snapshots.length).toBeGreaterThanOrEqual(2);
    for (const s of snapshots) expect(s.id).toBe(sub.body.id);
    const versions = snapshots.map((s) => Number(s.version));
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
    expect(snapshots[0]?.status).toBe("queued");
    expect(snapshots.at(-1)?.status).toBe("completed");
    expect(docs.at(-1)).toMatchObject({ job_id: sub.body.id, status: "completed", output: input });

    // Watching a job that already ended answers at once, the same way.
    const again = await coord(["jobs", "watch", sub.body.id], { key: client.key });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual(input);
  });

  it("keeps following through a connection that drops: the job's end still decides", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const input = { through: "drops", sleep_ms: 1500 };
    const sub = await api<Job>("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input, constraints },
    });
    // After the first snapshot the network drops the next six reads of the job in a row (more than one request's
    // own retries), then comes back.
    let reads = 0;
    let dropped = 0;
    const flaky: typeof fetch = async (input, init) => {
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (path === `/v1/jobs/${sub.body.id}` && reads++ >= 1 && dropped < 6) {
        dropped++;
        throw new TypeError("fetch failed (test: connection dropped)");
      }
      return fetch(input, init);
    };
    const watching = coord(["jobs", "watch", sub.body.id], { key: client.key, fetch: flaky });
    await miner(region);
    const out = await watching;
    expect(out.code, out.stderr).toBe(0);
    expect(dropped).toBe(6);
    expect(JSON.parse(out.stdout)).toEqual(input);
    expect(out.stderr).toContain("connection lost; following again in");
    expect(out.stderr.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^${sub.body.id} completed 100%`));
  });

  it("an unknown job is a plain error, not a wait", async () => {
    const client = await fundedClient();
    const out = await coord(["jobs", "watch", "job_00000000000000000000000000"], { key: client.key });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("not_found");
  });
});

import { createServer, type Socket, connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Logger, type MinerOptions, type MinerSummary, runMiner } from "../cli/miner/agent.ts";
import type { Executor } from "../cli/miner/executors.ts";
import { api, createAccount, eventually, fundedClient, isolated, stack } from "./fixture.ts";

/*
 * The reference miner on `--transport ws`, against the real local stack (3 s leases, 1 s heartbeats). The socket's
 * troubles are made in the network, not in the agent: a TCP proxy between the agent and the stack can cut the
 * doorbell's connection (and refuse new ones), or hold back what the agent sends on it while the coordinator's
 * frames still flow. The agent's HTTP calls go through the same proxy on connections of their own, untouched.
 */

interface LogLine {
  level: string;
  event: string;
  at: number;
  [k: string]: unknown;
}

interface Call {
  path: string;
  at: number;
  body: Record<string, unknown>;
}

type Job = { id: string; status: string; attempt: number };

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  // A failed test leaves its agent and proxy behind: stop them (an agent drains; its jobs are the test's own).
  await Promise.all(cleanups.splice(0).map((c) => c().catch(() => {})));
});

/** The reference miner in-process on the doorbell, its logs and HTTP calls recorded. */
function startAgent(opts: Partial<MinerOptions> & { key: string; region: string }) {
  const controller = new AbortController();
  const logs: LogLine[] = [];
  const calls: Call[] = [];
  const log: Logger = (level, event, fields = {}) => logs.push({ level, event, at: Date.now(), ...fields });
  const recording: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    let body: Record<string, unknown> = {};
    try {
      if (typeof init?.body === "string") body = JSON.parse(init.body) as Record<string, unknown>;
    } catch {
      // not JSON: not one of the agent's calls worth looking at
    }
    calls.push({ path: url.pathname, at: Date.now(), body });
    return fetch(input, init);
  };
  const done: Promise<MinerSummary> = runMiner({
    url: stack.url,
    name: `bell-${Math.random().toString(36).slice(2, 10)}`,
    services: ["echo"],
    transport: "ws",
    signal: controller.signal,
    log,
    fetch: recording,
    ...opts,
  });
  // Handled here so that a test failing before it awaits `done` leaves no unhandled rejection; awaiters still see it.
  done.catch(() => {});
  cleanups.push(() => {
    controller.abort();
    return done;
  });
  const find = (event: string, jobId?: string, from = 0) =>
    logs.slice(from).find((l) => l.event === event && (jobId === undefined || l.job_id === jobId));
  return {
    controller,
    logs,
    calls,
    done,
    find,
    saw: (event: string, jobId?: string) => find(event, jobId) !== undefined,
    /** The first log line `event` (of `jobId`) from index `from` on, once it is there. */
    until: (event: string, jobId?: string, from = 0) =>
      eventually(async () => find(event, jobId, from), 8000, 20),
    heartbeatsSince: (at: number) => calls.filter((c) => c.path === "/v1/miners/heartbeat" && c.at >= at),
  };
}

/**
 * A TCP proxy in front of the stack that knows which connection is the doorbell (a `GET /v1/miners/connect` that
 * asks to upgrade). `cut()` drops it and refuses new ones until `restore()`; `hold()` stops forwarding what the
 * agent sends on it (the coordinator's frames still reach the agent) until `release()`.
 */
async function bellProxy(target: string) {
  const { hostname, port } = new URL(target);
  const bells = new Set<{ client: Socket; upstream: Socket }>();
  const sockets = new Set<Socket>();
  let blocked = false;
  let held = false;
  let upgrades = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };
  const server = createServer((client) => {
    track(client);
    client.on("error", () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (!head.includes("\r\n\r\n") && head.length < 65_536) return;
      client.off("data", onData);
      client.pause();
      const text = head.toString("latin1");
      const isBell = text.startsWith("GET /v1/miners/connect") && /\r\nupgrade:\s*websocket/i.test(text);
      if (isBell && blocked) {
        client.destroy();
        return;
      }
      const upstream = tcpConnect(Number(port), hostname);
      track(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        s.on("error", end);
        s.on("close", end);
      }
      upstream.write(head);
      upstream.pipe(client);
      if (isBell) {
        upgrades++;
        const pair = { client, upstream };
        bells.add(pair);
        client.on("close", () => bells.delete(pair));
      }
      if (!(isBell && held)) client.pipe(upstream);
    };
    client.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the proxy has no port");
  const proxy = {
    url: `http://127.0.0.1:${address.port}`,
    get upgrades() {
      return upgrades;
    },
    cut() {
      blocked = true;
      for (const b of bells) {
        b.client.destroy();
        b.upstream.destroy();
      }
    },
    restore() {
      blocked = false;
    },
    hold() {
      held = true;
      for (const b of bells) {
        b.client.unpipe(b.upstream);
        b.client.pause();
      }
    },
    release() {
      held = false;
      for (const b of bells) b.client.pipe(b.upstream);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  cleanups.push(proxy.close);
  return proxy;
}

async function submit(client: { key: string }, body: Record<string, unknown>) {
  const res = await api<Job>("POST", "/v1/jobs", { key: client.key, body: { service: "echo", ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

async function untilStatus(client: { key: string }, id: string, status: string, timeoutMs = 8000) {
  return eventually(async () => {
    const res = await api<Job>("GET", `/v1/jobs/${id}?wait=1`, { key: client.key });
    return res.body.status === status ? res.body : undefined;
  }, timeoutMs);
}

async function eventTypes(client: { key: string }, id: string) {
  const res = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${id}/events`, { key: client.key });
  return res.body.events.map((e) => e.type);
}

/** An executor that works until it is stopped, reporting no progress: its lease rides on heartbeats alone. */
const untilStopped: Executor = ({ signal }) =>
  new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

describe("the reference miner on the doorbell", () => {
  it("claims a job on the socket's word without waiting, heartbeats over the socket and completes it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const agent = startAgent({ key: account.key, region });
    const connected = await agent.until("transport.connected");
    expect(connected).toMatchObject({ transport: "ws" });
    expect(String(connected.url)).toMatch(/^ws:\/\/.+\/v1\/miners\/connect$/);

    const input = { hello: "doorbell", sleep_ms: 2000 };
    const job = await submit(client, { input, constraints });
    await untilStatus(client, job.id, "completed");
    const result = await api<{ output: unknown }>("GET", `/v1/jobs/${job.id}/result`, { key: client.key });
    expect(result.body.output).toEqual(input);

    expect(agent.find("job.claimed", job.id)).toMatchObject({ transport: "ws", attempt: 1 });
    // The socket replaced the long-poll: every poll was a claim without waiting, prompted by the socket (a ring, or
    // a welcome or heartbeat answer saying that work waits).
    const polls = agent.calls.filter((c) => c.path === "/v1/miners/poll");
    expect(polls.length).toBeGreaterThan(0);
    expect(polls.map((p) => p.body.wait_seconds)).toEqual(polls.map(() => 0));
    // While it held the job it heartbeat over the socket, naming the job; not over HTTP.
    const claimedAt = agent.find("job.claimed", job.id)?.at ?? 0;
    expect(
      agent.logs.some((l) => l.event === "miner.heartbeat" && l.transport === "ws" && l.jobs === 1),
    ).toBe(true);
    expect(agent.heartbeatsSince(claimedAt)).toEqual([]);
    expect(agent.saw("transport.fell_back")).toBe(false);

    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, completed: 1, abandoned: 0, drained: true });
  });

  it("falls back to HTTP when its socket is cut mid-job, loses nothing, and reconnects", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const proxy = await bellProxy(stack.url);
    const agent = startAgent({
      key: account.key,
      region,
      url: proxy.url,
      concurrency: 2,
      // Short long-polls and reconnect pauses, so that each step takes well under a second.
      waitSeconds: 1,
      reconnect: { baseMs: 100, capMs: 400 },
    });
    await agent.until("transport.connected");

    // A job longer than a lease, claimed on the socket's word; then the socket dies under it.
    const long = await submit(client, { input: { sleep_ms: 3500 }, constraints });
    await untilStatus(client, long.id, "running");
    expect(agent.find("job.claimed", long.id)).toMatchObject({ transport: "ws" });
    const cutAt = Date.now();
    proxy.cut();
    const fellBack = await agent.until("transport.fell_back");
    expect(fellBack).toMatchObject({ transport: "http", held: 1 });

    // On HTTP: a new job comes by the long-poll, and the held job's heartbeats go on over HTTP.
    const quick = await submit(client, { input: { n: 1 }, constraints });
    await untilStatus(client, quick.id, "completed");
    expect(agent.find("job.claimed", quick.id)).toMatchObject({ transport: "http" });
    const httpBeats = agent.heartbeatsSince(cutAt);
    expect(httpBeats.length).toBeGreaterThan(0);
    expect(JSON.stringify(httpBeats.map((b) => b.body.jobs))).toContain(long.id);
    expect(agent.saw("poll.long_poll_started")).toBe(true);
    // Reconnects are tried meanwhile, and fail on the cut network.
    await agent.until("transport.reconnect_failed");

    // The network heals: the agent reconnects, lets its in-flight long-poll come home, and is rung again.
    const healedFrom = agent.logs.length;
    proxy.restore();
    expect(await agent.until("transport.reconnected", undefined, healedFrom)).toMatchObject({
      transport: "ws",
    });
    await agent.until("poll.long_poll_stopped", undefined, healedFrom);
    const after = await submit(client, { input: { n: 2 }, constraints });
    await untilStatus(client, after.id, "completed");
    expect(agent.find("job.claimed", after.id)).toMatchObject({ transport: "ws" });

    // The job that straddled both switches finished on its first attempt: its lease never lapsed.
    expect(await untilStatus(client, long.id, "completed")).toMatchObject({ attempt: 1 });
    const longEvents = await eventTypes(client, long.id);
    expect(longEvents).not.toContain("job.requeued.v1");
    expect(longEvents.filter((t) => t === "job.assigned.v1")).toHaveLength(1);
    expect(proxy.upgrades).toBe(2);
    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 3, completed: 3, abandoned: 0, drained: true });
  });

  it("aborts a running job on a stop order pushed over the socket, and reports nothing for it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const proxy = await bellProxy(stack.url);
    const agent = startAgent({ key: account.key, region, url: proxy.url, executors: { echo: untilStopped } });
    await agent.until("transport.connected");

    const job = await submit(client, { input: {}, constraints });
    await untilStatus(client, job.id, "running");
    const claimedAt = agent.find("job.claimed", job.id)?.at ?? 0;
    // Past a whole lease on socket heartbeats alone: the executor reports no progress, no HTTP heartbeat goes out.
    await pause(3500);
    expect((await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key })).body).toMatchObject({
      status: "running",
      attempt: 1,
    });
    expect(agent.heartbeatsSince(claimedAt)).toEqual([]);

    // From here on nothing the agent sends on the socket arrives, heartbeats included: only a push can stop it.
    proxy.hold();
    const cancelledAt = Date.now();
    expect((await api("POST", `/v1/jobs/${job.id}/cancel`, { key: client.key })).status).toBe(200);
    await agent.until("job.abandoned", job.id);
    expect(Date.now() - cancelledAt).toBeLessThan(3000);
    proxy.release();
    expect(agent.find("job.stop", job.id)).toMatchObject({
      reason: "cancelled",
      via: "push",
      transport: "ws",
    });

    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, completed: 0, failed: 0, abandoned: 1 });
    expect((await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key })).body.status).toBe("cancelled");
    const types = await eventTypes(client, job.id);
    expect(types).not.toContain("job.completed.v1");
    expect(types).not.toContain("job.failed.v1");
  });

  it("does not retry a refused upgrade: it says so and works over HTTP", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    // A socket address the coordinator refuses (404, problem+json), as a coordinator without a doorbell would.
    const agent = startAgent({
      key: account.key,
      region,
      doorbellUrl: `${stack.url.replace(/^http/, "ws")}/v1/miners/no-doorbell-here`,
      reconnect: { baseMs: 50, capMs: 100 },
    });
    expect(await agent.until("transport.refused")).toMatchObject({ transport: "http", status: 404 });
    const job = await submit(client, { input: { over: "http" }, constraints });
    await untilStatus(client, job.id, "completed");
    expect(agent.find("job.claimed", job.id)).toMatchObject({ transport: "http" });
    await pause(300);
    expect(agent.saw("transport.reconnect_failed")).toBe(false);
    expect(agent.saw("transport.connected")).toBe(false);
    agent.controller.abort();
    expect(await agent.done).toMatchObject({ claimed: 1, completed: 1 });
  });
});

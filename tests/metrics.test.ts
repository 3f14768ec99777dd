import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMiner } from "../cli/miner/agent.ts";
import { freePort } from "../local/ports.ts";
import { npmStart, stopProcess } from "./npm-start.ts";
import { startReceiver } from "./webhooks-receiver.ts";

/*
 * `GET /metrics` after a scripted workload, asserted to the unit. The counters are process-wide, so this file runs a
 * stack of its own (npm start's entry point, ephemeral, in a child process) where the workload below is the only
 * traffic: lease 3 s, heartbeat 1 s, and a read limit of 20 at once so that refusals are easy to provoke.
 */

let stack: ChildProcess;
let url = "";
let adminKey = "";

beforeAll(async () => {
  const port = await freePort();
  const started = await npmStart({ PORT: String(port), COORD_EPHEMERAL: "1", COORD_RATE_READ: "20/1" });
  stack = started.child;
  adminKey = started.adminKey;
  url = `http://127.0.0.1:${port}`;
}, 90_000);

afterAll(async () => {
  if (stack) await stopProcess(stack);
});

type Obj = Record<string, unknown>;

async function call<T = Obj>(
  method: string,
  path: string,
  key?: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...headers,
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: (text.startsWith("{") ? JSON.parse(text) : {}) as T };
}

async function account(kind: "client" | "miner") {
  const acct = await call<{ id: string }>("POST", "/v1/admin/accounts", adminKey, {
    kind,
    name: `${kind}-m`,
  });
  const key = await call<{ key: string }>("POST", `/v1/admin/accounts/${acct.body.id}/keys`, adminKey, {
    name: "k",
  });
  return { id: acct.body.id, key: key.body.key };
}

/** One sample of the exposition (`name{labels} value`), 0 when the series has no such sample yet. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]] as [string, string]),
    );
    if (
      Object.entries(labels).every(([k, v]) => have[k] === v) &&
      Object.keys(have).length === Object.keys(labels).length
    )
      return Number(m[3]);
  }
  return 0;
}

async function waitStatus(key: string, id: string, status: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const job = await call<{ status: string; version: number }>("GET", `/v1/jobs/${id}?wait=5`, key);
    if (job.body.status === status) return job.body;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${job.body.status}, not ${status}`);
  }
}

describe("GET /metrics", () => {
  it("counts a scripted workload exactly: transitions, latencies, lease lapses, money, receipts, refusals, gauges", async () => {
    const client = await account("client");
    expect(
      (
        await call("POST", `/v1/admin/accounts/${client.id}/adjust`, adminKey, {
          amount: 10_000_000,
          reason: "t",
        })
      ).status,
    ).toBe(201);
    const minerAccount = await account("miner");
    const region = "metrics";
    const submit = async (input: Obj, extra: Obj = {}) => {
      const res = await call<{ id: string }>("POST", "/v1/jobs", client.key, {
        service: "echo",
        input,
        constraints: { regions: [extra.region ?? region] },
        max_price: 100_000,
        ...(extra.webhook_url ? { webhook_url: extra.webhook_url } : {}),
      });
      expect(res.status, res.text).toBe(201);
      return res.body.id;
    };

    // A job claimed by a miner that then goes silent: its lease lapses and it goes back to the queue.
    const silent = await call<{ miner_id: string }>("POST", "/v1/miners/register", minerAccount.key, {
      name: "silent",
      services: ["echo"],
      region,
    });
    const lapsed = await submit({ n: 0 });
    const claimed = await call<{ jobs: { job_id: string }[] }>(
      "POST",
      "/v1/miners/poll",
      minerAccount.key,
      {
        wait_seconds: 5,
      },
      { "x-miner-id": silent.body.miner_id },
    );
    expect(claimed.body.jobs?.[0]?.job_id).toBe(lapsed);
    await waitStatus(client.key, lapsed, "queued");

    // A job nobody can run (no miner in its region) waits in the queue: the gauges see it.
    const waiting = await submit({ n: 9 }, { region: "nowhere" });
    // Long enough that the longest wait reads at least a second.
    await new Promise((r) => setTimeout(r, 1500));
    const before = (await call("GET", "/metrics")).text;
    expect(sample(before, "coord_queue_depth", { service: "echo" })).toBe(2);
    expect(sample(before, "coord_jobs", { status: "queued", service: "echo" })).toBe(2);
    expect(sample(before, "coord_jobs", { status: "queued", service: "ffmpeg.transcode" })).toBe(0);
    expect(sample(before, "coord_oldest_ready_seconds", { service: "echo" })).toBeGreaterThanOrEqual(1);
    expect(sample(before, "coord_oldest_ready_seconds", { service: "ffmpeg.transcode" })).toBe(0);
    expect(sample(before, "coord_lease_lapses_total", { service: "echo" })).toBe(1);
    expect(sample(before, "coord_job_retries_total", { service: "echo", reason: "lease_expired" })).toBe(1);

    // Three more, one with a webhook; a real miner runs all four.
    const receiver = await startReceiver();
    const others = [
      await submit({ n: 1 }),
      await submit({ n: 2 }),
      await submit({ n: 3 }, { webhook_url: receiver.url }),
    ];
    const summary = await runMiner({
      url,
      key: minerAccount.key,
      name: "worker",
      services: ["echo"],
      region,
      prices: { echo: 7 },
      maxJobs: 4,
      log: () => {},
    });
    expect(summary.completed).toBe(4);
    let charged = 0;
    for (const id of [lapsed, ...others]) {
      await waitStatus(client.key, id, "completed");
      charged += Number(
        (await call<{ price: number }>("GET", `/v1/jobs/${id}/result`, client.key)).body.price,
      );
    }
    expect((await call("POST", `/v1/jobs/${waiting}/cancel`, client.key, {})).status).toBe(200);
    await waitStatus(client.key, waiting, "cancelled");

    // Twenty reads at once pass, the rest of thirty are refused.
    const hammer = await account("client");
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => call("GET", "/v1/account", hammer.key)),
    );
    const refused = answers.filter((a) => a.status === 429).length;
    expect(refused).toBeGreaterThan(0);

    // The stream is asynchronous: the counts settle once it has seen every event.
    let text = "";
    const deadline = Date.now() + 20_000;
    do {
      text = (await call("GET", "/metrics")).text;
      if (
        sample(text, "coord_receipts_issued_total") === 4 &&
        sample(text, "coord_job_events_total", { type: "job.cancelled.v1", service: "echo" }) === 1
      )
        break;
      await new Promise((r) => setTimeout(r, 250));
    } while (Date.now() < deadline);
    const jobs = (type: string) => sample(text, "coord_job_events_total", { type, service: "echo" });
    expect(jobs("job.submitted.v1")).toBe(5);
    expect(jobs("job.assigned.v1")).toBe(5);
    expect(jobs("job.completed.v1")).toBe(4);
    expect(jobs("job.requeued.v1")).toBe(1);
    expect(jobs("job.cancelled.v1")).toBe(1);
    expect(sample(text, "coord_job_submit_to_claim_seconds_count", { service: "echo" })).toBe(5);
    expect(sample(text, "coord_job_end_to_end_seconds_count", { service: "echo" })).toBe(4);
    // The lapsed job waited out a 3 s lease before its second claim.
    expect(sample(text, "coord_job_end_to_end_seconds_sum", { service: "echo" })).toBeGreaterThan(3);
    expect(sample(text, "coord_lease_lapses_total", { service: "echo" })).toBe(1);
    expect(sample(text, "coord_money_micro_total", { flow: "charge" })).toBe(charged);
    expect(sample(text, "coord_receipts_issued_total")).toBe(4);
    expect(sample(text, "coord_rate_limited_total", { class: "read" })).toBe(refused);
    expect(sample(text, "coord_queue_depth", { service: "echo" })).toBe(0);
    expect(sample(text, "coord_jobs", { status: "queued", service: "echo" })).toBe(0);
    expect(sample(text, "coord_oldest_ready_seconds", { service: "echo" })).toBe(0);
    // Four receipts issued: each is in the settlement backlog until a batch anchors it and the chain confirms it.
    expect(
      sample(text, "coord_settlement_oldest_pending_seconds", { stage: "unbatched" }),
    ).toBeGreaterThanOrEqual(0);
    expect(sample(text, "coord_dlq_depth", { queue: "webhooks" })).toBe(0);
    const delivered = sample(text, "coord_webhook_deliveries_total", { outcome: "ok" });
    expect(delivered).toBe(receiver.received.length);
    expect(delivered).toBeGreaterThan(0);
    expect(sample(text, "coord_webhook_delivery_seconds_count")).toBe(delivered);
    await receiver.close();
  }, 120_000);

  it("needs an admin key from anything but this machine, and refuses client and miner keys", async () => {
    const client = await account("client");
    const miner = await account("miner");
    expect((await call("GET", "/metrics", client.key)).status).toBe(403);
    expect((await call("GET", "/metrics", miner.key)).status).toBe(403);
    expect((await call("GET", "/metrics", "ak_not_a_key")).status).toBe(401);
    // From this machine no key is needed under npm start, but a key header sent is checked, even an empty one.
    expect((await call("GET", "/metrics")).status).toBe(200);
    expect((await call("GET", "/metrics", undefined, undefined, { "x-api-key": "" })).status).toBe(401);
    const ok = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await ok.text()).toMatch(/# TYPE coord_job_events_total counter/);
  });
});

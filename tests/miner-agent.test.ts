import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type MinerOptions, runMiner } from "../cli/miner/agent.ts";
import type { Executor } from "../cli/miner/executors.ts";
import { writeNewKeyFile } from "../cli/miner/signing.ts";
import { fetchReceiptKeys, verifyReceipt } from "../sdk/receipts.ts";
import { api, createAccount, eventually, fundedClient, isolated, stack } from "./fixture.ts";

/*
 * The reference miner agent's own guarantees, in process against the real local stack (lease 3 s, heartbeat 1 s):
 * leases survive an executor that blocks the event loop (the heartbeat watchdog), results are co-signed with the
 * miner's key, and a result is delivered until the coordinator acknowledges it.
 */

type Job = { id: string; status: string; attempt: number };
type Logged = { event: string; fields: Record<string, unknown> };

async function agent(region: string, extra: Partial<MinerOptions>) {
  const account = await createAccount("miner");
  const logged: Logged[] = [];
  const done = runMiner({
    url: stack.url,
    key: account.key,
    name: `agent-${region}`,
    services: ["echo"],
    region,
    prices: { echo: 10 },
    maxJobs: 1,
    log: (_level, event, fields = {}) => void logged.push({ event, fields }),
    ...extra,
  });
  return { done, logged, saw: (event: string) => logged.some((l) => l.event === event) };
}

async function submit(key: string, constraints: Record<string, unknown>, input: unknown = { n: 1 }) {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: { service: "echo", input, constraints, max_price: 1_000_000 },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const getJob = async (key: string, id: string) => (await api<Job>("GET", `/v1/jobs/${id}`, { key })).body;

/** Spins on this thread for `ms`: no timer, socket or promise of this thread runs meanwhile. */
function blockFor(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // CPU-bound work, as a careless executor would do it.
  }
}

const blocking =
  (ms: number): Executor =>
  async (ctx) => {
    blockFor(ms);
    return ctx.input;
  };

describe("the reference miner agent", () => {
  it("an executor that blocks the event loop for longer than the lease keeps its job: the watchdog heartbeats for it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints);
    const miner = await agent(region, { executors: { echo: blocking(7_000) } });
    const summary = await miner.done;
    expect(summary).toMatchObject({ claimed: 1, completed: 1, abandoned: 0 });
    const final = await getJob(client.key, job.id);
    expect(final).toMatchObject({ status: "completed", attempt: 1 });
    expect(miner.saw("miner.watchdog_heartbeat")).toBe(true);
  });

  it("without the watchdog the same executor loses its lease (what the watchdog is for)", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints);
    const miner = await agent(region, { executors: { echo: blocking(7_000) }, watchdog: false });
    const summary = await miner.done;
    expect(summary).toMatchObject({ claimed: 1, completed: 0, abandoned: 1 });
    const final = await getJob(client.key, job.id);
    expect(final.status).not.toBe("completed");
    expect(miner.saw("miner.watchdog_heartbeat")).toBe(false);
  });

  it("a miner with a signing key registers it and co-signs its result: the receipt carries the signature and verifies", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const signer = writeNewKeyFile(join(mkdtempSync(join(tmpdir(), "coord-key-")), "miner.key"));
    const job = await submit(client.key, constraints, { signed: true });
    const miner = await agent(region, { signer });
    expect(await miner.done).toMatchObject({ completed: 1 });
    const doc = await eventually(async () => {
      const res = await api<{ receipt: { miner_signature: Record<string, unknown> | null } }>(
        "GET",
        `/v1/jobs/${job.id}/receipt`,
        { key: client.key },
      );
      return res.status === 200 ? res.body : undefined;
    });
    expect(doc.receipt.miner_signature).toMatchObject({ public_key: signer.publicKey });
    const verdict = await verifyReceipt(doc, await fetchReceiptKeys(stack.url));
    expect(verdict).toMatchObject({ valid: true, reasons: [] });
  });

  it("a result whose answer is lost is sent again and acknowledged: one completion, counted once", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, { lost: true });
    let dropped = 0;
    // The network between miner and coordinator: the first result reaches the coordinator, its answer never comes back.
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (String(input instanceof Request ? input.url : input).endsWith("/result") && dropped++ === 0) {
        await res.body?.cancel();
        throw new TypeError("fetch failed");
      }
      return res;
    };
    const miner = await agent(region, { fetch: lossy });
    expect(await miner.done).toMatchObject({ claimed: 1, completed: 1, abandoned: 0, failed: 0 });
    expect(dropped).toBeGreaterThanOrEqual(2);
    expect(miner.saw("job.report_acknowledged")).toBe(true);
    expect(await getJob(client.key, job.id)).toMatchObject({ status: "completed", attempt: 1 });
  });

  it("a result the coordinator cannot take yet (503s) is retried until it is taken", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, { busy: true });
    let refused = 0;
    // A proxy in front of the coordinator that answers 503 to the first three results without passing them on.
    const flaky: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith("/result") && refused < 3) {
        refused++;
        return new Response(JSON.stringify({ title: "Service Unavailable", status: 503 }), {
          status: 503,
          headers: { "content-type": "application/problem+json" },
        });
      }
      return fetch(input, init);
    };
    const miner = await agent(region, { fetch: flaky });
    expect(await miner.done).toMatchObject({ completed: 1, abandoned: 0 });
    expect(refused).toBe(3);
    expect(await getJob(client.key, job.id)).toMatchObject({ status: "completed", attempt: 1 });
  });
});

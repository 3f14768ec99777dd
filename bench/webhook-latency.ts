/**
 * Completion -> webhook delivery delay, on the local stack.
 *
 *   npx tsx bench/webhook-latency.ts [--jobs 100] [--concurrency 4]
 *
 * Starts the whole stack in-process (ephemeral, random port, COORD_WEBHOOK_ALLOW_PRIVATE=1), registers a webhook
 * endpoint (job.completed.v1) that points at a local receiver, runs N echo jobs through a miner, and measures for
 * each job the time from its completion (the event's `timestamp`, the coordinator's finish time) to the moment the
 * receiver got the signed `job.completed.v1`. That path: transaction -> table stream -> relay -> bus -> `webhooks`
 * queue -> consumer -> HTTP POST. Prints p50/p90/p99/max and a JSON line.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { startLocalStack } from "../local/stack.ts";
import { verifyWebhook } from "../sdk/webhooks.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "100" },
    concurrency: { type: "string", default: "4" },
  },
});
const JOBS = Number(values.jobs);
const CONCURRENCY = Number(values.concurrency);

process.env.COORD_WEBHOOK_ALLOW_PRIVATE = "1";
process.env.COORD_LOG_LEVEL ??= "ERROR";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

async function main() {
  const stack = await startLocalStack({ ephemeral: true, port: 0, onError: () => {} });
  const received = new Map<string, { at: number; timestamp: string }>();
  let secret = "";
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = Date.now();
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        const event = verifyWebhook(secret, req.headers as Record<string, string>, body);
        if (event.type === "job.completed.v1" && !received.has(event.subject)) {
          received.set(event.subject, { at, timestamp: event.timestamp });
        }
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  const call = async <T = Record<string, unknown>>(
    method: string,
    path: string,
    key: string,
    body?: unknown,
  ) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  };
  const account = async (kind: "client" | "miner") => {
    const a = await call<{ id: string }>("POST", "/v1/admin/accounts", stack.adminKey, {
      name: `bench-${kind}`,
      kind,
    });
    const k = await call<{ key: string }>("POST", `/v1/admin/accounts/${a.body.id}/keys`, stack.adminKey, {});
    return { id: a.body.id, key: k.body.key };
  };

  try {
    const client = await account("client");
    await call("POST", `/v1/admin/accounts/${client.id}/adjust`, stack.adminKey, {
      amount: 1_000_000_000,
      reason: "bench",
    });
    const minerAcct = await account("miner");
    const region = "bench-webhooks";
    const miner = await call<{ miner_id: string }>("POST", "/v1/miners/register", minerAcct.key, {
      name: "bench-miner",
      services: ["echo"],
      concurrency: CONCURRENCY,
      region,
    });
    const minerHeaders = { authorization: `Bearer ${minerAcct.key}`, "content-type": "application/json" };
    const minerCall = (path: string, body: unknown) =>
      fetch(`${stack.url}${path}`, {
        method: "POST",
        headers: { ...minerHeaders, "x-miner-id": miner.body.miner_id },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json().catch(() => ({}))) as Record<string, unknown>,
      }));

    const ep = await call<{ id: string; secret: string }>("POST", "/v1/webhooks/endpoints", client.key, {
      url: receiverUrl,
      event_types: ["job.completed.v1"],
    });
    if (ep.status !== 201) throw new Error(`endpoint: ${ep.status} ${JSON.stringify(ep.body)}`);
    secret = ep.body.secret;

    const completedAt = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < JOBS) {
        next++;
        const sub = await call<{ id: string }>("POST", "/v1/jobs", client.key, {
          service: "echo",
          input: { n: next },
          constraints: { regions: [region] },
        });
        if (sub.status !== 201) throw new Error(`submit: ${sub.status} ${JSON.stringify(sub.body)}`);
        let claim: { job_id: string; claim_token: string } | undefined;
        while (!claim) {
          const polled = await minerCall("/v1/miners/poll", { wait_seconds: 5, max_jobs: 1 });
          const jobs = (polled.body.jobs ?? []) as { job_id: string; claim_token: string }[];
          claim = jobs[0];
        }
        const done = await minerCall(`/v1/miners/${claim.job_id}/result`, {
          claim_token: claim.claim_token,
          output: { ok: true },
        });
        if (done.status !== 200) throw new Error(`result: ${done.status} ${JSON.stringify(done.body)}`);
        completedAt.set(claim.job_id, Date.now());
      }
    };
    const started = Date.now();
    // The miner heartbeats like a real agent (a silent miner is marked offline and gets no work).
    const heartbeat = setInterval(() => void minerCall("/v1/miners/heartbeat", {}).catch(() => {}), 3000);
    let lastCount = -1;
    let lastChange = Date.now();
    const progress = setInterval(() => {
      console.error(`  ... ${completedAt.size}/${JOBS} completed, ${received.size} delivered`);
      if (completedAt.size !== lastCount) {
        lastCount = completedAt.size;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 60_000) {
        console.error("no progress for 60 s: giving up");
        process.exit(1);
      }
    }, 5000);
    await Promise.all(Array.from({ length: CONCURRENCY }, worker)).finally(() => {
      clearInterval(progress);
      clearInterval(heartbeat);
    });
    const deadline = Date.now() + 30_000;
    while (received.size < completedAt.size && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));

    const fromEvent: number[] = [];
    const fromResponse: number[] = [];
    for (const [jobId, r] of received) {
      fromEvent.push(r.at - Date.parse(r.timestamp));
      const done = completedAt.get(jobId);
      if (done !== undefined) fromResponse.push(r.at - done);
    }
    // Where the time goes: event -> delivery created (stream, relay, bus, queue, fan-out) and created -> received.
    const toFanOut: number[] = [];
    const fanOutToReceipt: number[] = [];
    let cursor: string | null = null;
    do {
      const page: {
        status: number;
        body: { items: { subject: string; created_at: string }[]; next_cursor: string | null };
      } = await call(
        "GET",
        `/v1/webhooks/endpoints/${ep.body.id}/deliveries?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        client.key,
      );
      for (const d of page.body.items) {
        const r = received.get(d.subject);
        if (!r) continue;
        toFanOut.push(Date.parse(d.created_at) - Date.parse(r.timestamp));
        fanOutToReceipt.push(r.at - Date.parse(d.created_at));
      }
      cursor = page.body.next_cursor;
    } while (cursor);
    toFanOut.sort((a, b) => a - b);
    fanOutToReceipt.sort((a, b) => a - b);
    fromEvent.sort((a, b) => a - b);
    fromResponse.sort((a, b) => a - b);
    const summary = (xs: number[]) => ({
      p50: percentile(xs, 50),
      p90: percentile(xs, 90),
      p99: percentile(xs, 99),
      max: xs.at(-1) ?? Number.NaN,
    });
    const result = {
      jobs: completedAt.size,
      delivered: received.size,
      concurrency: CONCURRENCY,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      completion_to_delivery_ms: summary(fromEvent),
      result_response_to_delivery_ms: summary(fromResponse),
      event_to_fan_out_ms: summary(toFanOut),
      fan_out_to_receipt_ms: summary(fanOutToReceipt),
    };
    const s = result.completion_to_delivery_ms;
    console.log(
      `webhook latency over ${result.delivered}/${result.jobs} completed jobs (concurrency ${CONCURRENCY}):`,
    );
    console.log(
      `  completion -> delivery: p50 ${s.p50} ms, p90 ${s.p90} ms, p99 ${s.p99} ms, max ${s.max} ms`,
    );
    const r = result.result_response_to_delivery_ms;
    console.log(`  result response -> delivery: p50 ${r.p50} ms, p99 ${r.p99} ms`);
    const f = result.event_to_fan_out_ms;
    const g = result.fan_out_to_receipt_ms;
    console.log(`  of which event -> fan-out (stream, relay, bus, queue): p50 ${f.p50} ms, p99 ${f.p99} ms`);
    console.log(`  and fan-out -> receiver (claim, sign, POST): p50 ${g.p50} ms, p99 ${g.p99} ms`);
    console.log(JSON.stringify(result));
  } finally {
    server.close();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

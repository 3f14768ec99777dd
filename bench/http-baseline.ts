import "./env.ts";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { ddb } from "../core/db/client.ts";
import type { LocalStack } from "../local/stack.ts";
import { numArg } from "./lib/args.ts";
import { call, Http, retryAfterMs, sleep } from "./lib/http.ts";
import * as instrument from "./lib/instrument.ts";
import { fundedClient } from "./lib/setup.ts";
import { benchMain } from "./lib/stack.ts";
import { num, progress, type Summary, summarize, table } from "./lib/stats.ts";

/**
 * HTTP baseline: C requests in flight against a route with no table access beyond a ping (`GET /v1/health`) and
 * DynamoDB-backed routes (`GET /v1/account`, `GET /v1/jobs/{id}`), for T seconds or N requests each. Prints
 * requests/s, client-observed latency percentiles, server time and DynamoDB capacity per request.
 */

export interface BaselineOptions {
  concurrency: number;
  seconds: number;
  /** When set, requests per route instead of a duration. */
  requests?: number;
}

export interface RouteResult {
  route: string;
  requests: number;
  seconds: number;
  perSecond: number;
  latencyMs: Summary;
  serverMs: Summary;
  statuses: Record<string, number>;
  readUnitsPerRequest: number;
  writeUnitsPerRequest: number;
  dynamoCallsPerRequest: number;
  calls: Record<string, number>;
}

export interface BaselineResult {
  options: BaselineOptions;
  routes: RouteResult[];
  /** GetItem straight to DynamoDB Local (no HTTP, no app), for scale. */
  direct: { perSecond: number; latencyMs: Summary };
}

const classify: instrument.Classifier = (method, path) =>
  `${method} ${(path.split("?")[0] ?? "").replace(/^\/v1\/jobs\/[^/]+$/, "/v1/jobs/{id}")}`;

async function drive(
  http: Http,
  path: string,
  key: string | undefined,
  opts: { concurrency: number; seconds: number; requests?: number },
) {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let issued = 0;
  const started = performance.now();
  const until = started + opts.seconds * 1000;
  const more = () => (opts.requests === undefined ? performance.now() < until : issued < opts.requests);
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (more()) {
        issued++;
        const res = await http.get(path, { key });
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status === 429) await sleep(retryAfterMs(res));
        else latencies.push(res.ms);
      }
    }),
  );
  return { latencies, statuses, seconds: (performance.now() - started) / 1000 };
}

/** The emulator's own ceiling: GetItem straight to DynamoDB Local, no HTTP, no app. */
async function directGets(stack: LocalStack, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await ddb().send(new GetCommand({ TableName: stack.tableName, Key: { PK: "HEALTH", SK: "HEALTH" } }));
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const s = (performance.now() - started) / 1000;
  return { perSecond: latencies.length / s, latencyMs: summarize(latencies) };
}

export async function runBaseline(stack: LocalStack, opts: BaselineOptions): Promise<BaselineResult> {
  instrument.install(classify);
  instrument.setClassifier(classify);
  const http = new Http(stack.url, opts.concurrency + 8);
  const client = await fundedClient(http, stack);
  const job = await call(() =>
    http.post<{ id: string }>(
      "/v1/jobs",
      { service: "echo", input: { baseline: true } },
      { key: client.key },
    ),
  );
  if (job.status !== 201) throw new Error(`submit: ${job.status} ${JSON.stringify(job.body)}`);

  const routes = [
    { route: "GET /v1/health", path: "/v1/health", key: undefined },
    { route: "GET /v1/account", path: "/v1/account", key: client.key },
    { route: "GET /v1/jobs/{id}", path: `/v1/jobs/${job.body.id}`, key: client.key },
  ];
  const results: RouteResult[] = [];
  for (const r of routes) {
    progress(
      `baseline: ${r.route}, ${opts.concurrency} in flight, ${opts.requests ? `${opts.requests} requests` : `${opts.seconds} s`}`,
    );
    await drive(http, r.path, r.key, { concurrency: opts.concurrency, seconds: 0, requests: 200 }); // warm-up
    instrument.reset();
    const run = await drive(http, r.path, r.key, opts);
    const snap = instrument.snapshot();
    const b = snap.buckets[r.route];
    const n = b?.requests ?? 0;
    results.push({
      route: r.route,
      requests: run.latencies.length,
      seconds: run.seconds,
      perSecond: run.latencies.length / run.seconds,
      latencyMs: summarize(run.latencies),
      serverMs: summarize(b?.serverMs ?? []),
      statuses: run.statuses,
      readUnitsPerRequest: n ? (b?.read ?? 0) / n : 0,
      writeUnitsPerRequest: n ? (b?.write ?? 0) / n : 0,
      dynamoCallsPerRequest: n ? (b?.calls ?? 0) / n : 0,
      calls: Object.fromEntries(
        Object.entries(b?.ops ?? {}).map(([label, u]) => [label, n ? u.calls / n : 0]),
      ),
    });
  }
  http.close();
  progress(`baseline: DynamoDB Local alone, GetItem, ${opts.concurrency} in flight, ${opts.seconds || 3} s`);
  const direct = await instrument.ignored(() => directGets(stack, opts.concurrency, opts.seconds || 3));
  return { options: opts, routes: results, direct };
}

export function printBaseline(result: BaselineResult): void {
  const { options } = result;
  console.log(
    `\n== HTTP baseline: ${options.concurrency} requests in flight, ${options.requests ? `${options.requests} requests` : `${options.seconds} s`} per route ==`,
  );
  console.log(
    table(
      [
        "route",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "server p50",
        "server p99",
        "RCU/req",
        "WCU/req",
        "non-2xx",
      ],
      result.routes.map((r) => [
        r.route,
        r.requests,
        num(r.perSecond, 0),
        num(r.latencyMs.p50),
        num(r.latencyMs.p90),
        num(r.latencyMs.p99),
        num(r.latencyMs.max),
        num(r.serverMs.p50),
        num(r.serverMs.p99),
        num(r.readUnitsPerRequest, 2),
        num(r.writeUnitsPerRequest, 2),
        Object.entries(r.statuses)
          .filter(([s]) => !s.startsWith("2"))
          .map(([s, c]) => `${s}x${c}`)
          .join(" ") || "0",
      ]),
    ),
  );
  const d = result.direct;
  console.log(
    `For scale, DynamoDB Local alone (GetItem from this process, no HTTP, no app, ${options.concurrency} in flight): ${num(d.perSecond, 0)} ops/s, p50 ${num(d.latencyMs.p50)} ms, p99 ${num(d.latencyMs.p99)} ms`,
  );
  console.log("\nDynamoDB calls per request:");
  for (const r of result.routes) {
    const calls = Object.entries(r.calls)
      .map(([label, n]) => `${label} x${num(n, 2)}`)
      .join(", ");
    console.log(`  ${r.route}: ${calls || "none"}`);
  }
  console.log(
    "Latency is client-observed over loopback; server time is request start -> response finished in the Node server (the stand-in for Lambda duration). Client, server and DynamoDB Local share this machine's cores.",
  );
}

benchMain(
  import.meta.url,
  "baseline",
  (stack, args) =>
    runBaseline(stack, {
      concurrency: numArg(args.concurrency, 32, "concurrency"),
      seconds: numArg(args.seconds, 5, "seconds"),
      requests: args.requests === undefined ? undefined : numArg(args.requests, 0, "requests"),
    }),
  printBaseline,
);

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SETTINGS } from "../core/settings.ts";
import { numArg } from "./lib/args.ts";
import { ASSUMED, lambdaDuration, MEMORY_GB, PRICE_NOTES, PRICES, wsMessages } from "./lib/prices.ts";
import { num, usd } from "./lib/stats.ts";

/**
 * `npx tsx bench/capacity.ts` (`npm run bench:capacity`): the capacity and cost model of docs/capacity.md.
 *
 * Reads the measured per-operation counts (bench/results/doorbell-latest.json from bench/doorbell.ts: an idle
 * fleet on the doorbell and on HTTP long-poll, and jobs dispatched by rings; bench/results/hot-path-latest.json, or
 * -previous.json, from bench/hot-path.ts: DynamoDB per job), prices them at AWS list prices (bench/lib/prices.ts),
 * and prints, as Markdown:
 * 1. every input with its basis (measured, and in which file; or assumed, and why);
 * 2. the cost per job and per idle miner-hour and miner-month, for both transports (the WebSocket doorbell and the
 *    HTTP long-poll);
 * 3. fleets of 100, 10,000 and 100,000 miners at 1, 100 and 1,000 jobs/s: monthly cost, and the first AWS limit
 *    each one hits (with the number), for both transports;
 * 4. every limit's headroom in the largest case, and what the design does about it.
 * Every figure is marked measured, computed (from the inputs) or assumed.
 */

const FLAGS = {
  doorbell: { type: "string" },
  "hot-path": { type: "string" },
  "job-seconds": { type: "string" },
  "frame-ms": { type: "string" },
  "idle-heartbeat-seconds": { type: "string" },
  "doorbell-shards": { type: "string" },
  json: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const USAGE = `The capacity and cost model (docs/capacity.md), from measured counts; Markdown to stdout.

  npx tsx bench/capacity.ts [flags]        npm run bench:capacity

  --doorbell FILE            doorbell figures (default bench/results/doorbell-latest.json, else -previous.json)
  --hot-path FILE            hot-path figures (default bench/results/hot-path-latest.json, else -previous.json)
  --job-seconds S            assumed execution time of a job on its miner (default 5): busy heartbeats, fleet occupancy
  --frame-ms MS              Lambda duration of one doorbell frame (default: the measured heartbeat frame's p50)
  --idle-heartbeat-seconds S the doorbell's idle heartbeat (default: the measured welcome's, else 60)
  --doorbell-shards K        assumed partitions of a service's doorbell registry on AWS (default 4)
  --json FILE                also write the inputs and every computed figure as JSON
  -h, --help                 this text
`;

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

// ---------------------------------------------------------------------------------------------------------------
// Inputs, each with its basis

type Basis = "measured" | "computed" | "assumed";
interface Fig {
  v: number;
  basis: Basis;
  /** Where it comes from (file and field), or why it is assumed. */
  src: string;
}

type Json = Record<string, unknown>;
const at = (o: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((x, k) => (x && typeof x === "object" ? (x as Json)[k] : undefined), o);
const numAt = (o: unknown, path: string): number | undefined => {
  const v = at(o, path);
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};

function readFirst(paths: string[]): { file: string; data: Json } | undefined {
  for (const file of paths) {
    if (!existsSync(file)) continue;
    try {
      return { file, data: JSON.parse(readFileSync(file, "utf8")) as Json };
    } catch (err) {
      process.stderr.write(`[capacity] ignoring ${file}: ${String(err)}\n`);
    }
  }
  return undefined;
}

const short = (file: string) => file.replace(/^.*\/bench\//, "bench/");

function readInputs() {
  const { values } = parseArgs({ options: FLAGS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const bell = readFirst(
    values.doorbell
      ? [values.doorbell]
      : [here("./results/doorbell-latest.json"), here("./results/doorbell-previous.json")],
  );
  const hot = readFirst(
    values["hot-path"]
      ? [values["hot-path"]]
      : [here("./results/hot-path-latest.json"), here("./results/hot-path-previous.json")],
  );
  const D = bell?.data;
  const H = hot?.data;
  const dSrc = bell ? short(bell.file) : "";
  const hSrc = hot ? short(hot.file) : "";

  /** A measured figure if the file has it, else the stated assumption. */
  const fig = (
    o: unknown,
    src: string,
    paths: string[],
    fallback: number,
    why: string,
    ok: (n: number) => boolean = () => true,
  ): Fig => {
    for (const p of paths) {
      const v = numAt(o, p);
      if (v !== undefined && ok(v)) return { v, basis: "measured", src: `${src}: ${p}` };
    }
    return { v: fallback, basis: "assumed", src: why };
  };
  const assumed = (v: number, src: string): Fig => ({ v, basis: "assumed", src });
  const given = (raw: string | undefined, name: string, fallback: Fig): Fig =>
    raw === undefined ? fallback : { v: numArg(raw, 0, name), basis: "assumed", src: `--${name}` };
  const heartbeatSeen = (numAt(D, "websocket.heartbeat.n") ?? 0) > 0;
  const hb = heartbeatSeen ? "websocket.heartbeat" : "connect.firstHeartbeat";
  const positive = (n: number) => n > 0;

  const inputs = {
    // The doorbell, idle.
    hbIntervalS: given(
      values["idle-heartbeat-seconds"],
      "idle-heartbeat-seconds",
      fig(
        D,
        dSrc,
        ["websocket.heartbeatIntervalSeconds"],
        SETTINGS.COORD_IDLE_HEARTBEAT_SECONDS.default,
        "COORD_IDLE_HEARTBEAT_SECONDS default",
      ),
    ),
    busyHbS: fig(
      D,
      dSrc,
      ["options.heartbeatSeconds"],
      SETTINGS.COORD_HEARTBEAT_SECONDS.default,
      "COORD_HEARTBEAT_SECONDS default",
    ),
    hbDdb: fig(
      D,
      dSrc,
      [`${hb}.ddbRequests`],
      1,
      "one UpdateItem of the miner (hot-path: 1.00 write per heartbeat)",
    ),
    hbWcu: fig(
      D,
      dSrc,
      [`${hb}.wcu`],
      numAt(H, "scaling.0.wcuPerHeartbeat") ?? 3,
      "hot-path scaling rows: 3 WCU per heartbeat",
    ),
    hbRcu: fig(D, dSrc, [`${hb}.rcu`], 0, "a heartbeat reads nothing"),
    hbGsiUnits: fig(
      D,
      dSrc,
      ["websocket.indexUnitsPerHeartbeat.GSI2", "connect.indexUnitsPerFirstHeartbeat.GSI2"],
      2,
      "the miner's status-index entry moves (GSI2 delete + put)",
    ),
    frameMs: given(
      values["frame-ms"],
      "frame-ms",
      fig(
        D,
        dSrc,
        [`${hb}.serverMsP50`],
        20,
        "20 ms per frame (a heartbeat handler time on an unloaded stack)",
        positive,
      ),
    ),
    frameInBytes: fig(D, dSrc, ["websocket.bytesPerFrameIn"], 22, '`{"type":"heartbeat"}`', positive),
    frameOutBytes: fig(D, dSrc, ["websocket.bytesPerFrameOut"], 200, "a heartbeat answer", positive),
    logBytesPerFrame: fig(
      D,
      dSrc,
      ["websocket.logBytesPerFrame", "longPoll.logBytesPerRequest"],
      300,
      "about one app log line per frame",
    ),
    upgradeRcu: fig(D, dSrc, ["connect.upgrade.rcu"], 1, "the miner item, strongly consistent"),
    upgradeDdb: fig(D, dSrc, ["connect.upgrade.ddbRequests"], 1, "the miner item"),
    upgradeMs: fig(D, dSrc, ["connect.upgrade.serverMsP50"], 30, "an upgrade's handler time", positive),
    helloRcu: fig(D, dSrc, ["connect.hello.rcu"], 1, "the miner item"),
    helloMs: fig(D, dSrc, ["connect.hello.serverMsP50"], 30, "a hello's handler time", positive),

    // Jobs on the doorbell.
    jobDdb: fig(
      D,
      dSrc,
      ["jobs.ddbPerJob.requests"],
      numAt(H, "serial.all.requests") ?? 10,
      "hot-path serial",
    ),
    jobWcu: fig(D, dSrc, ["jobs.ddbPerJob.wcu"], numAt(H, "serial.all.wcu") ?? 50, "hot-path serial"),
    jobRcu: fig(
      D,
      dSrc,
      ["jobs.ddbPerJob.rcu"],
      (numAt(H, "serial.all.rcu") ?? 2) + 8,
      "hot-path serial + ring read",
    ),
    httpSubmit: fig(D, dSrc, ["jobs.httpPerJob.submit"], 1, "one submit per job"),
    httpClaim: fig(D, dSrc, ["jobs.httpPerJob.claim"], 1, "one claiming poll per job"),
    httpEmptyPoll: fig(
      D,
      dSrc,
      ["jobs.httpPerJob.empty poll"],
      1,
      "the second rung miner's empty poll (fan-out 2)",
    ),
    httpStart: fig(D, dSrc, ["jobs.httpPerJob.start"], 1, "one start per job"),
    httpResult: fig(D, dSrc, ["jobs.httpPerJob.result"], 1, "one result per job"),
    msSubmit: fig(D, dSrc, ["jobs.serverMsP50.submit"], 25, "unloaded submit (docs/benchmarks.md)", positive),
    msClaim: fig(D, dSrc, ["jobs.serverMsP50.claim"], 50, "unloaded claim (docs/benchmarks.md)", positive),
    msEmptyPoll: fig(D, dSrc, ["jobs.serverMsP50.empty poll"], 25, "an empty poll with wait 0", positive),
    msStart: fig(D, dSrc, ["jobs.serverMsP50.start"], 30, "unloaded start (docs/benchmarks.md)", positive),
    msResult: fig(D, dSrc, ["jobs.serverMsP50.result"], 45, "unloaded result (docs/benchmarks.md)", positive),
    ringsPerJob: fig(D, dSrc, ["jobs.ringsPerJob"], SETTINGS.COORD_RING_FANOUT.default, "COORD_RING_FANOUT"),
    pollsPerJob: fig(D, dSrc, ["jobs.pollsPerJob"], 2, "one poll per ring"),
    eventsPerJob: fig(D, dSrc, ["jobs.eventsPerJob"], 4, "submitted, assigned, started, completed"),
    recordsPerJob: fig(D, dSrc, ["jobs.streamRecordsPerJob"], 5, "docs/benchmarks.md"),
    deliveriesPerJob: fig(D, dSrc, ["jobs.sqsDeliveriesPerJob"], 4, "docs/benchmarks.md"),
    streamMsPerRecord: fig(D, dSrc, ["jobs.streamMsPerRecord"], 10, "docs/benchmarks.md", positive),
    consumerMs: fig(
      D,
      dSrc,
      ["jobs.consumerMsPerMessage"],
      ASSUMED.consumerMs,
      "bench/lib/prices.ts",
      positive,
    ),
    logBytesPerJob: fig(D, dSrc, ["jobs.logBytesPerJob"], 7000, "docs/benchmarks.md (6.8 KB)"),
    gsi1PerJob: fig(D, dSrc, ["jobs.indexUnitsPerJob.GSI1"], 4, "in and out of the ready queue"),
    gsi3PerJob: fig(D, dSrc, ["jobs.indexUnitsPerJob.GSI3"], 4, "hot-path: GSI3 4.0 per job"),
    summaryWritesPerJob: fig(
      D,
      dSrc,
      ["jobs.summaryPerJob.writes"],
      1,
      "a mark and, when the queue drains, a clear",
    ),

    // Long-poll, idle.
    lpPollsPerMinute: fig(
      D,
      dSrc,
      ["longPoll.perMinerMinute.polls"],
      3,
      "one 20 s poll after another",
      positive,
    ),
    lpWaitS: fig(D, dSrc, ["longPoll.waitSeconds"], 20, "wait_seconds 20"),
    lpHoldS: fig(D, dSrc, ["longPoll.pollHoldSeconds.mean"], 20, "held for the whole wait", positive),
    lpPollRcu: fig(D, dSrc, ["longPoll.poll.rcu"], 0, "an empty poll reads nothing (hot-path)"),
    lpPollWcu: fig(D, dSrc, ["longPoll.poll.wcu"], 0, "an empty poll writes nothing (hot-path)"),
    lpSummaryLocal: fig(D, dSrc, ["longPoll.summaryReadsPerPoll"], 0, "one process shares the summary cache"),
    lpHbS: fig(
      D,
      dSrc,
      ["longPoll.heartbeatSeconds"],
      SETTINGS.COORD_HEARTBEAT_SECONDS.default,
      "COORD_HEARTBEAT_SECONDS",
    ),
    lpHbMs: fig(D, dSrc, ["longPoll.heartbeat.serverMsP50"], 15, "docs/benchmarks.md", positive),
    lpHbWcu: fig(D, dSrc, ["longPoll.heartbeat.wcu"], 3, "hot-path: 3 WCU per heartbeat"),
    lpHbRcu: fig(D, dSrc, ["longPoll.heartbeat.rcu"], 0, "a heartbeat reads nothing"),
    lpLogBytes: fig(D, dSrc, ["longPoll.logBytesPerRequest"], 300, "about one app log line per request"),
    // Jobs with miners long-polling: the submit hands the job to a waiting poll (the hot-path fleet).
    lpJobDdb: fig(H, hSrc, ["fleet.ddbRequestsPerJob"], 7.6, "docs/benchmarks.md fleet"),
    lpJobWcu: fig(H, hSrc, ["fleet.wcuPerJob"], 47, "docs/benchmarks.md fleet"),
    lpJobRcu: fig(H, hSrc, ["fleet.rcuPerJob"], 2.4, "docs/benchmarks.md fleet"),
    hotSerialWcu: fig(H, hSrc, ["serial.all.wcu"], 48.3, "docs/benchmarks.md serial"),
    hotSerialRcu: fig(H, hSrc, ["serial.all.rcu"], 2.1, "docs/benchmarks.md serial"),
    hotSerialDdb: fig(H, hSrc, ["serial.all.requests"], 8.57, "docs/benchmarks.md serial"),

    // Not measurable locally.
    jobSeconds: given(
      values["job-seconds"],
      "job-seconds",
      assumed(5, "a GPU job runs 5 s on its miner (busy heartbeats, fleet occupancy)"),
    ),
    ringBytes: assumed(80, 'a `{"type":"work",...}` frame: one 32 KB message'),
    ringSendMs: assumed(10, "one @connections PostToConnection from the stream handler per ring"),
    disconnectMs: assumed(10, "the $disconnect route's handler (deletes the registry items)"),
    connectMessages: assumed(1, "the $connect request billed as one message (conservative)"),
    registryWritesPerConnection: assumed(
      6,
      "AWS registry (core/db/keys.ts: connection, minerConnection, doorbell items): 3 puts on $connect, 3 deletes on $disconnect, 1 WRU each",
    ),
    registryQueryRru: assumed(
      1,
      "the ring's Query of one doorbell partition (16 small items, eventually consistent)",
    ),
    registryWritesPerRing: assumed(1, "recording a ring (least recently rung first) on the doorbell item"),
    awsSummaryRruPerFrame: assumed(
      0.5,
      "on Lambda a frame's `work` flag may read the queue summary (cache 250 ms per instance): one eventually consistent GetItem, upper bound",
    ),
    doorbellShards: given(
      values["doorbell-shards"],
      "doorbell-shards",
      assumed(4, "partitions of a service's doorbell registry (sharded by miner)"),
    ),
    queueShards: assumed(SETTINGS.COORD_QUEUE_SHARDS.default, "COORD_QUEUE_SHARDS default"),
    deadlineShards: assumed(SETTINGS.COORD_DEADLINE_SHARDS.default, "COORD_DEADLINE_SHARDS default"),
    minerShards: assumed(SETTINGS.COORD_MINER_SHARDS.default, "COORD_MINER_SHARDS default"),
    recheckMs: assumed(
      SETTINGS.COORD_POLL_RECHECK_MS.default,
      "COORD_POLL_RECHECK_MS default: a waiting poll's summary re-read on Lambda",
    ),
    accountWcuPerJob: assumed(
      6,
      "the submitting account's item is updated by the submit (hold), the claim (queued counter) and the result (charge), 2 WRU each inside a transaction",
    ),
    putEventsEntriesPerCall: assumed(1, "one event per PutEvents call at worst (the relay batches up to 10)"),
  };
  return { inputs, files: { doorbell: bell?.file, hotPath: hot?.file } };
}
type Inputs = ReturnType<typeof readInputs>["inputs"];

// ---------------------------------------------------------------------------------------------------------------
// Costs

const HOURS_PER_MONTH = 730;
const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

interface Line {
  item: string;
  quantity: string;
  usd: number;
  /** Inputs that are assumptions (the rest measured). */
  assumed: string[];
}

const logUsd = (bytes: number) => (bytes / 1e9) * PRICES.cloudWatchLogsGb;
const ddbUsd = (wru: number, rru: number) => wru * PRICES.dynamoWru + rru * PRICES.dynamoRru;
const total = (lines: Line[]) => lines.reduce((a, l) => a + l.usd, 0);
const names = (i: Inputs, ...keys: (keyof Inputs)[]) => keys.filter((k) => i[k].basis === "assumed");

/** One idle heartbeat on the doorbell: the frame in, its answer, the route Lambda, DynamoDB, logs. */
function frameUsd(i: Inputs): number {
  return (
    (wsMessages(i.frameInBytes.v) + wsMessages(i.frameOutBytes.v)) * PRICES.wsMessage +
    PRICES.lambdaRequest +
    lambdaDuration(i.frameMs.v, MEMORY_GB.ws) +
    ddbUsd(i.hbWcu.v, i.hbRcu.v + i.awsSummaryRruPerFrame.v) +
    logUsd(i.logBytesPerFrame.v + ASSUMED.platformLogBytes)
  );
}

/** One HTTP heartbeat: API Gateway, the API Lambda (1 GB), DynamoDB, logs. */
function httpHeartbeatUsd(i: Inputs): number {
  return (
    PRICES.httpApiRequest +
    PRICES.lambdaRequest +
    lambdaDuration(i.lpHbMs.v, MEMORY_GB.api) +
    ddbUsd(i.lpHbWcu.v, i.lpHbRcu.v) +
    logUsd(i.lpLogBytes.v + ASSUMED.platformLogBytes)
  );
}

/** A reconnect (the 2-hour connection lifetime): $connect, hello and its welcome, $disconnect, registry writes. */
function reconnectUsd(i: Inputs): number {
  return (
    (i.connectMessages.v + 2) * PRICES.wsMessage +
    3 * PRICES.lambdaRequest +
    lambdaDuration(i.upgradeMs.v, MEMORY_GB.ws) +
    lambdaDuration(i.helloMs.v, MEMORY_GB.ws) +
    lambdaDuration(i.disconnectMs.v, MEMORY_GB.ws) +
    ddbUsd(i.registryWritesPerConnection.v, i.upgradeRcu.v + i.helloRcu.v) +
    logUsd(3 * (i.logBytesPerFrame.v + ASSUMED.platformLogBytes))
  );
}

function idleHourWs(i: Inputs): Line[] {
  const beats = 3600 / i.hbIntervalS.v;
  const reconnects = 3600 / 7200;
  return [
    {
      item: "API Gateway WebSocket connection-minutes",
      quantity: "60",
      usd: 60 * PRICES.wsConnectionMinute,
      assumed: [],
    },
    {
      item: "WebSocket messages (heartbeat in + its answer)",
      quantity: `${num(beats, 0)} x ${wsMessages(i.frameInBytes.v) + wsMessages(i.frameOutBytes.v)}`,
      usd: beats * (wsMessages(i.frameInBytes.v) + wsMessages(i.frameOutBytes.v)) * PRICES.wsMessage,
      assumed: names(i, "hbIntervalS", "frameInBytes", "frameOutBytes"),
    },
    {
      item: "Lambda per frame (512 MB)",
      quantity: `${num(beats, 0)} x ${num(i.frameMs.v, 1)} ms`,
      usd: beats * (PRICES.lambdaRequest + lambdaDuration(i.frameMs.v, MEMORY_GB.ws)),
      assumed: names(i, "hbIntervalS", "frameMs"),
    },
    {
      item: "DynamoDB per heartbeat (the miner's update)",
      quantity: `${num(beats, 0)} x ${num(i.hbWcu.v, 1)} WRU + ${num(i.hbRcu.v, 1)} RRU`,
      usd: beats * ddbUsd(i.hbWcu.v, i.hbRcu.v),
      assumed: names(i, "hbIntervalS", "hbWcu", "hbRcu"),
    },
    {
      item: "DynamoDB: queue summary read per frame on Lambda (upper bound)",
      quantity: `${num(beats, 0)} x ${num(i.awsSummaryRruPerFrame.v, 1)} RRU`,
      usd: beats * ddbUsd(0, i.awsSummaryRruPerFrame.v),
      assumed: ["awsSummaryRruPerFrame"],
    },
    {
      item: "reconnect every 2 h (connection lifetime)",
      quantity: `${num(reconnects, 1)} x (3 messages, 3 invocations, ${num(i.registryWritesPerConnection.v, 0)} WRU)`,
      usd: reconnects * reconnectUsd(i),
      assumed: names(i, "connectMessages", "registryWritesPerConnection", "disconnectMs"),
    },
    {
      item: "CloudWatch Logs",
      quantity: `${num((beats * (i.logBytesPerFrame.v + ASSUMED.platformLogBytes)) / 1024, 0)} KB`,
      usd: beats * logUsd(i.logBytesPerFrame.v + ASSUMED.platformLogBytes),
      assumed: names(i, "logBytesPerFrame"),
    },
  ];
}

/** Summary reads one waiting poll makes on a Lambda instance of its own (every recheck, nothing shared). */
const summaryReadsPerPoll = (i: Inputs) => Math.ceil((i.lpWaitS.v * 1000) / i.recheckMs.v) + 1;

function idleHourLongPoll(i: Inputs): Line[] {
  const polls = i.lpPollsPerMinute.v * 60;
  const beats = 3600 / i.lpHbS.v;
  const summaryRru = Math.max(0, summaryReadsPerPoll(i) - i.lpSummaryLocal.v) * 0.5;
  return [
    {
      item: "API Gateway HTTP API requests (polls + heartbeats)",
      quantity: `${num(polls, 0)} + ${num(beats, 0)}`,
      usd: (polls + beats) * PRICES.httpApiRequest,
      assumed: names(i, "lpPollsPerMinute", "lpHbS"),
    },
    {
      item: "Lambda API requests",
      quantity: `${num(polls + beats, 0)}`,
      usd: (polls + beats) * PRICES.lambdaRequest,
      assumed: names(i, "lpPollsPerMinute", "lpHbS"),
    },
    {
      item: "Lambda API duration (1 GB), polls held for their wait",
      quantity: `${num(polls, 0)} x ${num(i.lpHoldS.v, 2)} s`,
      usd: polls * lambdaDuration(i.lpHoldS.v * 1000, MEMORY_GB.api),
      assumed: names(i, "lpPollsPerMinute", "lpHoldS"),
    },
    {
      item: "Lambda API duration (1 GB), heartbeats",
      quantity: `${num(beats, 0)} x ${num(i.lpHbMs.v, 1)} ms`,
      usd: beats * lambdaDuration(i.lpHbMs.v, MEMORY_GB.api),
      assumed: names(i, "lpHbMs", "lpHbS"),
    },
    {
      item: "DynamoDB, polls (summary re-read every recheck on Lambda)",
      quantity: `${num(polls, 0)} x (${num(i.lpPollRcu.v + summaryRru, 1)} RRU, ${num(i.lpPollWcu.v, 1)} WRU)`,
      usd: polls * ddbUsd(i.lpPollWcu.v, i.lpPollRcu.v + summaryRru),
      assumed: ["recheckMs", ...names(i, "lpPollRcu", "lpPollWcu")],
    },
    {
      item: "DynamoDB, heartbeats",
      quantity: `${num(beats, 0)} x ${num(i.lpHbWcu.v, 1)} WRU`,
      usd: beats * ddbUsd(i.lpHbWcu.v, i.lpHbRcu.v),
      assumed: names(i, "lpHbWcu", "lpHbRcu"),
    },
    {
      item: "CloudWatch Logs",
      quantity: `${num(((polls + beats) * (i.lpLogBytes.v + ASSUMED.platformLogBytes)) / 1024, 0)} KB`,
      usd: (polls + beats) * logUsd(i.lpLogBytes.v + ASSUMED.platformLogBytes),
      assumed: names(i, "lpLogBytes"),
    },
  ];
}

/** What every job pays whatever the transport: the stream handler, EventBridge, SQS, the consumers, logs. */
function pipelineLines(i: Inputs, apiRequests: number): Line[] {
  const records = i.recordsPerJob.v;
  const events = i.eventsPerJob.v;
  const streamMs = i.streamMsPerRecord.v + (records ? (ASSUMED.putEventsMs * events) / records : 0);
  const msgs = i.deliveriesPerJob.v;
  const logBytes = i.logBytesPerJob.v + ASSUMED.platformLogBytes * (apiRequests + records + msgs);
  return [
    {
      item: "Lambda stream handler (512 MB)",
      quantity: `${num(records, 2)} x ${num(streamMs, 1)} ms`,
      usd: records * (PRICES.lambdaRequest + lambdaDuration(streamMs, MEMORY_GB.stream)),
      assumed: ["putEventsMs (20 ms per PutEvents)", ...names(i, "recordsPerJob", "streamMsPerRecord")],
    },
    {
      item: "EventBridge events",
      quantity: num(events, 2),
      usd: events * PRICES.eventBridgeEvent,
      assumed: names(i, "eventsPerJob"),
    },
    {
      item: "SQS (rule deliveries: send, receive, delete)",
      quantity: `${num(msgs, 2)} x ${ASSUMED.sqsRequestsPerMessage}`,
      usd: msgs * ASSUMED.sqsRequestsPerMessage * PRICES.sqsRequest,
      assumed: names(i, "deliveriesPerJob"),
    },
    {
      item: "Lambda queue consumers (512 MB)",
      quantity: `${num(msgs, 2)} x ${num(i.consumerMs.v, 1)} ms`,
      usd: msgs * (PRICES.lambdaRequest + lambdaDuration(i.consumerMs.v, MEMORY_GB.consumer)),
      assumed: names(i, "deliveriesPerJob", "consumerMs"),
    },
    {
      item: "CloudWatch Logs",
      quantity: `${num(logBytes / 1024, 1)} KB`,
      usd: logUsd(logBytes),
      assumed: names(i, "logBytesPerJob"),
    },
  ];
}

function jobWs(i: Inputs): Line[] {
  const http = [i.httpSubmit, i.httpClaim, i.httpEmptyPoll, i.httpStart, i.httpResult];
  const ms = [i.msSubmit, i.msClaim, i.msEmptyPoll, i.msStart, i.msResult];
  const requests = http.reduce((a, f) => a + f.v, 0);
  const apiUsd = http.reduce((a, f, k) => a + f.v * lambdaDuration((ms[k] as Fig).v, MEMORY_GB.api), 0);
  const apiMs = http.reduce((a, f, k) => a + f.v * (ms[k] as Fig).v, 0);
  const busyBeats = i.jobSeconds.v / i.busyHbS.v;
  const rings = i.ringsPerJob.v;
  return [
    {
      item: "DynamoDB writes (the doorbell path, ring reads included)",
      quantity: `${num(i.jobWcu.v, 1)} WRU`,
      usd: ddbUsd(i.jobWcu.v, 0),
      assumed: names(i, "jobWcu"),
    },
    {
      item: "DynamoDB reads",
      quantity: `${num(i.jobRcu.v, 1)} RRU`,
      usd: ddbUsd(0, i.jobRcu.v),
      assumed: names(i, "jobRcu"),
    },
    {
      item: "DynamoDB: the AWS doorbell registry (ring query, ring records)",
      quantity: `${num(i.registryQueryRru.v, 1)} RRU + ${num(rings * i.registryWritesPerRing.v, 1)} WRU`,
      usd: ddbUsd(rings * i.registryWritesPerRing.v, i.registryQueryRru.v),
      assumed: ["registryQueryRru", "registryWritesPerRing"],
    },
    {
      item: "API Gateway HTTP API (submit, polls, start, result)",
      quantity: `${num(requests, 2)} requests`,
      usd: requests * PRICES.httpApiRequest,
      assumed: names(i, "httpSubmit", "httpClaim", "httpEmptyPoll", "httpStart", "httpResult"),
    },
    {
      item: "Lambda API (1 GB)",
      quantity: `${num(requests, 2)} x, ${num(apiMs, 0)} ms`,
      usd: requests * PRICES.lambdaRequest + apiUsd,
      assumed: names(i, "msSubmit", "msClaim", "msEmptyPoll", "msStart", "msResult"),
    },
    {
      item: "WebSocket rings (messages out) and their sends",
      quantity: `${num(rings, 2)} x (${wsMessages(i.ringBytes.v)} msg, ${num(i.ringSendMs.v, 0)} ms)`,
      usd:
        rings *
        (wsMessages(i.ringBytes.v) * PRICES.wsMessage + lambdaDuration(i.ringSendMs.v, MEMORY_GB.stream)),
      assumed: ["ringBytes", "ringSendMs", ...names(i, "ringsPerJob")],
    },
    ...pipelineLines(i, requests),
    {
      item: "busy heartbeats over the socket while the job runs",
      quantity: `${num(busyBeats, 2)} frames`,
      usd: busyBeats * frameUsd(i),
      assumed: ["jobSeconds", ...names(i, "busyHbS")],
    },
  ];
}

function jobLongPoll(i: Inputs): Line[] {
  // Submit, the claim (the waiting poll's answer: its wait is paid as idle time), start, result.
  const requests = 4;
  const ms = i.msSubmit.v + i.msStart.v + i.msResult.v;
  const busyBeats = i.jobSeconds.v / i.lpHbS.v;
  return [
    {
      item: "DynamoDB writes (hand-off to a waiting poll, hot-path fleet)",
      quantity: `${num(i.lpJobWcu.v, 1)} WRU`,
      usd: ddbUsd(i.lpJobWcu.v, 0),
      assumed: names(i, "lpJobWcu"),
    },
    {
      item: "DynamoDB reads",
      quantity: `${num(i.lpJobRcu.v, 1)} RRU`,
      usd: ddbUsd(0, i.lpJobRcu.v),
      assumed: names(i, "lpJobRcu"),
    },
    {
      item: "API Gateway HTTP API (submit, claim, start, result)",
      quantity: `${requests} requests`,
      usd: requests * PRICES.httpApiRequest,
      assumed: ["4 requests per job (the protocol)"],
    },
    {
      item: "Lambda API (1 GB): submit, start, result",
      quantity: `${requests} x, ${num(ms, 0)} ms`,
      usd: requests * PRICES.lambdaRequest + lambdaDuration(ms, MEMORY_GB.api),
      assumed: names(i, "msSubmit", "msStart", "msResult"),
    },
    ...pipelineLines(i, requests),
    {
      item: "busy heartbeats over HTTP while the job runs",
      quantity: `${num(busyBeats, 2)} requests`,
      usd: busyBeats * httpHeartbeatUsd(i),
      assumed: ["jobSeconds", ...names(i, "lpHbS")],
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Fleets and limits

/** AWS limits (per account and region unless said otherwise; defaults, most can be raised). */
const LIMITS = {
  lambdaConcurrency: 1000,
  apiGatewayRps: 10_000,
  wsNewConnectionsPerSecond: 500,
  wsConnectionLifetimeS: 7200,
  wsIdleTimeoutS: 600,
  partitionWcu: 1000,
  partitionRcu: 3000,
  putEventsTps: 10_000,
  eventBridgeInvocationsPerSecond: 18_750,
} as const;

type Transport = "websocket" | "long-poll";

interface Limit {
  name: string;
  demand: number;
  limit: number;
  unit: string;
  /** What the design does about it. */
  remedy: string;
  /** A limit of one client's traffic, not of the fleet's (left out of a fleet's first limit). */
  perClient?: boolean;
}

function limitsFor(i: Inputs, t: Transport, miners: number, rate: number): Limit[] {
  const busy = Math.min(miners, rate * i.jobSeconds.v);
  const idleMiners = miners - busy;
  const apiMsPerJob =
    t === "websocket"
      ? i.httpSubmit.v * i.msSubmit.v +
        i.httpClaim.v * i.msClaim.v +
        i.httpEmptyPoll.v * i.msEmptyPoll.v +
        i.httpStart.v * i.msStart.v +
        i.httpResult.v * i.msResult.v
      : i.msSubmit.v + i.msStart.v + i.msResult.v;
  const pipelineMs =
    i.recordsPerJob.v * i.streamMsPerRecord.v +
    i.eventsPerJob.v * ASSUMED.putEventsMs +
    i.deliveriesPerJob.v * i.consumerMs.v +
    (t === "websocket" ? i.ringsPerJob.v * i.ringSendMs.v : 0);
  const reconnectsPerS = miners / LIMITS.wsConnectionLifetimeS;
  const out: Limit[] = [];
  if (t === "websocket") {
    const idleFrames = idleMiners / i.hbIntervalS.v;
    const busyFrames = busy / i.busyHbS.v;
    out.push({
      name: "Lambda concurrent executions",
      demand:
        ((idleFrames + busyFrames) * i.frameMs.v +
          rate * (apiMsPerJob + pipelineMs) +
          reconnectsPerS * (i.upgradeMs.v + i.helloMs.v + i.disconnectMs.v)) /
        1000,
      limit: LIMITS.lambdaConcurrency,
      unit: "executions",
      remedy: "nothing waits in a Lambda: a frame is a ~frame-length invocation; raise the quota past ~1,000",
    });
    out.push({
      name: "API Gateway requests/s (HTTP + WebSocket + @connections, per account)",
      demand:
        idleFrames +
        busyFrames +
        rate * (i.httpSubmit.v + i.httpClaim.v + i.httpEmptyPoll.v + i.httpStart.v + i.httpResult.v) +
        rate * i.ringsPerJob.v +
        reconnectsPerS * 2,
      limit: LIMITS.apiGatewayRps,
      unit: "requests/s",
      remedy:
        "fewer heartbeats (COORD_IDLE_HEARTBEAT_SECONDS up to 540 < the 10-minute idle timeout), fan-out 1, raise the soft quota",
    });
    out.push({
      name: "WebSocket new connections/s (2-hour lifetime renewals)",
      demand: reconnectsPerS,
      limit: LIMITS.wsNewConnectionsPerSecond,
      unit: "connections/s",
      remedy: `renewals spread over the 2 hours; after an outage the whole fleet needs ${num(miners / LIMITS.wsNewConnectionsPerSecond, 0)} s at 500/s: the agent reconnects with full-jitter backoff and long-polls meanwhile; raise the soft quota`,
    });
    const summaryRcu = (idleFrames + busyFrames) * i.awsSummaryRruPerFrame.v + rate * i.pollsPerJob.v * 0.5;
    out.push({
      name: "DynamoDB queue summary item (reads)",
      demand: summaryRcu,
      limit: LIMITS.partitionRcu,
      unit: "RCU/s",
      remedy:
        "each instance caches it 250 ms, so reads are bounded by instances x 4/s; beyond that, one copy per service or shard",
    });
    out.push({
      name: "DynamoDB doorbell registry partition (writes)",
      demand:
        (rate * i.ringsPerJob.v * i.registryWritesPerRing.v +
          reconnectsPerS * i.registryWritesPerConnection.v) /
        i.doorbellShards.v,
      limit: LIMITS.partitionWcu,
      unit: "WCU/s per partition",
      remedy:
        "more doorbell shards per service (rings pick a shard at random); record rings in memory per instance",
    });
  } else {
    const pollsPerS = (idleMiners * i.lpPollsPerMinute.v) / 60;
    const beatsPerS = miners / i.lpHbS.v;
    out.push({
      name: "Lambda concurrent executions",
      demand:
        idleMiners * Math.min(1, (i.lpHoldS.v * i.lpPollsPerMinute.v) / 60) +
        (beatsPerS * i.lpHbMs.v + rate * (apiMsPerJob + pipelineMs)) / 1000,
      limit: LIMITS.lambdaConcurrency,
      unit: "executions",
      remedy:
        "every waiting poll holds an instance: raise the quota (to the fleet size), or move miners to the doorbell",
    });
    out.push({
      name: "API Gateway requests/s (HTTP + WebSocket + @connections, per account)",
      demand: pollsPerS + beatsPerS + rate * 3,
      limit: LIMITS.apiGatewayRps,
      unit: "requests/s",
      remedy: "longer waits (up to the 29 s integration timeout), fewer heartbeats, raise the soft quota",
    });
    out.push({
      name: "DynamoDB queue summary item (reads)",
      demand: idleMiners * (1000 / i.recheckMs.v) * 0.5,
      limit: LIMITS.partitionRcu,
      unit: "RCU/s",
      remedy:
        "every waiting poll re-reads it each COORD_POLL_RECHECK_MS: longer rechecks, or the doorbell (nothing waits)",
    });
  }
  const beatsPerS =
    t === "websocket" ? idleMiners / i.hbIntervalS.v + busy / i.busyHbS.v : miners / i.lpHbS.v;
  out.push({
    name: "DynamoDB miner-status index shard (GSI2, heartbeats)",
    demand: (beatsPerS * i.hbGsiUnits.v) / i.minerShards.v,
    limit: LIMITS.partitionWcu,
    unit: "WCU/s per shard",
    remedy: "COORD_MINER_SHARDS (4, up to 64); fewer heartbeats",
  });
  out.push({
    name: "DynamoDB queue summary item (writes)",
    demand: rate * i.summaryWritesPerJob.v,
    limit: LIMITS.partitionWcu,
    unit: "WCU/s",
    remedy:
      "a mark per stream batch, a clear per drained shard: under load batches grow and the queue rarely drains; else skip marks already set",
  });
  out.push({
    name: "DynamoDB ready-queue shard (GSI1)",
    demand: (rate * i.gsi1PerJob.v) / i.queueShards.v,
    limit: LIMITS.partitionWcu,
    unit: "WCU/s per shard",
    remedy: "COORD_QUEUE_SHARDS (4, up to 64 per service)",
  });
  out.push({
    name: "DynamoDB deadline index shard (GSI3)",
    demand: (rate * i.gsi3PerJob.v) / i.deadlineShards.v,
    limit: LIMITS.partitionWcu,
    unit: "WCU/s per shard",
    remedy: "COORD_DEADLINE_SHARDS (4, up to 64)",
  });
  out.push({
    name: "DynamoDB account item (one client submitting everything)",
    demand: rate * i.accountWcuPerJob.v,
    limit: LIMITS.partitionWcu,
    unit: "WCU/s",
    remedy:
      "a hot client needs its hold and charge accrued off the job's transactions (an account sub-ledger posted in batches: issue 11)",
    perClient: true,
  });
  out.push({
    name: "EventBridge PutEvents (us-east-1)",
    demand: (rate * i.eventsPerJob.v) / i.putEventsEntriesPerCall.v,
    limit: LIMITS.putEventsTps,
    unit: "calls/s",
    remedy:
      "the relay sends up to 10 entries per call; 2,400/s or less in smaller regions: raise the soft quota",
  });
  out.push({
    name: "EventBridge target invocations (us-east-1)",
    demand: rate * i.deliveriesPerJob.v,
    limit: LIMITS.eventBridgeInvocationsPerSecond,
    unit: "invocations/s",
    remedy: "fewer rules per event; raise the soft quota",
  });
  out.push({
    name: "SQS standard queues",
    demand: rate * i.deliveriesPerJob.v * ASSUMED.sqsRequestsPerMessage,
    limit: Number.POSITIVE_INFINITY,
    unit: "requests/s",
    remedy: "effectively unlimited (nearly unlimited API calls per second per queue)",
  });
  return out;
}

interface Scenario {
  miners: number;
  rate: number;
  busyMiners: number;
  oversubscribed: boolean;
  monthly: Record<Transport, number>;
  /** The fleet-wide limit furthest over (demand / limit highest) when any is over, and how many more are over. */
  first: Record<Transport, Limit | undefined>;
  alsoOver: Record<Transport, number>;
  nearest: Record<Transport, Limit>;
}

function scenario(i: Inputs, miners: number, rate: number, perJob: Record<Transport, number>): Scenario {
  const needed = rate * i.jobSeconds.v;
  const busy = Math.min(miners, needed);
  const idleMiners = miners - busy;
  const ws = idleHourWs(i);
  const connectionHour = ws[0]?.usd ?? 0;
  const monthly = {
    websocket:
      (idleMiners * total(ws) + busy * connectionHour) * HOURS_PER_MONTH +
      rate * SECONDS_PER_MONTH * perJob.websocket,
    "long-poll":
      idleMiners * total(idleHourLongPoll(i)) * HOURS_PER_MONTH +
      rate * SECONDS_PER_MONTH * perJob["long-poll"],
  };
  const util = (l: Limit) => l.demand / l.limit;
  const pick = (t: Transport) => {
    const ls = limitsFor(i, t, miners, rate)
      .filter((x) => !x.perClient)
      .sort((a, b) => util(b) - util(a));
    const over = ls.filter((x) => util(x) >= 1);
    return { first: over[0], alsoOver: Math.max(0, over.length - 1), nearest: ls[0] as Limit };
  };
  const w = pick("websocket");
  const l = pick("long-poll");
  return {
    miners,
    rate,
    busyMiners: needed,
    oversubscribed: needed > miners,
    monthly,
    first: { websocket: w.first, "long-poll": l.first },
    alsoOver: { websocket: w.alsoOver, "long-poll": l.alsoOver },
    nearest: { websocket: w.nearest, "long-poll": l.nearest },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Printing (Markdown)

/** A Markdown table; `align` has one letter per column, `l` or `r` (default: the first left, the rest right). */
function md(headers: string[], rows: (string | number)[][], align?: string): string {
  const esc = (c: string | number) => String(c).replace(/\|/g, "\\|");
  const right = (k: number) => (align ? align[k] === "r" : k > 0);
  return [
    `| ${headers.map(esc).join(" | ")} |`,
    `| ${headers.map((_, k) => (right(k) ? "---:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

const big = (n: number) =>
  !Number.isFinite(n)
    ? "-"
    : n >= 100
      ? num(n, 0)
      : n >= 10
        ? num(n, 1)
        : n >= 0.1
          ? num(n, 2)
          : n === 0
            ? "0"
            : n.toPrecision(2);
const money = (n: number) => (n >= 1000 ? `$${num(n, 0)}` : usd(n));
const limitText = (l: Limit) =>
  `${l.name}: ${big(l.demand)} of ${Number.isFinite(l.limit) ? num(l.limit, 0) : "unlimited"} ${l.unit}`;

function costTable(title: string, lines: Line[], scale: number, unit: string): string {
  const rows = lines.map((l) => [
    l.item,
    l.quantity,
    usd(l.usd * scale),
    l.assumed.length ? `computed; assumed: ${l.assumed.join(", ")}` : "computed from measured",
  ]);
  rows.push(["**total**", "", `**${usd(total(lines) * scale)}**`, ""]);
  return `${title}\n\n${md(["item", "quantity", unit, "basis"], rows, "lrrl")}`;
}

function main() {
  const { inputs: i, files } = readInputs();
  const out: string[] = [];
  const say = (s = "") => out.push(s);

  say("## Inputs");
  say();
  say(
    `Doorbell figures: ${files.doorbell ? `\`${short(files.doorbell)}\`` : "none found (every doorbell input assumed)"}; hot-path figures: ${files.hotPath ? `\`${short(files.hotPath)}\`` : "none found"}.`,
  );
  say();
  say(
    md(
      ["input", "value", "basis", "source"],
      (Object.entries(i) as [string, Fig][]).map(([k, f]) => [`\`${k}\``, big(f.v), f.basis, f.src]),
      "lrll",
    ),
  );

  const wsHour = idleHourWs(i);
  const lpHour = idleHourLongPoll(i);
  const wsJob = jobWs(i);
  const lpJob = jobLongPoll(i);
  const perJob: Record<Transport, number> = { websocket: total(wsJob), "long-poll": total(lpJob) };

  say();
  say("## Per idle miner");
  say();
  say(costTable("### WebSocket doorbell, per idle miner-hour", wsHour, 1, "$ per miner-hour"));
  say();
  say(costTable("### HTTP long-poll, per idle miner-hour", lpHour, 1, "$ per miner-hour"));
  say();
  const target = 0.5;
  say(
    md(
      [
        "per idle miner",
        "$ per hour",
        "$ per month (730 h)",
        "$ a month, 1,000 idle miners",
        "target <= $0.50/month",
      ],
      [
        [
          "WebSocket doorbell",
          usd(total(wsHour)),
          usd(total(wsHour) * HOURS_PER_MONTH),
          money(total(wsHour) * HOURS_PER_MONTH * 1000),
          total(wsHour) * HOURS_PER_MONTH <= target ? "met" : "NOT met",
        ],
        [
          "HTTP long-poll",
          usd(total(lpHour)),
          usd(total(lpHour) * HOURS_PER_MONTH),
          money(total(lpHour) * HOURS_PER_MONTH * 1000),
          total(lpHour) * HOURS_PER_MONTH <= target ? "met" : "NOT met",
        ],
      ],
    ),
  );
  say();
  say(
    `All computed. The doorbell at other idle heartbeat intervals (same per-frame cost): ${[
      30, 60, 120, 300, 540,
    ]
      .map((s) => {
        const j = { ...i, hbIntervalS: { v: s, basis: "assumed" as const, src: "" } };
        return `${s} s ${usd(total(idleHourWs(j)) * HOURS_PER_MONTH)}`;
      })
      .join(", ")} per miner-month.`,
  );

  say();
  say("## Per job");
  say();
  say(
    costTable(
      "### WebSocket doorbell (rung miners claim with wait_seconds 0)",
      wsJob,
      1e6,
      "$ per million jobs",
    ),
  );
  say();
  say(
    costTable(
      "### HTTP long-poll (the submit hands the job to a waiting poll)",
      lpJob,
      1e6,
      "$ per million jobs",
    ),
  );
  say();
  say(
    `For comparison, the hot-path serial pass (queued path, everything but the sweep) measured ${num(i.hotSerialDdb.v, 2)} DynamoDB requests, ${num(i.hotSerialWcu.v, 1)} WCU and ${num(i.hotSerialRcu.v, 1)} RCU per job (${i.hotSerialWcu.basis}); the doorbell path adds the ring's read of the candidates' miner items.`,
  );

  say();
  say("## Fleets");
  say();
  say(
    `Computed: monthly cost = idle miners x the idle miner-hour x 730 (+ busy miners' connection-minutes on the doorbell) + jobs/s x 2,628,000 s x the cost per job. Busy miners = jobs/s x ${num(i.jobSeconds.v, 0)} s (${i.jobSeconds.basis}: the job's execution time), 1 slot each. "First limit" is the fleet-wide AWS limit furthest over at that load (the highest demand / limit, so the one a load growing towards it reaches first), with how many others are over too; "-" when none is, with the nearest one. One client's own limit (its account item) is left out: see below.`,
  );
  say();
  const rows: (string | number)[][] = [];
  const scenarios: Scenario[] = [];
  for (const miners of [100, 10_000, 100_000]) {
    for (const rate of [1, 100, 1000]) {
      const s = scenario(i, miners, rate, perJob);
      scenarios.push(s);
      const cell = (t: Transport) => {
        const first = s.first[t];
        if (first) return `**${limitText(first)}**${s.alsoOver[t] ? ` (+${s.alsoOver[t]} more over)` : ""}`;
        const n = s.nearest[t];
        return `- (nearest: ${n.name}, ${num((n.demand / n.limit) * 100, 0)}%)`;
      };
      rows.push([
        num(miners, 0),
        num(rate, 0),
        s.oversubscribed ? `${num(s.busyMiners, 0)} needed: **fleet too small**` : num(s.busyMiners, 0),
        money(s.monthly.websocket),
        cell("websocket"),
        money(s.monthly["long-poll"]),
        cell("long-poll"),
      ]);
    }
  }
  say(
    md(
      [
        "miners",
        "jobs/s",
        "busy miners",
        "doorbell $/month",
        "doorbell: first limit hit",
        "long-poll $/month",
        "long-poll: first limit hit",
      ],
      rows,
      "rrrrlrl",
    ),
  );
  say();
  say("## Every limit at 100,000 miners and 1,000 jobs/s");
  say();
  for (const t of ["websocket", "long-poll"] as Transport[]) {
    say(`### ${t === "websocket" ? "WebSocket doorbell" : "HTTP long-poll"}`);
    say();
    say(
      md(
        ["limit (computed)", "demand", "limit", "use", "what the design does"],
        limitsFor(i, t, 100_000, 1000)
          .sort((a, b) => b.demand / b.limit - a.demand / a.limit)
          .map((l) => [
            l.name,
            `${big(l.demand)} ${l.unit}`,
            Number.isFinite(l.limit) ? num(l.limit, 0) : "unlimited",
            Number.isFinite(l.limit) ? `${num((l.demand / l.limit) * 100, 0)}%` : "-",
            l.remedy,
          ]),
        "lrrrl",
      ),
    );
    say();
  }
  say(
    `One client account is capped whatever the fleet: its account item takes ${num(i.accountWcuPerJob.v, 0)} WRU per job (${i.accountWcuPerJob.basis}), so ${num(LIMITS.partitionWcu / i.accountWcuPerJob.v, 0)} jobs/s from one account reach the item's 1,000 WCU/s (computed); the fleet table leaves this per-client limit out.`,
  );
  say();
  say(
    `The WebSocket idle timeout (${LIMITS.wsIdleTimeoutS / 60} minutes) is met by the idle heartbeat (${num(i.hbIntervalS.v, 0)} s; the setting stops at 540 s); the connection lifetime (2 hours) costs the reconnects above.`,
  );
  say();
  say("## Prices");
  say();
  for (const note of PRICE_NOTES) say(`- ${note}`);
  process.stdout.write(`${out.join("\n")}\n`);

  if (values().json) {
    writeFileSync(
      values().json as string,
      JSON.stringify(
        {
          files,
          inputs: i,
          idleMinerHour: { websocket: wsHour, "long-poll": lpHour },
          idleMinerMonth: {
            websocket: total(wsHour) * HOURS_PER_MONTH,
            "long-poll": total(lpHour) * HOURS_PER_MONTH,
          },
          perJob: { websocket: wsJob, "long-poll": lpJob, totals: perJob },
          scenarios,
        },
        null,
        2,
      ),
    );
  }
}

/** The flags again (readInputs has validated them). */
const values = () => parseArgs({ options: FLAGS, strict: true, allowPositionals: false }).values;

main();

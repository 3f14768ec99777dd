import { AsyncLocalStorage } from "node:async_hooks";
import diagnostics from "node:diagnostics_channel";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import { type CapacityRecord, capacityMeter } from "../../core/db/client.ts";
import { QueuePoller } from "../../local/queue-poller.ts";
import { StreamPoller } from "../../local/stream-poller.ts";

/**
 * Attributes what the in-process stack does to whoever caused it:
 * - every HTTP request gets a context (AsyncLocalStorage, entered from Node's `http.server.request.start`
 *   diagnostics channel) that collects the DynamoDB capacity its handler consumed and its server time (request
 *   start -> response finished: the stand-in for Lambda duration);
 * - work outside any request is classed by who started it: the stream poller and the queue pollers run their
 *   handlers in their own context (and their invocations are timed), everything else started with the stack is the
 *   cron sweep;
 * - outbox events written (by type) and table writes that pass the stream filter are counted from the writes;
 * - the app's structured log lines are captured (not printed) and counted, for the CloudWatch Logs estimate.
 *
 * Capacity comes from DynamoDB Local's ConsumedCapacity (core/db/client.ts meter), adjusted where it differs from
 * what AWS bills: see `billedUnits`.
 */

export interface OpUse {
  calls: number;
  errors: number;
  read: number;
  write: number;
  /** Units added by `billedUnits` (not reported by DynamoDB Local): AWS's documented minimums. */
  estimated: number;
  /** Write units guessed for cancelled transactions (AWS does not document them): an upper bound. */
  cancelled: number;
  /** Write units added to what DynamoDB Local reported for transactions, to what AWS bills (see billedUnits). */
  txAdded: number;
}

export interface Bucket {
  requests: number;
  /** Server time per request, ms. */
  serverMs: number[];
  calls: number;
  read: number;
  write: number;
  estimated: number;
  cancelled: number;
  txAdded: number;
  ops: Record<string, OpUse>;
}

interface RequestCtx {
  kind: "request";
  method: string;
  path: string;
  started: number;
  usage: Map<string, OpUse>;
}
type Ctx = RequestCtx | { kind: "ignore" } | { kind: "background"; name: string };

export interface Invocations {
  count: number;
  records: number;
  ms: number;
}

export type Classifier = (method: string, path: string, status: number) => string | undefined;

const als = new AsyncLocalStorage<Ctx>();
const pending = new WeakMap<ServerResponse, RequestCtx>();

let classify: Classifier = (method, path) => `${method} ${path.split("?")[0]}`;
let buckets = new Map<string, Bucket>();
let events = new Map<string, number>();
let streamRecords = 0;
let sweepRuns = 0;
let invocations = new Map<string, Invocations>();
let writesByIndex = new Map<string, number>();
let logBytes = 0;
let logLines = 0;
let errorLines: string[] = [];
let transactions = new Map<string, TxShape>();

/**
 * The committed transactions one kind of request ran, summed: their items, and of those the money items (an
 * account's balance update and its ledger entry) with the write units AWS bills for them (2 per item per KB).
 */
export interface TxShape {
  count: number;
  items: number;
  moneyItems: number;
  moneyWcu: number;
}

function isMoneyItem(t: Item): boolean {
  const update = t.Update as Item | undefined;
  if (update)
    return (
      str((update.Key as Item)?.PK).startsWith("ACCOUNT#") &&
      str(update.UpdateExpression).includes("available")
    );
  const put = t.Put as Item | undefined;
  return (put?.Item as Item | undefined)?.entity === "ledger";
}

function countTransaction(ctx: Ctx | undefined, rec: CapacityRecord): void {
  if (rec.error || rec.operation !== "TransactWriteItems" || ctx?.kind !== "request") return;
  const items = ((rec.input as Item).TransactItems as Item[] | undefined) ?? [];
  const money = items.filter(isMoneyItem);

  const label = classify(ctx.method, ctx.path, 200) ?? `${ctx.method} ${ctx.path}`;
  const shape = transactions.get(label) ?? { count: 0, items: 0, moneyItems: 0, moneyWcu: 0 };
  shape.count++;
  shape.items += items.length;
  shape.moneyItems += money.length;
  shape.moneyWcu += money.reduce(
    (n, t) => n + 2 * (t.Put ? Math.max(1, Math.ceil(itemBytes((t.Put as Item).Item as Item) / 1024)) : 1),
    0,
  );
  transactions.set(label, shape);
}

function newBucket(): Bucket {
  return {
    requests: 0,
    serverMs: [],
    calls: 0,
    read: 0,
    write: 0,
    estimated: 0,
    cancelled: 0,
    txAdded: 0,
    ops: {},
  };
}

function bucket(name: string): Bucket {
  let b = buckets.get(name);
  if (!b) {
    b = newBucket();
    buckets.set(name, b);
  }
  return b;
}

function addOp(map: Map<string, OpUse> | Record<string, OpUse>, label: string, u: OpUse): void {
  const get = (k: string) => (map instanceof Map ? map.get(k) : map[k]);
  let cur = get(label);
  if (!cur) {
    cur = { calls: 0, errors: 0, read: 0, write: 0, estimated: 0, cancelled: 0, txAdded: 0 };
    if (map instanceof Map) map.set(label, cur);
    else map[label] = cur;
  }
  cur.calls += u.calls;
  cur.errors += u.errors;
  cur.read += u.read;
  cur.write += u.write;
  cur.estimated += u.estimated;
  cur.cancelled += u.cancelled;
  cur.txAdded += u.txAdded;
}

function addToBucket(b: Bucket, label: string, u: OpUse): void {
  b.calls += u.calls;
  b.read += u.read;
  b.write += u.write;
  b.estimated += u.estimated;
  b.cancelled += u.cancelled;
  b.txAdded += u.txAdded;
  addOp(b.ops, label, u);
}

type Item = Record<string, unknown>;
const str = (v: unknown) => (typeof v === "string" ? v : "");
const prefix = (pk: string) => pk.split("#")[0] ?? pk;

function keyLabel(key: Item | undefined): string {
  const pk = str(key?.PK);
  const sk = str(key?.SK);
  const p = prefix(pk);
  const s = prefix(sk);
  return s && s !== p ? `${p}/${s}` : p;
}

function transactItems(input: Item): Item[] {
  return ((input.TransactItems as Item[] | undefined) ?? []).map(
    (t) => (t.Put ?? t.Update ?? t.Delete ?? t.ConditionCheck ?? {}) as Item,
  );
}

/** A short label for a call: the operation and the kind of item (key prefix) or index it reads. */
export function describe(rec: CapacityRecord): string {
  const input = rec.input as Item;
  switch (rec.operation) {
    case "Query":
    case "Scan": {
      const values = (input.ExpressionAttributeValues ?? {}) as Item;
      const pk = str(values[":pk"]) || str(Object.values(values)[0]);
      return `${rec.operation} ${input.IndexName ?? "table"} ${prefix(pk)}`;
    }
    case "BatchGetItem": {
      const req = Object.values((input.RequestItems ?? {}) as Record<string, { Keys?: Item[] }>)[0];
      return `BatchGetItem ${keyLabel(req?.Keys?.[0])}`;
    }
    case "TransactWriteItems":
    case "TransactGetItems":
      return `${rec.operation} (${(input.TransactItems as unknown[] | undefined)?.length ?? 0} items)`;
    case "PutItem":
      return `PutItem ${keyLabel(input.Item as Item)}`;
    default:
      return `${rec.operation} ${keyLabel(input.Key as Item)}`;
  }
}

/**
 * What AWS would bill, from what DynamoDB Local reported:
 * - a Query/Scan that returns nothing is reported as 0 units; AWS charges the minimum read (0.5 RCU eventually
 *   consistent, 1 strongly consistent);
 * - calls that fail report no capacity: a conditional write whose condition fails still consumes write capacity on
 *   AWS (at least 1 WCU); a cancelled transaction is counted at 2 WCU per item (an upper bound: AWS does not
 *   document the exact charge);
 * - a transaction's table writes: AWS bills 2 write units per item per KB; DynamoDB Local reports less for
 *   transactions of several items (6 units for 4, 5 or 9 items alike). The table's units are computed from the
 *   items instead (a Put from its item's size; an Update, Delete or ConditionCheck as an item under 1 KB, which every
 *   such item of ours is: accounts, miners, counters) and the difference is added (`txAdded`). Index units are
 *   DynamoDB Local's own (it reports them at 2 per KB in transactions).
 */
export function billedUnits(rec: CapacityRecord) {
  let { readUnits: read, writeUnits: write } = rec;
  let estimated = 0;
  let cancelled = 0;
  let txAdded = 0;
  const input = rec.input as Item;
  if (!rec.error && rec.operation === "TransactWriteItems") {
    const items = (input.TransactItems as Item[] | undefined) ?? [];
    const table = items.reduce(
      (n, t) => n + 2 * (t.Put ? Math.max(1, Math.ceil(itemBytes((t.Put as Item).Item as Item) / 1024)) : 1),
      0,
    );
    txAdded = Math.max(0, table - (rec.byIndex.table ?? 0));
    write += txAdded;
  }
  if (rec.error === "ConditionalCheckFailedException") {
    estimated = 1;
    write += 1;
  } else if (rec.error === "TransactionCanceledException") {
    cancelled = 2 * transactItems(input).length;
    write += cancelled;
  } else if (!rec.error && (rec.operation === "Query" || rec.operation === "Scan") && read === 0) {
    estimated = input.ConsistentRead ? 1 : 0.5;
    read += estimated;
  }
  return { read, write, estimated, cancelled, txAdded };
}

/** An item's size as DynamoDB counts it: attribute names plus values (UTF-8 strings, numbers ~1 byte per 2 digits). */
function valueBytes(v: unknown): number {
  if (v === null || v === undefined || typeof v === "boolean") return 1;
  if (typeof v === "string") return Buffer.byteLength(v);
  if (typeof v === "number") return Math.ceil(String(v).replace(/[-.e+]/g, "").length / 2) + 1;
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return 3 + v.reduce((a: number, x) => a + valueBytes(x) + 1, 0);
  if (v instanceof Set) return [...v].reduce((a: number, x) => a + valueBytes(x), 0);
  return 3 + Object.entries(v as Item).reduce((a, [k, x]) => a + Buffer.byteLength(k) + valueBytes(x) + 1, 0);
}

export function itemBytes(item: Item | undefined): number {
  return Object.entries(item ?? {}).reduce(
    (a, [k, v]) => a + (v === undefined ? 0 : Buffer.byteLength(k) + valueBytes(v)),
    0,
  );
}

function countWrites(rec: CapacityRecord): void {
  if (rec.error) return;
  const input = rec.input as Item;
  const puts: Item[] =
    rec.operation === "PutItem"
      ? [input.Item as Item]
      : rec.operation === "TransactWriteItems"
        ? ((input.TransactItems as Item[] | undefined) ?? []).flatMap((t) =>
            t.Put ? [(t.Put as Item).Item as Item] : [],
          )
        : [];
  for (const item of puts) {
    if (item?.entity === "event") {
      const type = str(item.type);
      events.set(type, (events.get(type) ?? 0) + 1);
      streamRecords++;
    } else if (item?.entity === "job" && str(item.GSI1PK).startsWith("QUEUE#")) {
      streamRecords++;
    }
  }
  if (rec.operation === "Query" && str((input.ExpressionAttributeValues as Item)?.[":pk"]) === "DEADLINE#0")
    sweepRuns++;
}

function onCapacity(rec: CapacityRecord): void {
  const ctx = als.getStore();
  if (ctx?.kind === "ignore") return;
  countWrites(rec);
  countTransaction(ctx, rec);
  if (rec.writeUnits > 0) {
    for (const [where, units] of Object.entries(rec.byIndex))
      writesByIndex.set(where, (writesByIndex.get(where) ?? 0) + units);
  }
  const units = billedUnits(rec);
  const use: OpUse = {
    calls: 1,
    errors: rec.error ? 1 : 0,
    read: units.read,
    write: units.write,
    estimated: units.estimated,
    cancelled: units.cancelled,
    txAdded: units.txAdded,
  };
  const label = describe(rec);
  if (ctx?.kind === "request") addOp(ctx.usage, label, use);
  else addToBucket(bucket(`bg: ${ctx?.kind === "background" ? ctx.name : "other"}`), label, use);
}

let apiPort: number | undefined;

/** Only requests to the API count (fauxqs, the SQS emulator, also serves HTTP in this process). */
export function setApiPort(port: number): void {
  apiPort = port;
}

function onRequestStart(message: unknown): void {
  const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
  if (apiPort !== undefined && request.socket.localPort !== apiPort) return;
  const ctx: RequestCtx = {
    kind: "request",
    method: request.method ?? "GET",
    path: request.url ?? "/",
    started: performance.now(),
    usage: new Map(),
  };
  pending.set(response, ctx);
  // The request's handler runs synchronously after this message, so everything it awaits inherits the context.
  als.enterWith(ctx);
}

function onResponseFinish(message: unknown): void {
  const { response } = message as { response: ServerResponse };
  const ctx = pending.get(response);
  if (!ctx) return;
  pending.delete(response);
  record(ctx, response.statusCode);
}

/** A request (or a doorbell frame) is done: its server time and DynamoDB use go to its class's bucket. */
function record(ctx: RequestCtx, status: number): void {
  const name = classify(ctx.method, ctx.path, status);
  if (!name) return;
  const b = bucket(name);
  b.requests++;
  b.serverMs.push(performance.now() - ctx.started);
  for (const [label, use] of ctx.usage) addToBucket(b, label, use);
}

// ---------------------------------------------------------------------------------------------------------------
// The doorbell (WebSocket): upgrades and frames are not HTTP requests, so Node's request channel never sees them.

/** Units of doorbell work begun but not answered yet (an upgrade, a miner's frame). */
const openUnits = new WeakSet<RequestCtx>();
const wsUndo: (() => void)[] = [];

/** The `type` of a JSON text frame (`malformed` if it is not one). */
function frameType(data: unknown): string {
  try {
    const text = typeof data === "string" ? data : Buffer.from(data as Uint8Array).toString("utf8");
    const type = (JSON.parse(text) as { type?: unknown }).type;
    return typeof type === "string" ? type : "unknown";
  } catch {
    return "malformed";
  }
}

function openUnit(path: string): RequestCtx {
  const ctx: RequestCtx = {
    kind: "request",
    method: "WS",
    path,
    started: performance.now(),
    usage: new Map(),
  };
  openUnits.add(ctx);
  return ctx;
}

function closeUnit(ctx: Ctx | undefined, status: number): void {
  if (ctx?.kind !== "request" || !openUnits.has(ctx)) return;
  openUnits.delete(ctx);
  record(ctx, status);
}

/**
 * Attributes the doorbell's work as requests of method `WS` (the classifier sees `("WS", what, status)`):
 * - an upgrade (`connect`): from the server's `upgrade` event to the socket being handed over (`handleUpgrade`'s
 *   callback), with the key and miner reads it makes;
 * - each frame a miner sends (`hello`, `heartbeat`, ...): from the server socket's `message` event to the server's
 *   answer on that socket (the frame's stand-in for a Lambda invocation of the WebSocket API's route), with its
 *   DynamoDB use. Status 200, or 400 when the answer is an `error` frame.
 * Rings and stop orders the stream handler sends stay the stream handler's. Only server-side sockets (`ws` marks
 * them `_isServer`) count, so the benchmark's own client sockets in the same process are not measured.
 */
export function installDoorbell(): void {
  if (wsUndo.length) return;
  type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;
  const serverProto = http.Server.prototype as unknown as { emit: Emit };
  const serverEmit = serverProto.emit;
  serverProto.emit = function (this: unknown, event, ...args) {
    const req = args[0] as IncomingMessage | undefined;
    if (
      event !== "upgrade" ||
      als.getStore()?.kind === "ignore" ||
      (apiPort !== undefined && req?.socket.localPort !== apiPort)
    )
      return serverEmit.call(this, event, ...args);
    return als.run(openUnit("connect"), () => serverEmit.call(this, event, ...args));
  };
  wsUndo.push(() => {
    serverProto.emit = serverEmit;
  });

  type HandleUpgrade = (this: unknown, req: unknown, socket: unknown, head: unknown, cb: Cb) => void;
  type Cb = (...a: unknown[]) => void;
  const wssProto = WebSocketServer.prototype as unknown as { handleUpgrade: HandleUpgrade };
  const handleUpgrade = wssProto.handleUpgrade;
  wssProto.handleUpgrade = function (this: unknown, req, socket, head, cb) {
    const ctx = als.getStore();
    return handleUpgrade.call(this, req, socket, head, (...a: unknown[]) => {
      closeUnit(ctx, 101);
      cb(...a);
    });
  };
  wsUndo.push(() => {
    wssProto.handleUpgrade = handleUpgrade;
  });

  type Send = (this: { _isServer?: boolean }, data: unknown, ...rest: unknown[]) => void;
  const wsProto = WebSocket.prototype as unknown as { emit: Emit; send: Send };
  const hadOwnEmit = Object.hasOwn(wsProto, "emit");
  const wsEmit = wsProto.emit;
  wsProto.emit = function (this: unknown, event, ...args) {
    if (
      event !== "message" ||
      !(this as { _isServer?: boolean })._isServer ||
      als.getStore()?.kind === "ignore"
    )
      return wsEmit.call(this, event, ...args);
    return als.run(openUnit(frameType(args[0])), () => wsEmit.call(this, event, ...args));
  };
  const wsSend = wsProto.send;
  wsProto.send = function (this: { _isServer?: boolean }, data, ...rest) {
    if (this._isServer) closeUnit(als.getStore(), frameType(data) === "error" ? 400 : 200);
    return wsSend.call(this, data, ...rest);
  };
  wsUndo.push(() => {
    if (hadOwnEmit) wsProto.emit = wsEmit;
    else delete (wsProto as { emit?: Emit }).emit;
    wsProto.send = wsSend;
  });
}

let originalWrite: typeof process.stdout.write | undefined;

function captureLogs(): void {
  originalWrite = process.stdout.write;
  const passThrough = originalWrite;
  process.stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8");
    if (text.startsWith("{") && text.includes('"service":"coordinator"')) {
      if (als.getStore()?.kind !== "ignore") {
        logBytes += Buffer.byteLength(text);
        logLines += text.split("\n").filter(Boolean).length;
        if (text.includes('"level":"ERROR"') && errorLines.length < 5) errorLines.push(text.slice(0, 600));
      }
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    }
    return (passThrough as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof process.stdout.write;
}

type Handler = (event: { Records: unknown[] }) => Promise<unknown>;

/**
 * Runs the pollers' handlers in a named background context and times each invocation (records per batch, ms): the
 * stand-in for the stream and queue Lambdas' invocations and durations.
 */
const unpatch: (() => void)[] = [];

function patchPoller(proto: { start(): void }, name: string): void {
  const start = proto.start;
  unpatch.push(() => {
    proto.start = start;
  });
  proto.start = function (this: { handler: Handler }) {
    const inner = this.handler;
    this.handler = async (event) => {
      const started = performance.now();
      try {
        return await inner(event);
      } finally {
        if (als.getStore()?.kind !== "ignore") {
          const inv = invocations.get(name) ?? { count: 0, records: 0, ms: 0 };
          inv.count++;
          inv.records += event.Records.length;
          inv.ms += performance.now() - started;
          invocations.set(name, inv);
        }
      }
    };
    return als.run({ kind: "background", name }, () => start.call(this));
  };
}

let installed = false;

/** Starts attributing (idempotent). Call before the stack starts. */
export function install(classifier?: Classifier): void {
  if (classifier) classify = classifier;
  if (installed) return;
  installed = true;
  patchPoller(StreamPoller.prototype, "stream handler");
  patchPoller(QueuePoller.prototype, "queue consumers");
  capacityMeter.listener = onCapacity;
  diagnostics.subscribe("http.server.request.start", onRequestStart);
  diagnostics.subscribe("http.server.response.finish", onResponseFinish);
  captureLogs();
}

export function setClassifier(classifier: Classifier): void {
  classify = classifier;
}

export function uninstall(): void {
  if (!installed) return;
  installed = false;
  capacityMeter.listener = undefined;
  for (const undo of unpatch.splice(0)) undo();
  diagnostics.unsubscribe("http.server.request.start", onRequestStart);
  diagnostics.unsubscribe("http.server.response.finish", onResponseFinish);
  for (const undo of wsUndo.splice(0)) undo();
  if (originalWrite) process.stdout.write = originalWrite;
}

/** Runs `fn` (e.g. starting the stack: its cron timers) so that the work it starts counts as background `name`. */
export function asBackground<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return als.run({ kind: "background", name }, fn);
}

/** Runs `fn` without attributing anything it causes (the benchmark's own table access). */
export function ignored<T>(fn: () => Promise<T>): Promise<T> {
  return als.run({ kind: "ignore" }, fn);
}

export function reset(): void {
  buckets = new Map();
  events = new Map();
  streamRecords = 0;
  sweepRuns = 0;
  invocations = new Map();
  writesByIndex = new Map();
  logBytes = 0;
  logLines = 0;
  errorLines = [];
  transactions = new Map();
}

export interface Snapshot {
  buckets: Record<string, Bucket>;
  events: Record<string, number>;
  /** Writes that reach the stream handler through the stream filter (outbox inserts + ready jobs). */
  streamRecords: number;
  sweepRuns: number;
  /** Handler invocations of the stream and queue pollers (Lambda stand-ins). */
  invocations: Record<string, Invocations>;
  /** Write units reported by DynamoDB Local, by where they were spent (`table`, `GSI1`...). */
  writesByIndex: Record<string, number>;
  logBytes: number;
  logLines: number;
  errorLines: string[];
  /** Committed transactions by kind of request, with their money items. */
  transactions: Record<string, TxShape>;
}

export function snapshot(): Snapshot {
  return structuredClone({
    buckets: Object.fromEntries(buckets),
    events: Object.fromEntries(events),
    streamRecords,
    sweepRuns,
    invocations: Object.fromEntries(invocations),
    writesByIndex: Object.fromEntries(writesByIndex),
    logBytes,
    logLines,
    errorLines,
    transactions: Object.fromEntries(transactions),
  });
}

/** Sums buckets (e.g. every `bg:` bucket). */
export function merge(list: Bucket[]): Bucket {
  const out = newBucket();
  for (const b of list) {
    out.requests += b.requests;
    out.serverMs.push(...b.serverMs);
    for (const [label, use] of Object.entries(b.ops)) addToBucket(out, label, use);
  }
  return out;
}

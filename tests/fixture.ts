import { GetCommand, QueryCommand, ScanCommand, type ScanCommandOutput } from "@aws-sdk/lib-dynamodb";
import { expect, inject } from "vitest";
import type { IO } from "../cli/command.ts";
import { ddb } from "../core/db/client.ts";

/** The one shared fixture: the running local stack, an HTTP helper and direct table access. */
export const stack = inject("stack");

export interface Res<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(`${stack.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export async function createAccount(kind: "client" | "miner" | "admin", name = `${kind}-${Math.random()}`) {
  const acct = await api<{ id: string }>("POST", "/v1/admin/accounts", {
    key: stack.adminKey,
    body: { name, kind },
  });
  if (acct.status !== 201) throw new Error(`account: ${acct.status} ${acct.text}`);
  const key = await api<{ key: string; key_id: string }>("POST", `/v1/admin/accounts/${acct.body.id}/keys`, {
    key: stack.adminKey,
    body: {},
  });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${key.text}`);
  return { id: acct.body.id, key: key.body.key, keyId: key.body.key_id };
}

export async function getItem(PK: string, SK: string) {
  const out = await ddb().send(new GetCommand({ TableName: stack.tableName, Key: { PK, SK } }));
  return out.Item;
}

export async function queryPk(PK: string) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: stack.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": PK },
    }),
  );
  return out.Items ?? [];
}

/** Every item of the table (for whole-table assertions, such as "no raw key is stored anywhere"). */
export async function scanTable(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page: ScanCommandOutput = await ddb().send(
      new ScanCommand({ TableName: stack.tableName, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Polls `fn` until it returns a truthy value or the timeout passes (for asynchronous, event-driven effects). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A client account with a balance (credited through the ledger by the admin API). */
export async function fundedClient(amount = 1_000_000_000) {
  const client = await createAccount("client");
  const res = await api("POST", `/v1/admin/accounts/${client.id}/adjust`, {
    key: stack.adminKey,
    body: { amount, reason: "test funding" },
  });
  if (res.status >= 300) throw new Error(`adjust: ${res.status} ${res.text}`);
  return client;
}

export interface TestMiner {
  id: string;
  key: string;
  accountId: string;
  headers: Record<string, string>;
}

/** A miner account and a registered miner (by default: runs echo, one slot). */
export async function registeredMiner(
  body: Record<string, unknown> = {},
  account?: { id: string; key: string },
): Promise<TestMiner> {
  const acct = account ?? (await createAccount("miner"));
  const res = await api<{ miner_id: string }>("POST", "/v1/miners/register", {
    key: acct.key,
    body: { name: `m-${Math.random().toString(36).slice(2)}`, services: ["echo"], concurrency: 1, ...body },
  });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${res.text}`);
  return {
    id: res.body.miner_id,
    key: acct.key,
    accountId: acct.id,
    headers: { "x-miner-id": res.body.miner_id },
  };
}

export interface Claimed {
  job_id: string;
  claim_token: string;
  service: string;
  input: Record<string, unknown>;
  attempt: number;
}

export async function pollJobs(miner: TestMiner, body: Record<string, unknown> = {}) {
  const res = await api<{ jobs: Claimed[] }>("POST", "/v1/miners/poll", {
    key: miner.key,
    headers: miner.headers,
    body,
  });
  return { status: res.status, jobs: res.status === 200 ? res.body.jobs : [], res };
}

export function minerCall(
  miner: TestMiner,
  jobId: string,
  action: "start" | "progress" | "result" | "fail",
  body: Record<string, unknown>,
) {
  return api("POST", `/v1/miners/${jobId}/${action}`, { key: miner.key, headers: miner.headers, body });
}

export async function submitEcho(
  client: { key: string },
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const res = await api<{ id: string; status: string; attempt: number }>("POST", "/v1/jobs", {
    key: client.key,
    body: { service: "echo", input: { hello: "world" }, ...extra },
    headers,
  });
  return res;
}

/**
 * Tests share one stack and run in parallel, so every test that runs jobs works in a region of its own: its miners
 * register in it and its jobs require it. A job without such a constraint could be claimed by any test's miner.
 */
export function isolated() {
  const region = `t-${Math.random().toString(36).slice(2, 10)}`;
  return { region, constraints: { regions: [region] } };
}

/** A miner's doorbell socket (`GET /v1/miners/connect`), with its messages kept in arrival order. */
export interface Doorbell {
  messages: Record<string, unknown>[];
  /** The next message (after those already taken) matching `pred`, or an error after `ms`. */
  next(pred: (m: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  /** Whether a message matching `pred` arrived (so far). */
  saw(pred: (m: Record<string, unknown>) => boolean): boolean;
  send(message: unknown): void;
  close(): Promise<void>;
  /** Drops the TCP connection without a close handshake (a crash or a cut cable). */
  kill(): void;
  socket: import("ws").WebSocket;
}

export async function connectDoorbell(
  miner: TestMiner,
  headers: Record<string, string> = {},
): Promise<Doorbell> {
  const { WebSocket } = await import("ws");
  const url = `${stack.url.replace(/^http/, "ws")}/v1/miners/connect`;
  const socket = new WebSocket(url, {
    headers: { authorization: `Bearer ${miner.key}`, ...miner.headers, ...headers },
  });
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  socket.on("message", (data) => {
    messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
    for (const w of waiters) w();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
            status: res.statusCode,
            body: text ? JSON.parse(text) : {},
            contentType: res.headers["content-type"],
          }),
        ),
      );
    });
    socket.once("error", reject);
  });
  let taken = 0;
  return {
    messages,
    socket,
    saw: (pred) => messages.some(pred),
    next(pred, ms = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = taken; i < messages.length; i++) {
            const m = messages[i] as Record<string, unknown>;
            if (pred(m)) {
              taken = i + 1;
              waiters.delete(check);
              clearTimeout(timer);
              resolve(m);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching doorbell message within ${ms} ms; got ${JSON.stringify(messages)}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    send: (message) => socket.send(JSON.stringify(message)),
    close: () =>
      new Promise((resolve) => {
        if (socket.readyState === socket.CLOSED) return resolve();
        socket.once("close", () => resolve());
        socket.close();
      }),
    kill: () => socket.terminate(),
  };
}

/**
 * `coord <args>` in-process (cli/main.ts) with this IO, what it writes to stdout and stderr captured: the one way
 * tests run a command in-process, whatever environment, stdin, terminal or network each gives it.
 */
export async function coordWithIO(args: string[], io: Omit<IO, "stdout" | "stderr">) {
  const { main } = await import("../cli/main.ts");
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    ...io,
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

/** `coord <args>` in-process (cli/main.ts), its output captured: no process start-up cost. */
export function coordInProcess(args: string[], env: Record<string, string> = {}) {
  // The worker's own config directory (tests/setup-env.ts), never the developer's profiles.
  return coordWithIO(args, {
    env: { COORD_URL: stack.url, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME, ...env },
  });
}

/**
 * Uploads `bytes` as an artifact the way a client does (POST /v1/uploads, then a PUT to its presigned link) and
 * returns its id; both steps are asserted, so a test that needs an input artifact fails where the upload did.
 */
export async function uploadArtifact(
  key: string,
  bytes: Uint8Array,
  contentType: string,
  filename: string,
): Promise<string> {
  const up = await api<{ artifact_id: string; upload_url: string; upload_headers: Record<string, string> }>(
    "POST",
    "/v1/uploads",
    { key, body: { content_type: contentType, size: bytes.length, filename } },
  );
  expect(up.status, up.text).toBe(201);
  const put = await fetch(up.body.upload_url, {
    method: "PUT",
    headers: up.body.upload_headers,
    body: bytes,
  });
  expect(put.status).toBe(200);
  return up.body.artifact_id;
}

/**
 * `coord miner run --services <service> --once` with a miner's key and none of the flags its runner needs (the
 * server to forward to): every forwarding runner's test checks that it refuses to start, naming the missing flag.
 */
export async function minerRunWithoutServer(service: string) {
  const account = await createAccount("miner");
  return coordInProcess(["miner", "run", "--services", service, "--once"], { COORD_API_KEY: account.key });
}

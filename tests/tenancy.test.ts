import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  api,
  type Claimed,
  createAccount,
  eventually,
  fundedClient,
  getItem,
  isolated,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";
import { type Receiver, startReceiver } from "./webhooks-receiver.ts";

/*
 * The two-tenant matrix. Tenant A has a client account (jobs in every state, webhook endpoint and deliveries, keys)
 * and a miner account (a miner holding one of A's jobs, a pool); tenant B has the same kinds of accounts. Every
 * route that names an object is tried with B's key on A's object: each must be 404 (as if the object did not
 * exist) and change nothing. Routes that name no object act on the caller's own account; their listings must not
 * show A's objects. Key kinds: a client key on miner routes and a miner key on admin routes are 403.
 *
 * The route table below must list every documented route (the test reads /v1/openapi.json): a new route fails the
 * coverage check until it is placed in the matrix.
 */

type Kind = "public" | "own" | "tenant" | "miner" | "admin";

const ROUTES: Record<string, Kind> = {
  "GET /v1/health": "public",
  "GET /v1/openapi.json": "public",
  "GET /v1/registry/services": "public",
  "GET /v1/registry/services/{id}": "public",
  "GET /v1/registry/services/{id}/schema": "public",
  "GET /v1/registry/services/{id}/requirements": "public",
  "GET /v1/registry/services/{id}/pricing": "public",

  "GET /v1/account": "own",
  "PATCH /v1/account": "own",
  "GET /v1/account/ledger": "own",
  "GET /v1/account/ledger.csv": "own",
  "GET /v1/account/earnings": "own",
  "POST /v1/jobs": "own",
  "GET /v1/jobs": "own",
  "POST /v1/services/{service}/{action}": "own",
  "GET /v1/keys": "own",
  "POST /v1/keys": "own",
  "POST /v1/pools": "own",
  "GET /v1/pools": "own",
  "GET /v1/webhooks/event-types": "own",
  "POST /v1/webhooks/endpoints": "own",
  "GET /v1/webhooks/endpoints": "own",
  "GET /v1/webhooks/secret": "own",
  "POST /v1/webhooks/secret": "own",
  "POST /v1/webhooks/secret/rotate": "own",

  "GET /v1/jobs/{id}": "tenant",
  "POST /v1/jobs/{id}/cancel": "tenant",
  "POST /v1/jobs/{id}/retry": "tenant",
  "GET /v1/jobs/{id}/result": "tenant",
  "GET /v1/jobs/{id}/receipt": "tenant",
  "GET /v1/jobs/{id}/receipts": "tenant",
  "GET /v1/receipts/{id}": "tenant",
  "GET /v1/receipts/{id}/proof": "tenant",
  "POST /v1/receipts/verify": "own",
  "GET /v1/jobs/{id}/events": "tenant",
  "POST /v1/keys/{key_id}/revoke": "tenant",
  "DELETE /v1/keys/{key_id}": "tenant",
  "POST /v1/keys/{key_id}/rotate": "tenant",
  "GET /v1/pools/{id}": "tenant",
  "PATCH /v1/pools/{id}": "tenant",
  "GET /v1/pools/{id}/members": "tenant",
  "POST /v1/pools/{id}/members": "tenant",
  "DELETE /v1/pools/{id}/members/{account_id}": "tenant",
  "GET /v1/pools/{id}/miners": "tenant",
  "GET /v1/webhooks/endpoints/{id}": "tenant",
  "PATCH /v1/webhooks/endpoints/{id}": "tenant",
  "DELETE /v1/webhooks/endpoints/{id}": "tenant",
  "POST /v1/webhooks/endpoints/{id}/secret/rotate": "tenant",
  "GET /v1/webhooks/endpoints/{id}/deliveries": "tenant",
  "GET /v1/webhooks/endpoints/{id}/deliveries/{delivery_id}": "tenant",
  "POST /v1/webhooks/endpoints/{id}/deliveries/{delivery_id}/redeliver": "tenant",
  "GET /v1/webhooks/jobs/{job_id}/deliveries": "tenant",
  "GET /v1/webhooks/jobs/{job_id}/deliveries/{delivery_id}": "tenant",
  "POST /v1/webhooks/jobs/{job_id}/deliveries/{delivery_id}/redeliver": "tenant",

  "POST /v1/miners/register": "miner",
  "POST /v1/miners/challenge": "miner",
  "GET /v1/miners": "miner",
  "POST /v1/miners/heartbeat": "miner",
  "POST /v1/miners/poll": "miner",
  "POST /v1/miners/drain": "miner",
  "GET /v1/miners/connect": "miner",
  "POST /v1/miners/{job_id}/start": "miner",
  "POST /v1/miners/{job_id}/progress": "miner",
  "POST /v1/miners/{job_id}/result": "miner",
  "POST /v1/miners/{job_id}/fail": "miner",
  "POST /v1/miners/{job_id}/artifacts": "miner",
  "POST /v1/uploads": "own",
  "GET /v1/artifacts/{id}": "tenant",

  "GET /metrics": "admin",
  "POST /v1/admin/accounts": "admin",
  "GET /v1/admin/accounts": "admin",
  "GET /v1/admin/accounts/{id}": "admin",
  "POST /v1/admin/accounts/{id}/keys": "admin",
  "GET /v1/admin/accounts/{id}/keys": "admin",
  "POST /v1/admin/accounts/{id}/adjust": "admin",
  "POST /v1/admin/keys/{key_id}/revoke": "admin",
  "POST /v1/admin/keys/{key_id}/rotate": "admin",
  "GET /v1/admin/audit": "admin",
  "GET /v1/admin/audit.csv": "admin",
  "GET /v1/admin/stats": "admin",
  "GET /v1/admin/ledger/check": "admin",
  "GET /v1/admin/platform/fees": "admin",
  "POST /v1/admin/jobs/{id}/cancel": "admin",
  "GET /v1/receipts/keys": "public",
  "POST /v1/admin/jobs/{id}/refund": "admin",
  "POST /v1/payments/checkout": "own",
  "POST /v1/webhooks/stripe": "public",
  "POST /v1/webhooks/chain": "public",
  "POST /v1/payouts": "own",
  "GET /v1/payouts": "own",
  "GET /v1/admin/payouts": "admin",
  "POST /v1/admin/payouts/{id}/approve": "admin",
  "POST /v1/admin/payouts/{id}/reject": "admin",
  "GET /v1/admin/jobs": "admin",
  "GET /v1/admin/miners": "admin",
  "POST /v1/admin/miners/{id}/drain": "admin",
  "POST /v1/admin/miners/{id}/ban": "admin",
  "POST /v1/admin/miners/{id}/unban": "admin",
  "GET /v1/admin/dlq": "admin",
  "GET /v1/admin/dlq/{queue}": "admin",
  "POST /v1/admin/dlq/{queue}/redrive": "admin",
};

interface Request {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Which route template a concrete request exercises. */
function templateOf(r: Request): string | undefined {
  const path = r.path.split("?")[0] ?? "";
  return Object.keys(ROUTES).find((route) => {
    const [method, template] = route.split(" ");
    if (method !== r.method) return false;
    const re = new RegExp(`^${(template ?? "").replace(/\{\w+\}/g, "[^/]+").replace(/\./g, "\\.")}$`);
    return re.test(path);
  });
}

/** Fills a route template with harmless ids (for kind checks, which are refused before any lookup). */
function sample(route: string): Request {
  const [method = "GET", template = ""] = route.split(" ");
  const path = template
    .replace("{service}/{action}", "echo/run")
    .replace("{queue}", "audit")
    .replace(/\{\w+\}/g, "x_00000000000000000000000000");
  return { method, path, body: method === "GET" ? undefined : {} };
}

interface Tenant {
  client: { id: string; key: string; keyId: string };
  operator: { id: string; key: string; keyId: string };
  miner: TestMiner;
}

let receiver: Receiver;
let a: Tenant;
let b: Tenant;
/** A's jobs: one completed (with a webhook_url), one failed, one held by A's miner. */
let done: string;
let failed: string;
let held: { id: string; token: string };
let endpointA: string;
let endpointDelivery: string;
let jobDelivery: string;
let poolA: string;
let artifactA: string;
/** A's miner heartbeats in the background, naming its held job, so its lease (3 s in tests) stays alive. */
let beating = true;
let beats: Promise<void> | undefined;

async function heartbeatLoop() {
  while (beating) {
    await api("POST", "/v1/miners/heartbeat", {
      key: a.miner.key,
      headers: a.miner.headers,
      body: { jobs: [{ job_id: held.id, claim_token: held.token }] },
    });
    await new Promise((r) => setTimeout(r, 400));
  }
}

/** Runs `fn` with A's heartbeats paused (to observe A's lease without A renewing it). */
async function withoutHeartbeats<T>(fn: () => Promise<T>): Promise<T> {
  beating = false;
  await beats;
  try {
    return await fn();
  } finally {
    beating = true;
    beats = heartbeatLoop();
  }
}

async function claimOne(miner: TestMiner): Promise<Claimed> {
  await api("POST", "/v1/miners/heartbeat", { key: miner.key, headers: miner.headers, body: {} });
  const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
  const [job] = jobs;
  if (!job) throw new Error("no job to claim");
  return job;
}

async function tenant(region: string): Promise<Tenant> {
  const client = await fundedClient();
  const operator = await createAccount("miner");
  const miner = await registeredMiner({ region }, operator);
  return { client, operator, miner };
}

beforeAll(async () => {
  receiver = await startReceiver();
  const { region, constraints } = isolated();
  a = await tenant(region);
  b = await tenant(isolated().region);

  const ep = await api<{ id: string }>("POST", "/v1/webhooks/endpoints", {
    key: a.client.key,
    body: { url: receiver.url },
  });
  expect(ep.status, ep.text).toBe(201);
  endpointA = ep.body.id;

  const first = await submitEcho(a.client, { constraints, webhook_url: receiver.url });
  done = first.body.id;
  const c1 = await claimOne(a.miner);
  await api("POST", `/v1/miners/${done}/result`, {
    key: a.miner.key,
    headers: a.miner.headers,
    body: { claim_token: c1.claim_token, output: { secret: "a's output" } },
  });

  const second = await submitEcho(a.client, { constraints, max_attempts: 1 });
  failed = second.body.id;
  const c2 = await claimOne(a.miner);
  await api("POST", `/v1/miners/${failed}/fail`, {
    key: a.miner.key,
    headers: a.miner.headers,
    body: { claim_token: c2.claim_token, error_code: "boom", retryable: false },
  });

  const third = await submitEcho(a.client, { constraints });
  const c3 = await claimOne(a.miner);
  held = { id: third.body.id, token: c3.claim_token };
  beats = heartbeatLoop();

  const pool = await api<{ id: string }>("POST", "/v1/pools", {
    key: a.operator.key,
    body: { name: "a-pool" },
  });
  poolA = pool.body.id;
  const upload = await api<{ artifact_id: string }>("POST", "/v1/uploads", {
    key: a.client.key,
    body: { content_type: "audio/wav", size: 4 },
  });
  artifactA = upload.body.artifact_id;
  await api("POST", `/v1/pools/${poolA}/members`, { key: a.operator.key, body: { account_id: a.client.id } });

  const statuses = await Promise.all(
    [done, failed, held.id].map(
      async (id) => (await api("GET", `/v1/jobs/${id}`, { key: a.client.key })).body.status,
    ),
  );
  expect(statuses).toEqual(["completed", "failed", "assigned"]);

  endpointDelivery = await eventually(async () => {
    const res = await api<{ items: { id: string }[] }>(
      "GET",
      `/v1/webhooks/endpoints/${endpointA}/deliveries`,
      {
        key: a.client.key,
      },
    );
    return res.body.items?.[0]?.id;
  }, 15_000);
  jobDelivery = await eventually(async () => {
    const res = await api<{ items: { id: string }[] }>("GET", `/v1/webhooks/jobs/${done}/deliveries`, {
      key: a.client.key,
    });
    return res.body.items?.[0]?.id;
  }, 15_000);
  // Let both deliveries finish, so that A's view of them is stable from here on.
  for (const path of [
    `/v1/webhooks/endpoints/${endpointA}/deliveries/${endpointDelivery}`,
    `/v1/webhooks/jobs/${done}/deliveries/${jobDelivery}`,
  ]) {
    await eventually(async () => {
      const res = await api<{ status: string }>("GET", path, { key: a.client.key });
      return res.body.status === "succeeded";
    }, 15_000);
  }
}, 90_000);

afterAll(async () => {
  beating = false;
  await beats;
  await receiver?.close();
});

/** Every request client B makes on one of A's objects. */
function clientRequestsOnA(): Request[] {
  return [
    { method: "GET", path: `/v1/jobs/${done}` },
    { method: "GET", path: `/v1/jobs/${done}?wait=1` },
    { method: "GET", path: `/v1/jobs/${done}/result` },
    { method: "GET", path: `/v1/jobs/${done}/receipt` },
    { method: "GET", path: `/v1/jobs/${done}/receipts` },
    { method: "GET", path: `/v1/receipts/rcpt_${done.slice(4)}` },
    { method: "GET", path: `/v1/receipts/rcpt_${done.slice(4)}/proof` },
    { method: "GET", path: `/v1/jobs/${done}/events` },
    { method: "GET", path: `/v1/jobs/${done}/events`, headers: { accept: "text/event-stream" } },
    { method: "POST", path: `/v1/jobs/${held.id}/cancel` },
    { method: "POST", path: `/v1/jobs/${failed}/retry` },
    { method: "POST", path: `/v1/keys/${a.client.keyId}/revoke` },
    { method: "DELETE", path: `/v1/keys/${a.client.keyId}` },
    { method: "POST", path: `/v1/keys/${a.client.keyId}/rotate`, body: {} },
    { method: "GET", path: `/v1/artifacts/${artifactA}` },
    { method: "GET", path: `/v1/pools/${poolA}` },
    { method: "PATCH", path: `/v1/pools/${poolA}`, body: { accepts_public: true } },
    { method: "GET", path: `/v1/pools/${poolA}/members` },
    { method: "POST", path: `/v1/pools/${poolA}/members`, body: { account_id: b.client.id } },
    { method: "DELETE", path: `/v1/pools/${poolA}/members/${a.client.id}` },
    { method: "GET", path: `/v1/pools/${poolA}/miners` },
    { method: "GET", path: `/v1/webhooks/endpoints/${endpointA}` },
    { method: "PATCH", path: `/v1/webhooks/endpoints/${endpointA}`, body: { enabled: false } },
    { method: "DELETE", path: `/v1/webhooks/endpoints/${endpointA}` },
    { method: "POST", path: `/v1/webhooks/endpoints/${endpointA}/secret/rotate`, body: {} },
    { method: "GET", path: `/v1/webhooks/endpoints/${endpointA}/deliveries` },
    { method: "GET", path: `/v1/webhooks/endpoints/${endpointA}/deliveries/${endpointDelivery}` },
    { method: "POST", path: `/v1/webhooks/endpoints/${endpointA}/deliveries/${endpointDelivery}/redeliver` },
    { method: "GET", path: `/v1/webhooks/jobs/${done}/deliveries` },
    { method: "GET", path: `/v1/webhooks/jobs/${done}/deliveries/${jobDelivery}` },
    { method: "POST", path: `/v1/webhooks/jobs/${done}/deliveries/${jobDelivery}/redeliver` },
  ];
}

/** What A can observe of its own objects: must be identical before and after B's attempts. */
async function snapshotOfA() {
  const get = async (path: string, key = a.client.key) => {
    const res = await api("GET", path, { key });
    return { status: res.status, body: res.body };
  };
  const endpoint = (await get(`/v1/webhooks/endpoints/${endpointA}`)).body as Record<string, unknown>;
  return {
    jobs: await Promise.all([done, failed, held.id].map((id) => get(`/v1/jobs/${id}`))),
    heldItem: await getItem(`JOB#${held.id}`, "JOB").then((i) => ({
      status: i?.status,
      claimToken: i?.claimToken,
      minerId: i?.minerId,
      version: i?.version,
    })),
    events: await get(`/v1/jobs/${done}/events`),
    account: await get("/v1/account"),
    keys: await get("/v1/keys"),
    endpoint: [endpoint.url, endpoint.status, endpoint.event_types, endpoint.secret_info],
    deliveries: [
      await get(`/v1/webhooks/endpoints/${endpointA}/deliveries/${endpointDelivery}`),
      await get(`/v1/webhooks/jobs/${done}/deliveries/${jobDelivery}`),
    ],
    pool: await get(`/v1/pools/${poolA}`, a.operator.key),
    members: await get(`/v1/pools/${poolA}/members`, a.operator.key),
    miner: await getItem(`MINER#${a.miner.id}`, "MINER").then((m) => ({
      status: m?.status,
      active: m?.active,
    })),
  };
}

describe("two tenants", () => {
  it("the matrix lists every documented route", async () => {
    const doc = await api<{ paths: Record<string, Record<string, unknown>> }>("GET", "/v1/openapi.json");
    const documented = Object.entries(doc.body.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const missing = documented.filter((r) => !(r in ROUTES));
    expect(missing, "place these routes in tests/tenancy.test.ts ROUTES").toEqual([]);
    const stale = Object.keys(ROUTES).filter((r) => !documented.includes(r));
    expect(stale, "these routes are no longer documented").toEqual([]);
    // Every route that names an object is exercised below with B's key on A's object.
    const exercised = new Set([...clientRequestsOnA(), ...minerRequestsOnA()].map(templateOf));
    const tenantRoutes = Object.entries(ROUTES).filter(([, k]) => k === "tenant" || k === "miner");
    expect(tenantRoutes.map(([r]) => r).filter((r) => !exercised.has(r) && !OWN_MINER_ROUTES.has(r))).toEqual(
      [],
    );
  });

  it("client B cannot read, cancel, retry or list A's jobs, results, events, keys, pools or webhooks (404), and nothing of A changes", async () => {
    const before = await snapshotOfA();
    for (const r of clientRequestsOnA()) {
      const res = await api(r.method, r.path, { key: b.client.key, body: r.body, headers: r.headers });
      expect(res.status, `${r.method} ${r.path}`).toBe(404);
      expect(res.text).not.toContain("a's output");
    }
    // B's own operator (a miner account) gets the same 404 on A's pool.
    for (const r of clientRequestsOnA().filter((x) => x.path.startsWith("/v1/pools/"))) {
      const res = await api(r.method, r.path, { key: b.operator.key, body: r.body });
      expect(res.status, `${r.method} ${r.path} (miner key)`).toBe(404);
    }
    expect(await snapshotOfA()).toEqual(before);
    // A's key still works: B's revoke and rotate did nothing.
    expect((await api("GET", "/v1/account", { key: a.client.key })).status).toBe(200);
  });

  it("B's listings never show A's objects", async () => {
    const text = async (path: string, key = b.client.key) => {
      const res = await api("GET", path, { key });
      expect(res.status, path).toBe(200);
      return res.text;
    };
    const aIds = [
      done,
      failed,
      held.id,
      endpointA,
      poolA,
      a.client.keyId,
      a.client.id,
      a.operator.id,
      a.miner.id,
    ];
    const seen = [
      await text("/v1/jobs"),
      await text("/v1/jobs?status=completed"),
      await text("/v1/jobs?service=echo&limit=100"),
      await text("/v1/account"),
      await text("/v1/account/ledger"),
      await text("/v1/account/ledger.csv"),
      await text("/v1/account/earnings"),
      await text("/v1/keys"),
      await text("/v1/webhooks/endpoints"),
      await text("/v1/pools"),
      await text("/v1/pools", b.operator.key),
      await text("/v1/miners", b.operator.key),
      await text("/v1/keys", b.operator.key),
      await text("/v1/account/ledger", b.operator.key),
      await text("/v1/account/ledger.csv", b.operator.key),
      await text("/v1/account/earnings", b.operator.key),
    ].join("\n");
    for (const id of aIds) expect(seen).not.toContain(id);
  });

  it("a cursor forged from A's partition is refused with 422 on every listing, and shows nothing of A", async () => {
    const forge = (key: Record<string, unknown>) => Buffer.from(JSON.stringify(key)).toString("base64url");
    const miner = await getItem(`MINER#${a.miner.id}`, "MINER");
    const cursors: [string, string, Record<string, unknown>][] = [
      ["/v1/miners", b.operator.key, { PK: miner?.PK, SK: miner?.SK, GSI1PK: miner?.GSI1PK, GSI1SK: "" }],
      [
        "/v1/keys",
        b.client.key,
        { PK: "KEY#0", SK: "KEY", GSI1PK: `ACCOUNT#${a.client.id}#KEYS`, GSI1SK: "key_~" },
      ],
      ["/v1/account/ledger", b.client.key, { PK: `ACCOUNT#${a.client.id}`, SK: "LEDGER#~" }],
      [
        "/v1/pools",
        b.client.key,
        { PK: `POOL#${poolA}`, SK: "MEMBER#~", GSI1PK: `ACCOUNT#${a.client.id}#POOLS`, GSI1SK: "pool_~" },
      ],
      [`/v1/webhooks/endpoints/${endpointA}/deliveries`, a.client.key, { PK: `WHDLV#${done}`, SK: "msg_~" }],
    ];
    for (const [path, key, cursor] of cursors) {
      const res = await api("GET", `${path}?cursor=${forge(cursor)}`, { key });
      expect(res.status, `${path}: ${res.text}`).toBe(422);
      for (const id of [done, failed, held.id, a.miner.id, poolA]) expect(res.text).not.toContain(id);
    }
  });

  it("a jobs cursor forged from A's partition is refused with 422, not followed", async () => {
    const job = await getItem(`JOB#${done}`, "JOB");
    const cursor = Buffer.from(
      JSON.stringify({ PK: job?.PK, SK: job?.SK, GSI2PK: job?.GSI2PK, GSI2SK: `${job?.GSI2SK}~` }),
    ).toString("base64url");
    const res = await api("GET", `/v1/jobs?cursor=${cursor}`, { key: b.client.key });
    for (const id of [done, failed, held.id]) expect(res.text).not.toContain(id);
    expect(res.status, res.text).toBe(422);
  });
});

/** Miner routes a miner acts on with its own X-Miner-Id only: B's key with A's miner id is the tenancy check. */
const OWN_MINER_ROUTES = new Set(["POST /v1/miners/register", "POST /v1/miners/challenge", "GET /v1/miners"]);

/** Miner B's key, claiming to be A's miner, on every miner route that names a miner or a job. */
function minerRequestsOnA(): Request[] {
  const h = { "x-miner-id": a.miner.id };
  const token = held.token;
  return [
    {
      method: "POST",
      path: "/v1/miners/heartbeat",
      headers: h,
      body: { jobs: [{ job_id: held.id, claim_token: token }] },
    },
    { method: "POST", path: "/v1/miners/poll", headers: h, body: {} },
    { method: "POST", path: "/v1/miners/drain", headers: h, body: {} },
    { method: "GET", path: "/v1/miners/connect", headers: h },
    { method: "POST", path: `/v1/miners/${held.id}/start`, headers: h, body: { claim_token: token } },
    {
      method: "POST",
      path: `/v1/miners/${held.id}/progress`,
      headers: h,
      body: { claim_token: token, progress: 0.5 },
    },
    {
      method: "POST",
      path: `/v1/miners/${held.id}/result`,
      headers: h,
      body: { claim_token: token, output: {} },
    },
    {
      method: "POST",
      path: `/v1/miners/${held.id}/fail`,
      headers: h,
      body: { claim_token: token, error_code: "x", retryable: false },
    },
    { method: "POST", path: `/v1/miners/${held.id}/artifacts`, headers: h, body: { claim_token: token } },
  ];
}

describe("two miners", () => {
  it("miner B cannot heartbeat, poll, drain, start, progress, complete or fail as miner A (404), and nothing changes", async () => {
    const before = await snapshotOfA();
    for (const r of minerRequestsOnA()) {
      const res = await api(r.method, r.path, { key: b.miner.key, headers: r.headers, body: r.body });
      expect(res.status, `${r.method} ${r.path}`).toBe(404);
    }
    expect(await snapshotOfA()).toEqual(before);
  });

  it("miner B with its own id cannot use A's job and claim token, and its heartbeat does not renew A's lease", async () => {
    const before = await snapshotOfA();
    const own = b.miner.headers;
    const body = { claim_token: held.token };
    for (const [action, extra] of [
      ["start", {}],
      ["progress", { progress: 0.5 }],
      ["result", { output: {} }],
      ["fail", { error_code: "x", retryable: false }],
    ] as const) {
      const res = await api("POST", `/v1/miners/${held.id}/${action}`, {
        key: b.miner.key,
        headers: own,
        body: { ...body, ...extra },
      });
      // Refused without effect, and as if the job did not exist: B's account never held it (404, not 409).
      expect(res.status, `${action}: ${res.text}`).toBe(404);
      expect(res.body, action).toMatchObject({ code: "not_found" });
      expect(res.text).not.toContain("a's output");
    }
    await withoutHeartbeats(async () => {
      // Leases are the miner's: A's job lives while A's miner's liveness lease does. B's heartbeat must not move it.
      const lease = (await getItem(`MINER#${a.miner.id}`, "MINER"))?.leaseUntil;
      const beat = await api<{ stop: { job_id: string }[] }>("POST", "/v1/miners/heartbeat", {
        key: b.miner.key,
        headers: own,
        body: { jobs: [{ job_id: held.id, claim_token: held.token }] },
      });
      expect(beat.status).toBe(200);
      expect(beat.body.stop.map((s) => s.job_id)).toEqual([held.id]);
      expect((await getItem(`MINER#${a.miner.id}`, "MINER"))?.leaseUntil).toBe(lease);
      // Nor did it put A's job in B's miner's hands.
      const bHolds = (await getItem(`MINER#${b.miner.id}`, "MINER"))?.held as
        | Record<string, string>
        | undefined;
      expect(Object.keys(bHolds ?? {})).not.toContain(held.id);
    });
    expect(await snapshotOfA()).toEqual(before);

    // A's miner still holds its job and finishes it with its token.
    const done = await api("POST", `/v1/miners/${held.id}/result`, {
      key: a.miner.key,
      headers: a.miner.headers,
      body: { claim_token: held.token, output: { ok: true } },
    });
    expect(done.status, done.text).toBe(200);
  });
});

describe("key kinds", () => {
  const routesOf = (kind: Kind) => Object.keys(ROUTES).filter((r) => ROUTES[r] === kind);

  it("a client key (and an admin key) on every miner route is 403", async () => {
    for (const route of routesOf("miner")) {
      const r = sample(route);
      for (const key of [a.client.key, stack.adminKey]) {
        const res = await api(r.method, r.path, { key, body: r.body, headers: { "x-miner-id": a.miner.id } });
        expect(res.status, route).toBe(403);
      }
    }
  });

  it("a miner key (and a client key) on every admin route is 403", async () => {
    for (const route of routesOf("admin")) {
      const r = sample(route);
      for (const key of [a.miner.key, a.client.key]) {
        const res = await api(r.method, r.path, { key, body: r.body });
        expect(res.status, route).toBe(403);
      }
    }
  });

  it("a miner key on client job and webhook routes is 403", async () => {
    const clientOnly = Object.keys(ROUTES).filter(
      // A job's receipts are its miner's too (the miner account that completed it): not client-only.
      (r) =>
        /^(GET|POST|PATCH|DELETE) \/v1\/(jobs|services|webhooks)/.test(r) &&
        ROUTES[r] !== "public" &&
        !/\/receipts?$/.test(r),
    );
    expect(clientOnly.length).toBeGreaterThan(10);
    for (const route of clientOnly) {
      const r = sample(route);
      const res = await api(r.method, r.path, { key: a.miner.key, body: r.body });
      expect(res.status, route).toBe(403);
    }
  });
});

import { describe, expect, it } from "vitest";
import {
  api,
  createAccount,
  fundedClient,
  isolated,
  pollJobs,
  registeredMiner,
  scanTable,
  stack,
  submitEcho,
} from "./fixture.ts";

/**
 * Malformed requests over every route of the OpenAPI document: each must be a 4xx problem+json (never a 5xx), and
 * none may change anything the fuzz's own accounts own. The shapes are the ones outside testing found and their
 * relatives: bad auth, ids too long for a key or not ids at all, bodies that are not JSON objects or carry values of
 * the wrong type, numbers JSON cannot carry, query values out of range, headers too long.
 */

type Kind = "client" | "miner" | "admin" | "any" | "none";
interface Op {
  method: string;
  path: string;
  auth: Kind;
  body?: { properties?: Record<string, { type?: string | string[] }> };
  query: { name: string; schema: { type?: string | string[] } }[];
}
interface Variant {
  name: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** A seeded generator, so a failure names a variant that the next run repeats. */
function rng(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}
const rand = rng(20261201);
const junk = (n: number) =>
  Array.from({ length: n }, () => "abcxyz09_-~%2F%00%E2%98%83"[Math.floor(rand() * 26)]).join("");

const LONG_ID = "x".repeat(3000);
const BAD_IDS = [
  LONG_ID,
  `job_${"0".repeat(2100)}`,
  "%00",
  "..%2F..%2Fadmin",
  "%E2%98%83",
  "'%20OR%201%3D1--",
  "%FF%FE",
  "a".repeat(300),
];

function typeOf(schema: { type?: string | string[] } | undefined): string | undefined {
  const t = schema?.type;
  return Array.isArray(t) ? t.find((x) => x !== "null") : t;
}

/** A value of the wrong type for a JSON schema type (valibot refuses it, whatever the field). */
function wrongValue(type: string | undefined): string {
  switch (type) {
    case "string":
      return "12345";
    case "number":
    case "integer":
      return '"not a number"';
    case "boolean":
      return '"yes"';
    case "array":
      return '{"not":"an array"}';
    case "object":
      return '"not an object"';
    default:
      return "1e999";
  }
}

function variantsFor(op: Op, good: (name: string) => string, keys: Record<string, string>): Variant[] {
  const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
  const fill = (override: Record<string, string> = {}) =>
    op.path.replace(/\{(\w+)\}/g, (_, n: string) => override[n] ?? good(n));
  const base = fill();
  const key = op.auth === "none" ? undefined : keys[op.auth === "any" ? "client" : op.auth];
  const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  // The routes a miner calls as one of its miners (register, its key challenge and the listing name no miner).
  const asMiner =
    op.path.startsWith("/v1/miners/") &&
    op.path !== "/v1/miners/register" &&
    op.path !== "/v1/miners/challenge";
  const miner: Record<string, string> = asMiner ? { "x-miner-id": good("miner_id") } : {};
  const ok = { ...auth, ...miner };
  const json = { "content-type": "application/json" };
  const out: Variant[] = [];
  const add = (name: string, v: Partial<Variant>) =>
    out.push({ name, path: v.path ?? base, headers: v.headers ?? ok, body: v.body });
  const hasBody = op.method !== "get" && op.method !== "delete";

  if (op.auth !== "none") {
    const wrongKind = op.auth === "client" ? keys.miner : op.auth === "any" ? undefined : keys.client;
    const auths: Record<string, Record<string, string>> = {
      "no key": {},
      "bearer without a key": { authorization: "Bearer" },
      "bearer with spaces": { authorization: "Bearer    " },
      "a short key": { authorization: "Bearer ck_short" },
      "an unknown prefix": { authorization: `Bearer zz_${"a".repeat(43)}` },
      "a well-formed unknown client key": { authorization: `Bearer ck_${"0".repeat(43)}` },
      "a well-formed unknown admin key": { authorization: `Bearer ak_${"0".repeat(43)}` },
      "a 5000-character key": { authorization: `Bearer ck_${"a".repeat(5000)}` },
      "latin-1 in the key": { authorization: "Bearer ck_\u00e9\u00e9\u00e9" },
      "a key with a trailing word": { authorization: `Bearer ${key} extra` },
      "basic auth": { authorization: "Basic dXNlcjpwYXNz" },
      "an empty x-api-key": { "x-api-key": "" },
      "a garbage x-api-key": { "x-api-key": junk(40) },
      "a truncated real key": { authorization: `Bearer ${key?.slice(0, -2)}` },
      "a real key with one character changed": {
        authorization: `Bearer ${key?.slice(0, -1)}${key?.endsWith("a") ? "b" : "a"}`,
      },
      ...(wrongKind ? { "a key of the wrong kind": { authorization: `Bearer ${wrongKind}` } } : {}),
    };
    for (const [name, headers] of Object.entries(auths))
      add(`auth: ${name}`, { headers: { ...miner, ...headers } });
  }
  for (const p of params)
    for (const bad of BAD_IDS) add(`path {${p}} = ${bad.slice(0, 20)}`, { path: fill({ [p]: bad }) });
  if (Object.keys(miner).length) {
    add("x-miner-id too long for a key", { headers: { ...auth, "x-miner-id": LONG_ID } });
    add("x-miner-id not an id", { headers: { ...auth, "x-miner-id": "../../etc" } });
    add("x-miner-id of no miner", { headers: { ...auth, "x-miner-id": `mnr_${"0".repeat(26)}` } });
  }
  for (const q of op.query) {
    const t = typeOf(q.schema);
    const bads = t === "number" || t === "integer" ? ["abc", "-1", "1e999", "0.5x"] : [LONG_ID];
    for (const b of bads) add(`query ${q.name}=${b.slice(0, 12)}`, { path: `${base}?${q.name}=${b}` });
  }
  if (q(op, "cursor")) add("query cursor not ours", { path: `${base}?cursor=${btoa("{}")}` });
  if (hasBody) {
    add("body as text/plain", { headers: { ...ok, "content-type": "text/plain" }, body: "{}" });
    add("body as a form", {
      headers: { ...ok, "content-type": "application/x-www-form-urlencoded" },
      body: "a=1",
    });
    add("body not JSON", { headers: { ...ok, ...json }, body: '{"a":' });
    add("body not UTF-8", {
      headers: { ...ok, ...json },
      body: new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]),
    });
    for (const raw of ["[]", "[1,2]", "1", '"text"', "null", "true"])
      add(`body ${raw}`, { headers: { ...ok, ...json }, body: raw });
    for (const [name, schema] of Object.entries(op.body?.properties ?? {})) {
      const wrong = wrongValue(typeOf(schema));
      add(`body.${name} = ${wrong}`, { headers: { ...ok, ...json }, body: `{"${name}":${wrong}}` });
    }
    add("Idempotency-Key too long", {
      headers: { ...ok, ...json, "idempotency-key": "k".repeat(1000) },
      body: "[]",
    });
  }
  // Path junk past the route: no route matches, whatever the route (a 404 problem, never a 5xx).
  while (out.length < 30) add("junk past the path", { path: `${base}/${junk(12)}%2F${junk(6)}` });
  return out;
}

function q(op: Op, name: string) {
  return op.query.some((p) => p.name === name);
}

async function send(op: Op, v: Variant) {
  const res = await fetch(`${stack.url}${v.path}`, {
    method: op.method.toUpperCase(),
    headers: v.headers,
    body: v.body as RequestInit["body"],
  });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** Everything the fuzz's own accounts own, comparable across the run (rate-limit windows aside). */
async function ownedState(ids: string[]) {
  const items = await scanTable();
  return (
    items
      // Rate-limit windows move with every request; the audit trail is written from events after the fact (a real
      // change shows in the items themselves and their outbox events).
      .filter((i) => !/^(RATE|AUDIT)#/.test(String(i.PK)))
      .map((i) => JSON.stringify(i, Object.keys(i).sort()))
      .filter((s) => ids.some((id) => s.includes(id)))
      .sort()
  );
}

describe("route fuzz", () => {
  it("every route answers malformed requests with a 4xx problem+json, never a 5xx, and changes nothing", async () => {
    const doc = (
      await api<{ paths: Record<string, Record<string, Record<string, unknown>>> }>("GET", "/v1/openapi.json")
    ).body;
    const ops: Op[] = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, o]) => ({
        method,
        path,
        auth: (o["x-coord-auth"] as Kind) ?? "none",
        body: (o.requestBody as { content: Record<string, { schema: Op["body"] }> } | undefined)?.content[
          "application/json"
        ]?.schema,
        query: (
          (o.parameters as { in: string; name: string; schema: Op["query"][number]["schema"] }[]) ?? []
        ).filter((p) => p.in === "query"),
      })),
    );
    expect(ops.length).toBeGreaterThan(50);

    // The objects the routes are pointed at: real ones, so validation past the lookups is exercised too.
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const admin = await createAccount("admin");
    const minerAcct = await createAccount("miner");
    const miner = await registeredMiner({ region }, minerAcct);
    const held = await submitEcho(client, { constraints });
    await pollJobs(miner, { wait_seconds: 5 });
    const queued = await submitEcho(client, { constraints: { regions: ["nowhere-fuzz"] } });
    const pool = await api<{ id: string }>("POST", "/v1/pools", {
      key: minerAcct.key,
      body: { name: "fuzz-pool" },
    });
    const endpoint = await api<{ id: string }>("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "https://example.com/hook" },
    });
    const goods: Record<string, string> = {
      miner_id: miner.id,
      job_id: held.body.id,
      key_id: client.keyId,
      queue: "audit",
      service: "echo",
      action: "run",
      account_id: client.id,
      delivery_id: `msg_${"0".repeat(26)}`,
    };
    const good = (op: Op) => (name: string) => {
      if (name !== "id") return goods[name] ?? `x_${"0".repeat(26)}`;
      if (op.path.startsWith("/v1/admin/accounts")) return client.id;
      if (op.path.startsWith("/v1/admin/miners")) return miner.id;
      if (op.path.startsWith("/v1/pools")) return pool.body.id;
      if (op.path.startsWith("/v1/webhooks/endpoints")) return endpoint.body.id;
      if (op.path.startsWith("/v1/registry")) return "echo";
      return queued.body.id;
    };

    // One fresh key per route, so the rate limiter (which would answer 429 to everything) stays out of the way.
    const mint = async (accountId: string) => {
      const res = await api<{ key: string }>("POST", `/v1/admin/accounts/${accountId}/keys`, {
        key: stack.adminKey,
        body: {},
      });
      if (res.status !== 201) throw new Error(`mint: ${res.status} ${res.text}`);
      return res.body.key;
    };
    const keyring = async () => ({
      client: await mint(client.id),
      miner: await mint(minerAcct.id),
      admin: await mint(admin.id),
    });
    const plans: { op: Op; variants: Variant[] }[] = [];
    for (const op of ops) plans.push({ op, variants: variantsFor(op, good(op), await keyring()) });

    const ids = [client.id, admin.id, minerAcct.id, miner.id, held.body.id, queued.body.id, pool.body.id];
    const before = await ownedState(ids);
    const failures: string[] = [];
    let sent = 0;
    for (const { op, variants } of plans) {
      expect(variants.length, `${op.method} ${op.path}`).toBeGreaterThanOrEqual(30);
      // Two at a time: enough to finish in seconds, not so many that the stack's limits answer instead.
      for (let i = 0; i < variants.length; i += 2) {
        await Promise.all(
          variants.slice(i, i + 2).map(async (v) => {
            const res = await send(op, v);
            sent++;
            const where = `${op.method.toUpperCase()} ${op.path} [${v.name}] -> ${res.status} ${res.text.slice(0, 160)}`;
            if (res.status < 400 || res.status >= 500) failures.push(where);
            else if (!res.type.includes("application/problem+json"))
              failures.push(`not problem+json: ${where}`);
          }),
        );
      }
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(30 * ops.length);
    expect(await ownedState(ids)).toEqual(before);
  }, 300_000);
});

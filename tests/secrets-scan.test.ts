import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../core/accounts/api-key.ts";
import { freePort } from "../local/ports.ts";
import { eventually, isolated, scanTable, stack } from "./fixture.ts";
import { type Receiver, startReceiver } from "./webhooks-receiver.ts";

/*
 * No stored item, log line or response body carries a raw API key, and no idempotency record, log line or other
 * answer carries a webhook signing secret (`whsec_`: stored only where signing needs it, shown once). tests/auth.test.ts scans the table after a
 * key-only workflow; here the workflow is the whole product (accounts, delegated and rotated keys, a private pool, a
 * miner, a job with an Idempotency-Key and a webhook, results, ledger, failed authentications), and the logs are
 * captured from a stack of our own: the shared test stack runs in vitest's global-setup process, whose output a
 * test cannot read.
 */

interface Answer {
  status: number;
  text: string;
  body: Record<string, unknown>;
}

type Call = (
  method: string,
  path: string,
  opts?: {
    key?: string;
    apiKeyHeader?: boolean;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  },
) => Promise<Answer>;

function caller(base: string): Call {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key && opts.apiKeyHeader) headers["x-api-key"] = opts.key;
    else if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    const res = await fetch(`${base}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = {};
    }
    return { status: res.status, text, body: parsed };
  };
}

/**
 * Runs the whole product once. Returns every raw key and webhook secret it was shown and every response body it got,
 * except the answers that mint a key or show a secret (they show it once, by design).
 */
async function workflow(call: Call, adminKey: string, webhookUrl: string) {
  const secrets: string[] = [];
  const webhookSecrets: string[] = [];
  const bodies: string[] = [];
  const must = async (expected: number, ...args: Parameters<Call>) => {
    const res = await call(...args);
    expect(res.status, `${args[0]} ${args[1]}: ${res.text}`).toBe(expected);
    return res;
  };
  const record = async (expected: number, ...args: Parameters<Call>) => {
    const res = await must(expected, ...args);
    bodies.push(res.text);
    return res;
  };
  const minted = async (expected: number, ...args: Parameters<Call>) => {
    const res = await must(expected, ...args);
    const key = String(res.body.key);
    expect(key).toMatch(/^(ck|mk|ak)_/);
    secrets.push(key);
    return { ...res, key, keyId: String(res.body.key_id) };
  };
  /** An answer that shows a `whsec_` secret, sent twice under one Idempotency-Key: the replay must not show it. */
  const shownOnce = async (expected: number, method: string, path: string, key: string, body?: unknown) => {
    const headers = { "idempotency-key": `scan-secret-${Math.random()}` };
    const res = await must(expected, method, path, { key, body, headers });
    const secret = String(res.body.secret);
    expect(secret).toMatch(/^whsec_/);
    webhookSecrets.push(secret);
    const replay = await record(expected, method, path, { key, body, headers });
    expect(replay.body).toMatchObject({ secret: null, secret_redacted: true });
    return res;
  };
  const { region } = isolated();

  // Accounts and keys: root keys, a delegation chain, a rotation, an admin revocation.
  const client = await record(201, "POST", "/v1/admin/accounts", {
    key: adminKey,
    body: { name: "scan-client", kind: "client" },
  });
  const operator = await record(201, "POST", "/v1/admin/accounts", {
    key: adminKey,
    body: { name: "scan-operator", kind: "miner" },
  });
  const clientId = String(client.body.id);
  const operatorId = String(operator.body.id);
  const root = await minted(201, "POST", `/v1/admin/accounts/${clientId}/keys`, { key: adminKey, body: {} });
  const minerKey = await minted(201, "POST", `/v1/admin/accounts/${operatorId}/keys`, {
    key: adminKey,
    body: {},
  });
  const spare = await minted(201, "POST", `/v1/admin/accounts/${clientId}/keys`, {
    key: adminKey,
    body: { name: "spare" },
  });
  await record(200, "POST", `/v1/admin/keys/${spare.keyId}/revoke`, { key: adminKey });
  const child = await minted(201, "POST", "/v1/keys", { key: root.key, body: { name: "ci" } });
  const grandchild = await minted(201, "POST", "/v1/keys", {
    key: child.key,
    body: { scopes: ["jobs:read"] },
  });
  const rotated = await minted(201, "POST", `/v1/keys/${root.keyId}/rotate`, {
    key: root.key,
    body: { grace_seconds: 60 },
  });
  await record(201, "POST", `/v1/admin/accounts/${clientId}/adjust`, {
    key: adminKey,
    body: { amount: 1_000_000, reason: "scan funding" },
  });
  await record(200, "GET", "/v1/keys", { key: rotated.key });
  await record(200, "GET", `/v1/admin/accounts/${clientId}/keys`, { key: adminKey });

  // A private pool with the client as member, and a miner in it.
  const pool = await record(201, "POST", "/v1/pools", { key: minerKey.key, body: { name: "scan-pool" } });
  const poolId = String(pool.body.id);
  await record(201, "POST", `/v1/pools/${poolId}/members`, {
    key: minerKey.key,
    body: { account_id: clientId },
  });
  await record(200, "PATCH", `/v1/pools/${poolId}`, { key: minerKey.key, body: { accepts_public: true } });
  const reg = await record(201, "POST", "/v1/miners/register", {
    key: minerKey.key,
    apiKeyHeader: true,
    body: { name: "scan-rig", services: ["echo"], region, pool: poolId },
  });
  const miner = { "x-miner-id": String(reg.body.miner_id) };

  // A job, submitted twice with one Idempotency-Key, run to completion with a webhook; then everything read back.
  const endpoint = await shownOnce(201, "POST", "/v1/webhooks/endpoints", child.key, { url: webhookUrl });
  await shownOnce(200, "POST", `/v1/webhooks/endpoints/${endpoint.body.id}/secret/rotate`, child.key, {
    overlap_seconds: 3600,
  });
  await shownOnce(200, "POST", "/v1/webhooks/secret", child.key);
  await shownOnce(200, "POST", "/v1/webhooks/secret/rotate", child.key, { overlap_seconds: 3600 });
  await record(200, "GET", `/v1/webhooks/endpoints/${endpoint.body.id}`, { key: child.key });
  await record(200, "GET", "/v1/webhooks/secret", { key: child.key });
  const submit = {
    key: child.key,
    apiKeyHeader: true,
    headers: { "idempotency-key": `scan-${Math.random()}` },
    body: {
      service: "echo",
      input: { note: "no secrets here" },
      constraints: { regions: [region], pool: poolId },
      webhook_url: webhookUrl,
      metadata: { purpose: "scan" },
    },
  };
  const job = await record(201, "POST", "/v1/jobs", submit);
  await record(201, "POST", "/v1/jobs", submit);
  const jobId = String(job.body.id);
  await record(200, "POST", "/v1/miners/heartbeat", { key: minerKey.key, headers: miner, body: {} });
  const polled = await record(200, "POST", "/v1/miners/poll", {
    key: minerKey.key,
    headers: miner,
    body: { wait_seconds: 5 },
  });
  const token = String((polled.body.jobs as { claim_token: string }[])[0]?.claim_token);
  await record(200, "POST", `/v1/miners/${jobId}/start`, {
    key: minerKey.key,
    headers: miner,
    body: { claim_token: token },
  });
  await record(200, "POST", `/v1/miners/${jobId}/progress`, {
    key: minerKey.key,
    headers: miner,
    body: { claim_token: token, progress: 0.5 },
  });
  await record(200, "POST", `/v1/miners/${jobId}/result`, {
    key: minerKey.key,
    headers: miner,
    body: { claim_token: token, output: { ok: true } },
  });
  for (const path of [
    `/v1/jobs/${jobId}`,
    `/v1/jobs/${jobId}/result`,
    `/v1/jobs/${jobId}/events`,
    "/v1/jobs",
    "/v1/account",
    "/v1/account/ledger",
    `/v1/pools/${poolId}`,
  ]) {
    // Job reads with the delegated read-only key, the rest with the rotated root key.
    await record(200, "GET", path, { key: path.startsWith("/v1/jobs") ? grandchild.key : rotated.key });
  }
  await eventually(async () => {
    const res = await call("GET", `/v1/webhooks/jobs/${jobId}/deliveries`, { key: rotated.key });
    return ((res.body.items as unknown[]) ?? []).length > 0;
  }, 15_000);
  await record(200, "GET", `/v1/webhooks/jobs/${jobId}/deliveries`, { key: rotated.key });
  await record(200, "GET", "/v1/admin/audit?limit=1000", { key: adminKey });
  await record(200, "GET", "/v1/admin/jobs", { key: adminKey });
  await record(200, "GET", "/v1/admin/miners", { key: adminKey });

  // Refusals: a mistyped key, a revoked key, a key on the wrong route, a key in the query string, a key as a body.
  const typo = `${child.key.slice(0, -1)}${child.key.endsWith("0") ? "1" : "0"}`;
  await record(401, "GET", "/v1/account", { key: typo });
  await record(401, "GET", "/v1/account", { key: spare.key });
  await record(403, "POST", "/v1/miners/poll", { key: child.key, body: {} });
  await record(403, "GET", "/v1/admin/stats", { key: minerKey.key });
  await record(401, "GET", `/v1/account?api_key=${child.key}`);
  await record(422, "POST", "/v1/pools/x/members", { key: minerKey.key, body: { account_id: child.key } });
  await record(401, "GET", "/v1/account", { headers: { authorization: `Basic ${child.key}` } });
  return { secrets, webhookSecrets, bodies, admin: adminKey };
}

/** A key, or the 43 random characters that make it one (so a stripped prefix does not hide it). */
function traces(key: string): string[] {
  return [key, key.slice(3, 46)];
}

const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
});

describe("raw keys and webhook secrets", () => {
  it("after a full workflow no stored item contains a raw key, key hashes sit only in key records, and no idempotency record holds a whsec_ secret", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const { secrets, webhookSecrets, bodies } = await workflow(
      caller(stack.url),
      stack.adminKey,
      receiver.url,
    );
    const items = await scanTable();
    const dump = JSON.stringify(items);
    for (const key of secrets) {
      for (const t of traces(key)) expect(dump).not.toContain(t);
      // The hash is how a key is found: it is the key record's PK, and it appears only in key records.
      const hash = hashApiKey(key);
      expect(dump).toContain(`KEY#${hash}`);
      const holders = items.filter((i) => JSON.stringify(i).includes(hash)).map((i) => i.entity);
      expect(new Set(holders)).toEqual(new Set(holders.filter((e) => e === "apiKey" || e === "apiKeyRef")));
    }
    const answers = bodies.join("\n");
    for (const key of secrets) for (const t of traces(key)) expect(answers).not.toContain(t);
    // Webhook payloads name accounts and keys by id only.
    const delivered = receiver.received.map((r) => JSON.stringify(r.headers) + r.body).join("\n");
    for (const key of secrets) for (const t of traces(key)) expect(delivered).not.toContain(t);

    // Webhook secrets: kept only where signing needs them (the endpoint, the account's default secret), never in an
    // idempotency record (every secret-bearing answer above was replayed), an answer after the first, or a payload.
    expect(webhookSecrets).toHaveLength(4);
    const idempotency = items.filter((i) => i.entity === "idempotency");
    expect(idempotency.length).toBeGreaterThanOrEqual(4);
    expect(idempotency.filter((i) => JSON.stringify(i).includes("whsec_"))).toEqual([]);
    for (const secret of webhookSecrets) {
      const holders = items.filter((i) => JSON.stringify(i).includes(secret)).map((i) => i.entity);
      expect(holders.length, "the secret signs: it is stored once").toBe(1);
      expect(["webhookEndpoint", "webhookSecret"]).toContain(holders[0]);
      expect(answers).not.toContain(secret);
      expect(delivered).not.toContain(secret);
    }
  }, 60_000);

  it("no log line of a stack that ran the full workflow contains a raw key or a webhook secret; the admin key is printed once, in the banner", async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const port = await freePort();
    // The child gets its own stack: none of this test stack's coordinates, every log level on.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("COORD_") && !k.startsWith("VITEST")),
    );
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "local/main.ts"], {
      env: {
        ...env,
        PORT: String(port),
        COORD_EPHEMERAL: "1",
        COORD_LOG_LEVEL: "DEBUG",
        COORD_WEBHOOK_ALLOW_PRIVATE: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    try {
      // Generous: `npm start` is up in seconds, but this machine may be busy with other stacks.
      const deadline = Date.now() + 100_000;
      while (!/Admin key:\s+(\S+)/.test(out)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`stack did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const adminKey = /Admin key:\s+(\S+)/.exec(out)?.[1] ?? "";
      const { secrets, webhookSecrets, bodies } = await workflow(
        caller(`http://127.0.0.1:${port}`),
        adminKey,
        receiver.url,
      );
      // Let the pollers (stream, queues, webhooks) finish what the workflow started, and log it.
      await new Promise((r) => setTimeout(r, 2000));
      expect(out).toContain('"message":"request"');
      for (const key of secrets) {
        for (const t of traces(key)) expect(out).not.toContain(t);
        expect(out).not.toContain(hashApiKey(key));
      }
      for (const key of secrets) for (const t of traces(key)) expect(bodies.join("\n")).not.toContain(t);
      for (const secret of webhookSecrets) expect(out).not.toContain(secret);
      // The bootstrap admin key appears exactly once: the line main.ts prints so that an operator can use it.
      const lines = out.split("\n").filter((l) => l.includes(adminKey.slice(3)));
      expect(lines).toEqual([`  Admin key:  ${adminKey}`]);
      expect(out).not.toContain(hashApiKey(adminKey));
    } finally {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        });
      }
    }
  }, 180_000);
});

import { describe, expect, it } from "vitest";
import { hashApiKey } from "../core/accounts/api-key.ts";
import { api, createAccount, scanTable, stack } from "./fixture.ts";

interface Issued {
  key: string;
  key_id: string;
  scopes: string[];
  expires_at: string | null;
  parent_key_id: string | null;
  status: string;
  /** Present on a problem+json answer. */
  detail?: string;
  errors?: { path: string }[];
}

async function mintRoot(accountId: string, body: Record<string, unknown> = {}) {
  const res = await api<Issued>("POST", `/v1/admin/accounts/${accountId}/keys`, {
    key: stack.adminKey,
    body,
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function delegate(parentKey: string, body: Record<string, unknown> = {}) {
  return api<Issued>("POST", "/v1/keys", { key: parentKey, body });
}

async function accountStatus(key: string) {
  return (await api("GET", "/v1/account", { key })).status;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("authentication", () => {
  it("a key past its expiry is refused with 401", async () => {
    const { id } = await createAccount("client");
    const short = await mintRoot(id, { expires_in_seconds: 1 });
    expect(short.expires_at).not.toBeNull();
    expect(await accountStatus(short.key)).toBe(200);
    await sleep(1100);
    const res = await api("GET", "/v1/account", { key: short.key });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: "unauthorized", detail: "API key expired" });
  });

  it("a revoked key is refused with 401 on its very next request", async () => {
    const { key, keyId } = await createAccount("client");
    expect(await accountStatus(key)).toBe(200);
    const revoked = await api("POST", `/v1/keys/${keyId}/revoke`, { key });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ key_id: keyId, status: "revoked" });
    const res = await api("GET", "/v1/account", { key });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ detail: "API key revoked" });
  });

  it("a mistyped key, a key of an unknown prefix and an unknown well-formed key are all 401", async () => {
    const { key } = await createAccount("client");
    const typo = `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
    expect(await accountStatus(typo)).toBe(401);
    expect(await accountStatus(`xk_${key.slice(3)}`)).toBe(401);
    const other = await createAccount("client");
    await api("POST", `/v1/keys/${other.keyId}/revoke`, { key: other.key });
    expect(await accountStatus(other.key)).toBe(401);
  });

  it("an expiry in the past or given twice is refused with 422", async () => {
    const { id } = await createAccount("client");
    const past = await api("POST", `/v1/admin/accounts/${id}/keys`, {
      key: stack.adminKey,
      body: { expires_at: "2001-01-01T00:00:00Z" },
    });
    expect(past.status).toBe(422);
    const both = await api("POST", `/v1/admin/accounts/${id}/keys`, {
      key: stack.adminKey,
      body: { expires_at: "2099-01-01T00:00:00Z", expires_in_seconds: 60 },
    });
    expect(both.status).toBe(422);
    expect(both.body.errors).toEqual([expect.objectContaining({ path: "body.expires_at" })]);
  });

  it("an unknown scope is refused with 422 and admin:* is reserved to admin accounts", async () => {
    const { id } = await createAccount("client");
    const typo = await api("POST", `/v1/admin/accounts/${id}/keys`, {
      key: stack.adminKey,
      body: { scopes: ["jobs:wirte"] },
    });
    expect(typo.status).toBe(422);
    const admin = await api("POST", `/v1/admin/accounts/${id}/keys`, {
      key: stack.adminKey,
      body: { scopes: ["admin:*"] },
    });
    expect(admin.status).toBe(422);
  });
});

describe("scopes", () => {
  it("a key without account:read gets 403 on the ledger and a key with it gets 200", async () => {
    const { key } = await createAccount("client");
    const narrow = await delegate(key, { scopes: ["jobs:read"] });
    expect(narrow.status).toBe(201);
    const denied = await api("GET", "/v1/account/ledger", { key: narrow.body.key });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: "forbidden", detail: "this key lacks scope 'account:read'" });
    expect((await api("GET", "/v1/account/ledger", { key })).status).toBe(200);
  });

  it("a key without keys:write cannot mint keys (403) and without keys:read cannot list them (403)", async () => {
    const { key } = await createAccount("client");
    const reader = await delegate(key, { scopes: ["jobs:read", "keys:read"] });
    expect((await delegate(reader.body.key, { scopes: ["jobs:read"] })).status).toBe(403);
    expect((await api("GET", "/v1/keys", { key: reader.body.key })).status).toBe(200);
    const jobsOnly = await delegate(key, { scopes: ["jobs:read"] });
    expect((await api("GET", "/v1/keys", { key: jobsOnly.body.key })).status).toBe(403);
  });
});

describe("delegation", () => {
  it("a delegated key cannot hold a scope its parent lacks (403)", async () => {
    const { key } = await createAccount("client");
    const parent = await delegate(key, { scopes: ["jobs:read", "keys:write"] });
    const res = await delegate(parent.body.key, { scopes: ["jobs:read", "jobs:write"] });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: "forbidden" });
    expect(String(res.body.detail)).toContain("jobs:write");
    // A wildcard is no way around it either.
    expect((await delegate(parent.body.key, { scopes: ["jobs:*"] })).status).toBe(403);
    // A subset is fine, and by default the child gets exactly its parent's scopes.
    const child = await delegate(parent.body.key, { scopes: ["jobs:read"] });
    expect(child.status).toBe(201);
    expect(child.body).toMatchObject({ scopes: ["jobs:read"], parent_key_id: parent.body.key_id });
    expect((await delegate(parent.body.key)).body.scopes).toEqual(["jobs:read", "keys:write"]);
  });

  it("a delegated key cannot outlive its parent (422) and inherits its parent's expiry by default", async () => {
    const { id } = await createAccount("client");
    const parent = await mintRoot(id, { expires_in_seconds: 3600 });
    const longer = await delegate(parent.key, { expires_in_seconds: 7200 });
    expect(longer.status).toBe(422);
    expect(longer.body.errors).toEqual([expect.objectContaining({ path: "body.expires_at" })]);
    const child = await delegate(parent.key, {});
    expect(child.status).toBe(201);
    expect(child.body.expires_at).toBe(parent.expires_at);
  });

  it("revoking a key kills every key delegated from it, down the whole chain", async () => {
    const { key } = await createAccount("client");
    const child = await delegate(key, { name: "ci" });
    const grandchild = await delegate(child.body.key, { name: "ci-job" });
    expect(await accountStatus(grandchild.body.key)).toBe(200);
    const revoked = await api("DELETE", `/v1/keys/${child.body.key_id}`, { key });
    expect(revoked.status).toBe(200);
    expect(await accountStatus(child.body.key)).toBe(401);
    const res = await api("GET", "/v1/account", { key: grandchild.body.key });
    expect(res.status).toBe(401);
    expect(String(res.body.detail)).toContain("was revoked");
    expect(await accountStatus(key)).toBe(200);
    const listed = await api<{ items: Issued[] }>("GET", "/v1/keys", { key });
    const byId = new Map(listed.body.items.map((k) => [k.key_id, k.status]));
    expect(byId.get(child.body.key_id)).toBe("revoked");
    expect(byId.get(grandchild.body.key_id)).toBe("parent_inactive");
  });

  it("a delegated key dies when its parent expires", async () => {
    const { id } = await createAccount("client");
    const parent = await mintRoot(id, { expires_in_seconds: 2 });
    const child = await delegate(parent.key, {});
    expect(await accountStatus(child.body.key)).toBe(200);
    await sleep(2100);
    expect(await accountStatus(child.body.key)).toBe(401);
  });

  it("a delegated key manages only itself and its own descendants; another account's key is 404", async () => {
    const { key, keyId } = await createAccount("client");
    const a = await delegate(key, {});
    const b = await delegate(key, {});
    expect((await api("POST", `/v1/keys/${keyId}/revoke`, { key: a.body.key })).status).toBe(403);
    expect((await api("POST", `/v1/keys/${b.body.key_id}/revoke`, { key: a.body.key })).status).toBe(403);
    const other = await createAccount("client");
    expect((await api("POST", `/v1/keys/${other.keyId}/revoke`, { key })).status).toBe(404);
    expect(await accountStatus(other.key)).toBe(200);
    // The account's root key manages every key of its account.
    expect((await api("POST", `/v1/keys/${b.body.key_id}/revoke`, { key })).status).toBe(200);
  });

  it("delegation stops at the maximum depth", async () => {
    const { key } = await createAccount("client");
    let current = key;
    for (let depth = 1; depth <= 4; depth++) {
      const next = await delegate(current, {});
      expect(next.status, next.text).toBe(201);
      current = next.body.key;
    }
    expect((await delegate(current, {})).status).toBe(403);
    expect(await accountStatus(current)).toBe(200);
  });
});

describe("rotation", () => {
  it("both keys work during the grace period, then only the new one", async () => {
    const { key, keyId } = await createAccount("client");
    const rotated = await api<Issued & { previous: Issued }>("POST", `/v1/keys/${keyId}/rotate`, {
      key,
      body: { grace_seconds: 2 },
    });
    expect(rotated.status).toBe(201);
    expect(rotated.headers.get("cache-control")).toBe("no-store");
    expect(rotated.body.key).toMatch(/^ck_/);
    expect(rotated.body.scopes).toEqual(rotated.body.previous.scopes);
    expect(rotated.body.previous).toMatchObject({ key_id: keyId, rotated_to: rotated.body.key_id });
    expect(await accountStatus(key)).toBe(200);
    expect(await accountStatus(rotated.body.key)).toBe(200);
    await sleep(2100);
    expect(await accountStatus(key)).toBe(401);
    expect(await accountStatus(rotated.body.key)).toBe(200);
  });

  it("a key can be rotated once; rotating it again is 409", async () => {
    const { key, keyId } = await createAccount("client");
    const first = await api<Issued>("POST", `/v1/keys/${keyId}/rotate`, { key, body: { grace_seconds: 60 } });
    expect(first.status).toBe(201);
    const again = await api("POST", `/v1/keys/${keyId}/rotate`, { key: first.body.key });
    expect(again.status).toBe(409);
  });

  it("without a grace period the old key stops at once", async () => {
    const { key, keyId } = await createAccount("client");
    const rotated = await api<Issued>("POST", `/v1/keys/${keyId}/rotate`, { key });
    expect(rotated.status).toBe(201);
    expect(await accountStatus(key)).toBe(401);
    expect(await accountStatus(rotated.body.key)).toBe(200);
  });
});

describe("secrecy", () => {
  it("listing keys shows neither the key nor its hash", async () => {
    const { key } = await createAccount("client");
    const child = await delegate(key, { name: "reporting", scopes: ["jobs:read"] });
    const res = await api<{ items: Issued[] }>("GET", "/v1/keys", { key });
    expect(res.status).toBe(200);
    expect(res.body.items.map((k) => k.key_id)).toContain(child.body.key_id);
    for (const secret of [key, child.body.key, hashApiKey(key), hashApiKey(child.body.key)]) {
      expect(res.text).not.toContain(secret);
    }
    expect(res.body.items.every((k) => !("key" in k))).toBe(true);
  });

  it("after a full key workflow no raw key is stored anywhere in the table, only hashes", async () => {
    const { id, key, keyId } = await createAccount("client");
    const child = await delegate(key, { scopes: ["jobs:read", "keys:write"] });
    const grandchild = await delegate(child.body.key, { scopes: ["jobs:read"] });
    const rotated = await api<Issued>("POST", `/v1/keys/${keyId}/rotate`, {
      key,
      body: { grace_seconds: 30 },
    });
    await api("POST", `/v1/keys/${child.body.key_id}/revoke`, { key: rotated.body.key });
    const admin = await mintRoot(id, { name: "second" });
    await api("POST", `/v1/admin/keys/${admin.key_id}/revoke`, { key: stack.adminKey });
    const secrets = [key, child.body.key, grandchild.body.key, rotated.body.key, admin.key];
    for (const s of secrets) expect(s).toMatch(/^ck_/);

    const items = await scanTable();
    const dump = JSON.stringify(items);
    for (const s of secrets) {
      expect(dump).not.toContain(s);
      // The body of the key without its prefix must not be there either.
      expect(dump).not.toContain(s.slice(3, 40));
      expect(dump).toContain(`KEY#${hashApiKey(s)}`);
    }
  });
});

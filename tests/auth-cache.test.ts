import { describe, expect, it } from "vitest";
import { keyCacheMs } from "../core/accounts/key-cache.ts";
import { createApp } from "../functions/api/app.ts";
import { api, createAccount } from "./fixture.ts";

/**
 * Keys are verified from a per-instance cache with bounded staleness. The stack under test is one instance of the
 * app; `other` below is a second instance (this test process) over the same table, as a second Lambda would be.
 */
const other = createApp();
const viaOther = async (key: string) =>
  (await other.request("/v1/account", { headers: { authorization: `Bearer ${key}` } })).status;

describe("the verified-key cache", () => {
  it("a revoked key stops at once in the instance that revoked it and within the bound in another", async () => {
    const bound = keyCacheMs();
    expect(bound).toBe(5000);
    const client = await createAccount("client");
    expect(await viaOther(client.key)).toBe(200); // the other instance has now verified (and cached) it
    const revoked = await api("POST", `/v1/keys/${client.keyId}/revoke`, { key: client.key });
    expect(revoked.status).toBe(200);
    const at = Date.now();
    expect((await api("GET", "/v1/account", { key: client.key })).status).toBe(401);
    // The other instance trusted its entry: it has not looked again yet.
    expect(await viaOther(client.key)).toBe(200);
    let status = 200;
    while (status === 200 && Date.now() - at < bound + 3000) {
      await new Promise((r) => setTimeout(r, 100));
      status = await viaOther(client.key);
    }
    expect(status).toBe(401);
    expect(Date.now() - at).toBeLessThanOrEqual(bound + 1000);
  });

  it("revoking a key evicts the keys delegated from it at once in the revoking instance", async () => {
    const parent = await createAccount("client");
    const child = await api<{ key: string }>("POST", "/v1/keys", {
      key: parent.key,
      body: { name: "child" },
    });
    expect(child.status).toBe(201);
    expect((await api("GET", "/v1/account", { key: child.body.key })).status).toBe(200);
    expect((await api("POST", `/v1/keys/${parent.keyId}/revoke`, { key: parent.key })).status).toBe(200);
    expect((await api("GET", "/v1/account", { key: child.body.key })).status).toBe(401);
  });

  it("a rotated key without grace stops at once where it was rotated, even though it was cached", async () => {
    const client = await createAccount("client");
    expect((await api("GET", "/v1/account", { key: client.key })).status).toBe(200);
    const rotated = await api<{ key: string }>("POST", `/v1/keys/${client.keyId}/rotate`, {
      key: client.key,
      body: {},
    });
    expect(rotated.status).toBe(201);
    expect((await api("GET", "/v1/account", { key: client.key })).status).toBe(401);
    expect((await api("GET", "/v1/account", { key: rotated.body.key })).status).toBe(200);
  });
});

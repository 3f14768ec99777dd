import { describe, expect, it } from "vitest";
import { keyCacheMs } from "../core/accounts/key-cache.ts";
import { createApp } from "../functions/api/app.ts";
import { api, createAccount, getItem, stack } from "./fixture.ts";

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
    // A cached key is answered after a look at the revocation feed, at most once per bound: this one looks now.
    expect(await viaOther(client.key)).toBe(200);
    const revoked = await api("POST", `/v1/keys/${client.keyId}/revoke`, { key: client.key });
    expect(revoked.status).toBe(200);
    const at = Date.now();
    expect((await api("GET", "/v1/account", { key: client.key })).status).toBe(401);
    // The other instance trusts its entry until its next look at the feed, within the bound.
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

describe("the account standing a submit starts from", () => {
  it("is cached, yet a burst of concurrent submits never passes the queued quota or the balance (the transaction decides)", async () => {
    const before = process.env.COORD_MAX_QUEUED_PER_ACCOUNT;
    process.env.COORD_MAX_QUEUED_PER_ACCOUNT = "3";
    try {
      const funded = async (amount: number) => {
        const account = await createAccount("client");
        await api("POST", `/v1/admin/accounts/${account.id}/adjust`, {
          key: stack.adminKey,
          body: { amount, reason: "test funding" },
        });
        return account;
      };
      // Through the second instance; no miner serves this region, so the jobs stay queued.
      const submitVia =
        (key: string, extra: Record<string, unknown> = {}) =>
        () =>
          other.request("/v1/jobs", {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({
              service: "echo",
              input: {},
              constraints: { regions: ["nowhere-quota"] },
              ...extra,
            }),
          });
      const client = await funded(1_000_000);
      const submit = submitVia(client.key);
      // This instance reads the standing once and caches it; every submit of the burst starts from it.
      const statuses = (await Promise.all(Array.from({ length: 8 }, submit))).map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(5);
      const refused = await (await submit()).json();
      expect(refused).toMatchObject({ code: "quota_exceeded" });
      expect(await getItem(`ACCOUNT#${client.id}`, "ACCOUNT")).toMatchObject({ queued: 3 });

      // The balance, likewise: a hold the balance cannot cover is 402 even when the cached standing says it could.
      const poor = await funded(25);
      const priced = submitVia(poor.key, { max_price: 10 });
      const paid = (await Promise.all(Array.from({ length: 3 }, priced))).map((r) => r.status);
      expect(paid.sort()).toEqual([201, 201, 402]);
      expect(await getItem(`ACCOUNT#${poor.id}`, "ACCOUNT")).toMatchObject({ available: 5, held: 20 });
    } finally {
      if (before === undefined) delete process.env.COORD_MAX_QUEUED_PER_ACCOUNT;
      else process.env.COORD_MAX_QUEUED_PER_ACCOUNT = before;
    }
  });
});

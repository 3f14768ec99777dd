import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { BOOTSTRAP_ADMIN_ID } from "../core/accounts/accounts.ts";
import { ddb } from "../core/db/client.ts";
import { TREASURY_ID } from "../core/ledger/ledger.ts";
import { parseCsv } from "./csv.ts";
import { api, createAccount, eventually, stack } from "./fixture.ts";

const admin = stack.adminKey;

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
interface AccountView {
  id: string;
  name: string;
  balance: { available: number; held: number };
}
interface KeyView {
  key_id: string;
  name: string | null;
  status: string;
}
interface LedgerEntry {
  id: string;
  kind: string;
  delta_available: number;
  delta_held: number;
  reason?: string;
}
interface AuditEntry {
  id: string;
  type: string;
  occurred_at: string;
  actor: { account_id: string; key_id: string } | null;
  account_id: string | null;
  subject: string;
  request_id: string | null;
  data: Record<string, unknown>;
}

async function ledgerItems(accountId: string) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: stack.tableName,
      KeyConditionExpression: "PK = :pk AND begins_with(SK, :p)",
      ExpressionAttributeValues: { ":pk": `ACCOUNT#${accountId}`, ":p": "LEDGER#" },
    }),
  );
  return out.Items ?? [];
}

describe("admin: accounts and keys", () => {
  it("lists accounts newest first, a page at a time", async () => {
    const mine = [await createAccount("client"), await createAccount("miner"), await createAccount("client")];
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 50 && mine.some((a) => !seen.includes(a.id)); page++) {
      const res: { status: number; body: Page<AccountView> } = await api<Page<AccountView>>(
        "GET",
        `/v1/admin/accounts?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { key: admin },
      );
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((a) => a.id));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    const positions = mine.map((a) => seen.indexOf(a.id));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => b - a));
  });

  it("refuses a cursor it did not issue, or one issued for another list, with 422", async () => {
    expect((await api("GET", "/v1/admin/accounts?cursor=bm90LWEtY3Vyc29y", { key: admin })).status).toBe(422);
    const { key } = await createAccount("client");
    await api("POST", `/v1/admin/accounts/${(await createAccount("client")).id}/adjust`, {
      key: admin,
      body: { amount: 1, reason: "seed" },
    });
    const foreign = Buffer.from(JSON.stringify({ PK: "ACCOUNT#acct_someoneelse", SK: "LEDGER#x" })).toString(
      "base64url",
    );
    const res = await api("GET", `/v1/account/ledger?cursor=${foreign}`, { key });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([expect.objectContaining({ path: "query.cursor" })]);
    expect((await api("GET", "/v1/admin/accounts?limit=0", { key: admin })).status).toBe(422);
  });

  it("lists an account's keys without the keys themselves and revokes any of them", async () => {
    const { id, key, keyId } = await createAccount("client");
    const second = await api<{ key: string; key_id: string }>("POST", `/v1/admin/accounts/${id}/keys`, {
      key: admin,
      body: { name: "deploy", scopes: ["jobs:read"] },
    });
    const listed = await api<Page<KeyView>>("GET", `/v1/admin/accounts/${id}/keys`, { key: admin });
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((k) => k.key_id).sort()).toEqual([keyId, second.body.key_id].sort());
    expect(listed.text).not.toContain(key);
    expect(listed.text).not.toContain(second.body.key);

    const revoked = await api<KeyView>("POST", `/v1/admin/keys/${second.body.key_id}/revoke`, { key: admin });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ key_id: second.body.key_id, status: "revoked" });
    expect((await api("GET", "/v1/account", { key: second.body.key })).status).toBe(401);
    expect((await api("GET", "/v1/account", { key })).status).toBe(200);
    expect(
      (await api("GET", "/v1/admin/accounts/acct_00000000000000000000000000/keys", { key: admin })).status,
    ).toBe(404);
    expect(
      (await api("POST", "/v1/admin/keys/key_00000000000000000000000000/revoke", { key: admin })).status,
    ).toBe(404);
  });

  it("refuses every admin route to a client key (403) and to no key (401)", async () => {
    const { id, key, keyId } = await createAccount("client");
    const routes: [string, string][] = [
      ["GET", "/v1/admin/accounts"],
      ["POST", "/v1/admin/accounts"],
      ["GET", `/v1/admin/accounts/${id}`],
      ["POST", `/v1/admin/accounts/${id}/keys`],
      ["GET", `/v1/admin/accounts/${id}/keys`],
      ["POST", `/v1/admin/accounts/${id}/adjust`],
      ["POST", `/v1/admin/keys/${keyId}/revoke`],
      ["GET", "/v1/admin/audit"],
      ["GET", "/v1/admin/audit.csv"],
    ];
    for (const [method, path] of routes) {
      const body = method === "GET" ? undefined : {};
      expect((await api(method, path, { key, body })).status, `${method} ${path}`).toBe(403);
      expect((await api(method, path, { body })).status, `${method} ${path}`).toBe(401);
    }
  });
});

describe("admin: balance adjustments", () => {
  it("a credit moves money from the treasury: the balance grows and two ledger entries sum to zero", async () => {
    const { id, key } = await createAccount("client");
    const res = await api<AccountView>("POST", `/v1/admin/accounts/${id}/adjust`, {
      key: admin,
      body: { amount: 5_000_000, reason: "welcome credit" },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id, balance: { available: 5_000_000, held: 0 } });

    const ledger = await api<Page<LedgerEntry>>("GET", "/v1/account/ledger", { key });
    expect(ledger.status).toBe(200);
    expect(ledger.body.items).toEqual([
      expect.objectContaining({
        kind: "adjustment",
        delta_available: 5_000_000,
        delta_held: 0,
        reason: "welcome credit",
      }),
    ]);
    const [entry] = await ledgerItems(id);
    const counter = (await ledgerItems(TREASURY_ID)).filter((e) => e.group === entry?.group);
    expect(counter).toHaveLength(1);
    const pair = [entry, ...counter];
    expect(pair.reduce((sum, e) => sum + Number(e?.deltaAvailable) + Number(e?.deltaHeld), 0)).toBe(0);
  });

  it("a debit lowers the balance, and a debit beyond it is 402 and changes nothing", async () => {
    const { id, key } = await createAccount("client");
    await api("POST", `/v1/admin/accounts/${id}/adjust`, {
      key: admin,
      body: { amount: 3_000, reason: "credit" },
    });
    const debit = await api<AccountView>("POST", `/v1/admin/accounts/${id}/adjust`, {
      key: admin,
      body: { amount: -1_000, reason: "chargeback" },
    });
    expect(debit.status).toBe(201);
    expect(debit.body.balance.available).toBe(2_000);
    const tooMuch = await api("POST", `/v1/admin/accounts/${id}/adjust`, {
      key: admin,
      body: { amount: -2_001, reason: "oops" },
    });
    expect(tooMuch.status).toBe(402);
    expect(tooMuch.body).toMatchObject({ code: "insufficient_funds" });
    expect((await api<AccountView>("GET", "/v1/account", { key })).body.balance.available).toBe(2_000);
    expect(await ledgerItems(id)).toHaveLength(2);
  });

  it("refuses fractional, zero or unexplained amounts (422) and unknown accounts (404)", async () => {
    const { id } = await createAccount("client");
    for (const body of [{ amount: 1.5, reason: "x" }, { amount: 0, reason: "x" }, { amount: 10 }, {}]) {
      expect((await api("POST", `/v1/admin/accounts/${id}/adjust`, { key: admin, body })).status).toBe(422);
    }
    const unknown = await api("POST", "/v1/admin/accounts/acct_00000000000000000000000000/adjust", {
      key: admin,
      body: { amount: 10, reason: "x" },
    });
    expect(unknown.status).toBe(404);
  });

  it("the caller's ledger pages newest first with a cursor", async () => {
    const { id, key } = await createAccount("client");
    for (const amount of [1, 2, 3]) {
      await api("POST", `/v1/admin/accounts/${id}/adjust`, {
        key: admin,
        body: { amount, reason: `r${amount}` },
      });
    }
    const first = await api<Page<LedgerEntry>>("GET", "/v1/account/ledger?limit=2", { key });
    expect(first.body.items.map((e) => e.delta_available)).toEqual([3, 2]);
    expect(first.body.next_cursor).toBeTruthy();
    const second = await api<Page<LedgerEntry>>(
      "GET",
      `/v1/account/ledger?limit=2&cursor=${first.body.next_cursor}`,
      { key },
    );
    expect(second.body.items.map((e) => e.delta_available)).toEqual([1]);
  });
});

describe("admin: audit trail", () => {
  it("records every admin and key action with its actor and request id, and filters by type", async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const bootstrapKey = (
      await api<Page<KeyView>>("GET", "/v1/keys?limit=100", { key: admin })
    ).body.items.find((k) => k.name === "bootstrap");
    expect(bootstrapKey).toBeTruthy();
    const asAdmin = { account_id: BOOTSTRAP_ADMIN_ID, key_id: bootstrapKey?.key_id };

    const created = await api<AccountView>("POST", "/v1/admin/accounts", {
      key: admin,
      body: { name: "audited", kind: "client" },
    });
    const id = created.body.id;
    const minted = await api<{ key: string; key_id: string }>("POST", `/v1/admin/accounts/${id}/keys`, {
      key: admin,
      body: {},
    });
    const owner = { account_id: id, key_id: minted.body.key_id };
    const delegated = await api<{ key: string; key_id: string }>("POST", "/v1/keys", {
      key: minted.body.key,
      body: { scopes: ["jobs:read"] },
    });
    const revoked = await api("POST", `/v1/keys/${delegated.body.key_id}/revoke`, { key: minted.body.key });
    const rotated = await api<{ key: string; key_id: string }>(
      "POST",
      `/v1/keys/${minted.body.key_id}/rotate`,
      {
        key: minted.body.key,
        body: { grace_seconds: 60 },
      },
    );
    const adjusted = await api("POST", `/v1/admin/accounts/${id}/adjust`, {
      key: admin,
      body: { amount: 42, reason: "audit test" },
    });
    const expected = [
      { res: created, type: "account.created.v1", actor: asAdmin },
      { res: minted, type: "api_key.created.v1", actor: asAdmin },
      { res: delegated, type: "api_key.delegated.v1", actor: owner },
      { res: revoked, type: "api_key.revoked.v1", actor: owner },
      { res: rotated, type: "api_key.rotated.v1", actor: owner },
      { res: adjusted, type: "balance.adjusted.v1", actor: asAdmin },
    ];
    for (const e of expected) expect(e.res.status).toBeLessThan(300);

    const entries = await eventually(async () => {
      const res = await api<Page<AuditEntry>>("GET", `/v1/admin/audit?from=${from}&limit=1000`, {
        key: admin,
      });
      const mine = res.body.items.filter((i) => i.account_id === id);
      return mine.length >= expected.length ? mine : undefined;
    });
    for (const e of expected) {
      const entry = entries.find((i) => i.request_id === e.res.headers.get("x-request-id"));
      expect(entry, e.type).toMatchObject({ type: e.type, actor: e.actor, subject: id });
    }
    expect(entries.find((i) => i.type === "api_key.rotated.v1")?.data).toMatchObject({
      previous_key_id: minted.body.key_id,
      key_id: rotated.body.key_id,
    });
    const audit = JSON.stringify(entries);
    for (const secret of [minted.body.key, delegated.body.key, rotated.body.key])
      expect(audit).not.toContain(secret);

    const adjustments = await api<Page<AuditEntry>>(
      "GET",
      `/v1/admin/audit?from=${from}&type=balance.adjusted.v1&limit=1000`,
      { key: admin },
    );
    expect(adjustments.body.items.length).toBeGreaterThan(0);
    expect(adjustments.body.items.every((i) => i.type === "balance.adjusted.v1")).toBe(true);
    expect(adjustments.body.items.some((i) => i.account_id === id && i.data.amount === 42)).toBe(true);
  });

  it("pages the audit trail oldest first with a cursor", async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    for (let i = 0; i < 3; i++) await createAccount("client");
    await eventually(async () => {
      const all = await api<Page<AuditEntry>>("GET", `/v1/admin/audit?from=${from}&limit=1000`, {
        key: admin,
      });
      return all.body.items.length >= 6;
    });
    const collected: AuditEntry[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: Page<AuditEntry> } = await api<Page<AuditEntry>>(
        "GET",
        `/v1/admin/audit?from=${from}&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { key: admin },
      );
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      collected.push(...res.body.items);
      cursor = res.body.next_cursor;
    } while (cursor && collected.length < 1000);
    expect(collected.length).toBeGreaterThanOrEqual(6);
    expect(new Set(collected.map((e) => e.id)).size).toBe(collected.length);
    const times = collected.map((e) => e.occurred_at);
    expect(times).toEqual([...times].sort());
  });

  it("exports the audit trail as CSV that parses back to the same entries", async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const name = 'Acme, "Quoted" Inc.\n=HYPERLINK("http://evil")';
    const created = await api<AccountView>("POST", "/v1/admin/accounts", {
      key: admin,
      body: { name, kind: "client" },
    });
    expect(created.status).toBe(201);
    const res = await eventually(async () => {
      const r = await api("GET", `/v1/admin/audit.csv?from=${from}`, { key: admin });
      return r.text.includes(created.body.id) ? r : undefined;
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/csv");
    const rows = parseCsv(res.text);
    expect(rows[0]).toEqual([
      "occurred_at",
      "id",
      "type",
      "actor_account_id",
      "actor_key_id",
      "account_id",
      "subject",
      "request_id",
      "data",
    ]);
    expect(rows.slice(1).every((r) => r.length === 9)).toBe(true);
    const row = rows.find((r) => r[6] === created.body.id && r[2] === "account.created.v1");
    expect(row?.[3]).toBe(BOOTSTRAP_ADMIN_ID);
    expect(row?.[7]).toBe(created.headers.get("x-request-id"));
    expect(JSON.parse(row?.[8] ?? "{}")).toEqual({
      account_id: created.body.id,
      name: name.trim(),
      kind: "client",
    });
    // Other tests keep adding entries: the export read after the listing holds at least what the listing held.
    const json = await api<Page<AuditEntry>>("GET", `/v1/admin/audit?from=${from}&limit=1000`, {
      key: admin,
    });
    const later = parseCsv((await api("GET", `/v1/admin/audit.csv?from=${from}`, { key: admin })).text);
    const exported = new Set(later.slice(1).map((r) => r[1]));
    expect(json.body.items.filter((e) => !exported.has(e.id))).toEqual([]);
  });

  it("refuses a bad window or an unknown type with 422", async () => {
    const bad = [
      "from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
      "from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z",
      "type=job.nonsense.v1",
      "from=yesterday",
      "cursor=garbage",
    ];
    for (const q of bad)
      expect((await api("GET", `/v1/admin/audit?${q}`, { key: admin })).status, q).toBe(422);
  });
});

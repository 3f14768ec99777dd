import { describe, expect, it } from "vitest";
import { api, createAccount, stack } from "./fixture.ts";

type Obj = Record<string, unknown>;

/** A miner account with `earned` micro-credits available (credited by an admin, as earnings would be). */
async function minerWithEarnings(earned: number) {
  const acct = await createAccount("miner");
  const res = await api("POST", `/v1/admin/accounts/${acct.id}/adjust`, {
    key: stack.adminKey,
    body: { amount: earned, reason: "test earnings" },
  });
  expect(res.status).toBeLessThan(300);
  return acct;
}

const balance = async (key: string) => (await api<Obj>("GET", "/v1/account", { key })).body;
const request = (key: string, amount: unknown) => api<Obj>("POST", "/v1/payouts", { key, body: { amount } });
const decide = (id: unknown, how: "approve" | "reject", body: Obj = {}) =>
  api<Obj>("POST", `/v1/admin/payouts/${id}/${how}`, { key: stack.adminKey, body });

describe("payouts", () => {
  it("holds a requested payout, and an approval moves it out through the ledger, once", async () => {
    const miner = await minerWithEarnings(1000);
    const asked = await request(miner.key, 300);
    expect(asked.status).toBe(201);
    expect(asked.body).toMatchObject({ status: "requested", amount: 300, account_id: miner.id });
    expect(await balance(miner.key)).toMatchObject({ available: 700, held: 300 });
    expect((await request(miner.key, 701)).status).toBe(402);
    const approved = await decide(asked.body.id, "approve");
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: "approved" });
    expect(await balance(miner.key)).toMatchObject({ available: 700, held: 0 });
    expect((await decide(asked.body.id, "approve")).status).toBe(409);
    expect((await decide(asked.body.id, "reject")).status).toBe(409);
  });

  it("gives a rejected payout back, and of an approval and a rejection racing, exactly one wins", async () => {
    const miner = await minerWithEarnings(1000);
    const first = await request(miner.key, 400);
    const rejected = await decide(first.body.id, "reject", { reason: "bank details missing" });
    expect(rejected.body).toMatchObject({ status: "rejected", reason: "bank details missing" });
    expect(await balance(miner.key)).toMatchObject({ available: 1000, held: 0 });

    const second = await request(miner.key, 500);
    const race = await Promise.all([
      decide(second.body.id, "approve"),
      decide(second.body.id, "reject"),
      decide(second.body.id, "approve"),
    ]);
    expect(race.filter((r) => r.status === 200)).toHaveLength(1);
    expect(race.filter((r) => r.status === 409)).toHaveLength(2);
    const won = race.find((r) => r.status === 200)?.body.status;
    expect(await balance(miner.key)).toMatchObject(
      won === "approved" ? { available: 500, held: 0 } : { available: 1000, held: 0 },
    );
    const check = await api<Obj>("GET", "/v1/admin/ledger/check", { key: stack.adminKey });
    expect(check.body.sum_of_entries).toBe(0);
    expect((check.body.mismatches as Obj[]).filter((m) => m.account_id === miner.id)).toEqual([]);
  });

  it("lists a miner's own payouts and the operators' queue with cursors", async () => {
    const miner = await minerWithEarnings(1000);
    const ids: unknown[] = [];
    for (const amount of [10, 20, 30]) ids.push((await request(miner.key, amount)).body.id);
    const first = await api<Obj>("GET", "/v1/payouts?limit=2", { key: miner.key });
    expect((first.body.payouts as Obj[]).map((p) => p.id)).toEqual([ids[2], ids[1]]);
    const rest = await api<Obj>("GET", `/v1/payouts?limit=2&cursor=${first.body.next_cursor}`, {
      key: miner.key,
    });
    expect((rest.body.payouts as Obj[]).map((p) => p.id)).toEqual([ids[0]]);
    // The operators' queue (every account's requested payouts, oldest first) has them, page after page.
    const queued: unknown[] = [];
    let cursor: unknown;
    do {
      const page = await api<Obj>(`GET`, `/v1/admin/payouts?limit=50${cursor ? `&cursor=${cursor}` : ""}`, {
        key: stack.adminKey,
      });
      queued.push(...(page.body.payouts as Obj[]).map((p) => p.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(queued).toEqual(expect.arrayContaining(ids));
  });

  it("refuses a bad amount naming the field, a client key, and an unknown payout", async () => {
    const miner = await minerWithEarnings(100);
    for (const amount of [0, -5, 1.5, "10"]) {
      const res = await request(miner.key, amount);
      expect(res.status, String(amount)).toBe(422);
      expect(JSON.stringify(res.body)).toContain("body.amount");
    }
    const client = await createAccount("client");
    expect((await request(client.key, 10)).status).toBe(403);
    expect((await decide("po_nope", "approve")).status).toBe(404);
  });
});

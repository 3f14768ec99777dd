import { describe, expect, it } from "vitest";
import {
  api,
  createAccount,
  eventually,
  fundedClient,
  getItem,
  isolated,
  minerCall,
  pollJobs as pollOnce,
  queryPk,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

interface PoolView {
  id: string;
  name: string;
  owner_account_id: string;
  accepts_public: boolean;
  member_count: number;
  role: "owner" | "member";
}

interface Problem {
  code: string;
  errors?: { path: string; message: string }[];
}

type TestMiner = Awaited<ReturnType<typeof registeredMiner>>;

/**
 * Heartbeat, then poll: the test stack's heartbeat interval is 1 s, so a miner registered during a slow setup may
 * already have been swept offline (an offline miner gets no work, whatever its pool).
 */
async function pollJobs(miner: TestMiner, body: Record<string, unknown> = {}) {
  const beat = await api("POST", "/v1/miners/heartbeat", {
    key: miner.key,
    headers: miner.headers,
    body: {},
  });
  expect(beat.status, beat.text).toBe(200);
  return pollOnce(miner, body);
}

const paths = (body: unknown) => ((body as Problem).errors ?? []).map((e) => e.path);

async function createPool(owner: { key: string }, body: Record<string, unknown> = {}) {
  const res = await api<PoolView>("POST", "/v1/pools", {
    key: owner.key,
    body: { name: `pool-${Math.random().toString(36).slice(2, 8)}`, ...body },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function addMember(owner: { key: string }, poolId: string, accountId: string) {
  return api("POST", `/v1/pools/${poolId}/members`, { key: owner.key, body: { account_id: accountId } });
}

/** A miner account that owns a pool, a miner of it in an isolated region, and a funded client that is a member. */
async function privatePool(poolBody: Record<string, unknown> = {}) {
  const { region, constraints } = isolated();
  const operator = await createAccount("miner");
  const pool = await createPool(operator, poolBody);
  const miner = await registeredMiner({ region, pool: pool.id }, operator);
  const member = await fundedClient();
  expect((await addMember(operator, pool.id, member.id)).status).toBe(201);
  return { region, constraints, operator, pool, miner, member };
}

describe("private pools: matching", () => {
  it("a private pool's miner serves a member's job", async () => {
    const { constraints, pool, miner, member } = await privatePool();
    const sub = await submitEcho(member, { constraints: { ...constraints, pool: pool.id } });
    expect(sub.status, sub.text).toBe(201);
    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    expect(jobs.map((j) => j.job_id)).toEqual([sub.body.id]);
    const done = await minerCall(miner, sub.body.id, "result", {
      claim_token: jobs[0]?.claim_token,
      output: { hello: "world" },
    });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "completed" });
  });

  it("a job targeting a pool is never taken by a public miner or another pool's miner", async () => {
    const { region, constraints, pool, miner, member } = await privatePool();
    const publicMiner = await registeredMiner({ region });
    const otherOperator = await createAccount("miner");
    const otherPool = await createPool(otherOperator, { accepts_public: true });
    const otherMiner = await registeredMiner({ region, pool: otherPool.id }, otherOperator);
    const sub = await submitEcho(member, { constraints: { ...constraints, pool: pool.id } });
    expect(sub.status).toBe(201);
    expect((await pollJobs(publicMiner, { wait_seconds: 1 })).status).toBe(204);
    expect((await pollJobs(otherMiner, { wait_seconds: 1 })).status).toBe(204);
    expect((await pollJobs(miner, { wait_seconds: 5 })).jobs.map((j) => j.job_id)).toEqual([sub.body.id]);
  });

  it("a non-member's job targeting the pool is refused with 422 on body.constraints.pool, like an unknown pool", async () => {
    const { constraints, pool, miner } = await privatePool();
    const stranger = await fundedClient();
    const refused = await submitEcho(stranger, { constraints: { ...constraints, pool: pool.id } });
    expect(refused.status).toBe(422);
    expect(paths(refused.body)).toEqual(["body.constraints.pool"]);
    const unknown = await submitEcho(stranger, {
      constraints: { ...constraints, pool: "pool_00000000000000000000000000" },
    });
    expect(unknown.status).toBe(422);
    // The same answer either way: a stranger cannot tell whether a pool id exists.
    expect({ ...unknown.body, request_id: null }).toEqual({ ...refused.body, request_id: null });
    expect((await submitEcho(stranger, { constraints: { ...constraints, pool: "not a pool" } })).status).toBe(
      422,
    );
    // Nothing was queued, nothing was held.
    const account = await api<{ balance: { held: number } }>("GET", "/v1/account", { key: stranger.key });
    expect(account.body.balance.held).toBe(0);
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
  });

  it("a public job never lands on a private miner unless the pool opts in", async () => {
    const { region, constraints, operator, pool, miner } = await privatePool();
    const optedOut = await registeredMiner({ region, pool: pool.id, accepts_public: false }, operator);
    expect(
      (
        await api<{ miners: { id: string; accepts_public: boolean }[] }>("GET", "/v1/miners", {
          key: operator.key,
        })
      ).body.miners.find((m) => m.id === miner.id)?.accepts_public,
    ).toBe(false);
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints });
    expect(sub.status).toBe(201);
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    expect((await pollJobs(optedOut, { wait_seconds: 0 })).status).toBe(204);

    // The owner opts the pool in: its (already registered) miners now take public work, except the one that opted out.
    const patched = await api<PoolView>("PATCH", `/v1/pools/${pool.id}`, {
      key: operator.key,
      body: { accepts_public: true },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: pool.id, accepts_public: true });
    expect((await pollJobs(optedOut, { wait_seconds: 0 })).status).toBe(204);
    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    expect(jobs.map((j) => j.job_id)).toEqual([sub.body.id]);
    await minerCall(miner, sub.body.id, "result", { claim_token: jobs[0]?.claim_token, output: {} });

    // And opting out again stops it at once.
    await api("PATCH", `/v1/pools/${pool.id}`, { key: operator.key, body: { accepts_public: false } });
    const next = await submitEcho(client, { constraints });
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    const publicMiner = await registeredMiner({ region });
    expect((await pollJobs(publicMiner, { wait_seconds: 5 })).jobs.map((j) => j.job_id)).toEqual([
      next.body.id,
    ]);
  });

  it("a miner registering into a pool copies the pool's accepts_public", async () => {
    const { region } = isolated();
    const operator = await createAccount("miner");
    const pool = await createPool(operator, { accepts_public: true });
    const miner = await registeredMiner({ region, pool: pool.id }, operator);
    const item = await getItem(`MINER#${miner.id}`, "MINER");
    expect(item).toMatchObject({ pool: pool.id, accepts_public: true });
    const roster = await api<{ items: { miner_id: string }[] }>("GET", `/v1/pools/${pool.id}/miners`, {
      key: operator.key,
    });
    expect(roster.body.items.map((m) => m.miner_id)).toEqual([miner.id]);
    // Leaving the pool (re-registering without it) takes the miner off the roster: it is a public miner again.
    await registeredMiner({ name: String(item?.name), region }, operator);
    expect(await getItem(`MINER#${miner.id}`, "MINER")).toMatchObject({ accepts_public: true });
    expect((await getItem(`MINER#${miner.id}`, "MINER"))?.pool).toBeUndefined();
    expect(await getItem(`POOL#${pool.id}`, `MINER#${miner.id}`)).toBeUndefined();
  });
});

describe("private pools: who may do what", () => {
  it("a miner cannot join a pool its account doesn't own (422 on body.pool)", async () => {
    const { pool, member } = await privatePool();
    const intruder = await createAccount("miner");
    for (const poolId of [pool.id, "pool_00000000000000000000000000", "whatever"]) {
      const res = await api("POST", "/v1/miners/register", {
        key: intruder.key,
        body: { name: "rig", services: ["echo"], pool: poolId },
      });
      expect(res.status, poolId).toBe(422);
      expect(paths(res.body)).toEqual(["body.pool"]);
    }
    // Being a member does not let an account attach miners either (members are client accounts anyway).
    expect(
      (await api("POST", "/v1/miners/register", { key: member.key, body: { name: "x", services: ["echo"] } }))
        .status,
    ).toBe(403);
  });

  it("only miner accounts own pools; members are client accounts", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/pools", { key: client.key, body: { name: "mine" } });
    expect(res.status).toBe(403);
    const operator = await createAccount("miner");
    const pool = await createPool(operator);
    const otherMiner = await createAccount("miner");
    const asMember = await addMember(operator, pool.id, otherMiner.id);
    expect(asMember.status).toBe(422);
    expect(paths(asMember.body)).toEqual(["body.account_id"]);
    const unknown = await addMember(operator, pool.id, "acct_00000000000000000000000000");
    expect(unknown.status).toBe(422);
    expect(paths(unknown.body)).toEqual(["body.account_id"]);
    expect((await api("POST", "/v1/pools", { key: operator.key, body: { name: "" } })).status).toBe(422);
    expect((await api("PATCH", `/v1/pools/${pool.id}`, { key: operator.key, body: {} })).status).toBe(422);
  });

  it("another account's pool is 404 on every pool route; a member sees it but cannot manage it (403)", async () => {
    const { operator, pool, member } = await privatePool();
    const stranger = await fundedClient();
    const strangerOperator = await createAccount("miner");
    for (const who of [stranger, strangerOperator]) {
      for (const [method, path, body] of [
        ["GET", `/v1/pools/${pool.id}`],
        ["PATCH", `/v1/pools/${pool.id}`, { accepts_public: true }],
        ["GET", `/v1/pools/${pool.id}/members`],
        ["POST", `/v1/pools/${pool.id}/members`, { account_id: who.id }],
        ["DELETE", `/v1/pools/${pool.id}/members/${member.id}`],
        ["GET", `/v1/pools/${pool.id}/miners`],
      ] as const) {
        const res = await api(method, path, { key: who.key, body });
        expect(res.status, `${method} ${path}`).toBe(404);
      }
      const listed = await api<{ items: PoolView[] }>("GET", "/v1/pools", { key: who.key });
      expect(listed.body.items).toEqual([]);
    }
    // The member sees the pool, with its role...
    const seen = await api<PoolView>("GET", `/v1/pools/${pool.id}`, { key: member.key });
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({
      id: pool.id,
      role: "member",
      owner_account_id: operator.id,
      member_count: 1,
    });
    const mine = await api<{ items: PoolView[] }>("GET", "/v1/pools", { key: member.key });
    expect(mine.body.items.map((p) => p.id)).toEqual([pool.id]);
    // ...but every owner-only action is 403.
    for (const [method, path, body] of [
      ["PATCH", `/v1/pools/${pool.id}`, { accepts_public: true }],
      ["GET", `/v1/pools/${pool.id}/members`],
      ["POST", `/v1/pools/${pool.id}/members`, { account_id: stranger.id }],
      ["DELETE", `/v1/pools/${pool.id}/members/${operator.id}`],
      ["GET", `/v1/pools/${pool.id}/miners`],
    ] as const) {
      const res = await api(method, path, { key: member.key, body });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    expect((await api<PoolView>("GET", `/v1/pools/${pool.id}`, { key: operator.key })).body).toMatchObject({
      accepts_public: false,
      member_count: 1,
    });
  });

  it("a removed member's new jobs are refused; a member can leave; the owner cannot", async () => {
    const { constraints, operator, pool, member } = await privatePool();
    const second = await fundedClient();
    expect((await addMember(operator, pool.id, second.id)).status).toBe(201);
    // Adding again changes nothing.
    expect((await addMember(operator, pool.id, second.id)).status).toBe(200);
    const members = await api<{ items: { account_id: string; role: string }[] }>(
      "GET",
      `/v1/pools/${pool.id}/members`,
      { key: operator.key },
    );
    expect(members.body.items).toEqual([
      expect.objectContaining({ account_id: operator.id, role: "owner" }),
      ...[member.id, second.id]
        .sort()
        .map((id) => expect.objectContaining({ account_id: id, role: "member" })),
    ]);

    expect(
      (await api("DELETE", `/v1/pools/${pool.id}/members/${member.id}`, { key: operator.key })).status,
    ).toBe(204);
    const refused = await submitEcho(member, { constraints: { ...constraints, pool: pool.id } });
    expect(refused.status).toBe(422);
    expect((await api("GET", `/v1/pools/${pool.id}`, { key: member.key })).status).toBe(404);
    expect(
      (await api("DELETE", `/v1/pools/${pool.id}/members/${member.id}`, { key: operator.key })).status,
    ).toBe(404);

    expect(
      (await api("DELETE", `/v1/pools/${pool.id}/members/${second.id}`, { key: second.key })).status,
    ).toBe(204);
    expect((await submitEcho(second, { constraints: { ...constraints, pool: pool.id } })).status).toBe(422);
    const owner = await api("DELETE", `/v1/pools/${pool.id}/members/${operator.id}`, { key: operator.key });
    expect(owner.status).toBe(422);
    expect(
      (await api<PoolView>("GET", `/v1/pools/${pool.id}`, { key: operator.key })).body.member_count,
    ).toBe(0);
  });

  it("a key without pools scopes is 403 on pool routes", async () => {
    const { key } = await createAccount("client");
    const narrow = await api<{ key: string }>("POST", "/v1/keys", { key, body: { scopes: ["jobs:read"] } });
    expect((await api("GET", "/v1/pools", { key: narrow.body.key })).status).toBe(403);
    expect((await api("GET", "/v1/pools", { key: stack.adminKey })).status).toBe(403);
  });
});

describe("private pools: records", () => {
  it("every change is in the pool's event history and the audit trail, with its actor", async () => {
    const from = new Date(Date.now() - 1000).toISOString();
    const { operator, pool, member } = await privatePool();
    await api("PATCH", `/v1/pools/${pool.id}`, {
      key: operator.key,
      body: { accepts_public: true, name: "renamed" },
    });
    await api("DELETE", `/v1/pools/${pool.id}/members/${member.id}`, { key: member.key });
    const history = (await queryPk(`POOL#${pool.id}`)).filter((i) => i.entity === "event");
    expect(history.map((e) => [e.type, e.SK])).toEqual([
      ["pool.created.v1", "EVT#0000000001"],
      ["pool.member_added.v1", "EVT#0000000002"],
      ["pool.updated.v1", "EVT#0000000003"],
      ["pool.member_removed.v1", "EVT#0000000004"],
    ]);
    expect(history.at(-1)?.data).toEqual({ pool_id: pool.id, account_id: member.id, reason: "left" });
    expect(history.at(-1)?.actor).toMatchObject({ account_id: member.id });
    const audited = await eventually(async () => {
      const res = await api<{ items: { subject: string; type: string }[] }>(
        "GET",
        `/v1/admin/audit?from=${from}&limit=1000`,
        { key: stack.adminKey },
      );
      const mine = res.body.items.filter((i) => i.subject === pool.id);
      return mine.length >= 4 ? mine : undefined;
    });
    expect(audited.map((e) => e.type).sort()).toEqual(
      ["pool.created.v1", "pool.member_added.v1", "pool.member_removed.v1", "pool.updated.v1"].sort(),
    );
  });

  it("an Idempotency-Key replays the created pool", async () => {
    const operator = await createAccount("miner");
    const headers = { "idempotency-key": `pool-${Math.random()}` };
    const first = await api<PoolView>("POST", "/v1/pools", {
      key: operator.key,
      body: { name: "once" },
      headers,
    });
    const again = await api<PoolView>("POST", "/v1/pools", {
      key: operator.key,
      body: { name: "once" },
      headers,
    });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const other = await api("POST", "/v1/pools", { key: operator.key, body: { name: "twice" }, headers });
    expect(other.status).toBe(422);
    const listed = await api<{ items: PoolView[] }>("GET", "/v1/pools", { key: operator.key });
    expect(listed.body.items.map((p) => p.id)).toEqual([first.body.id]);
  });
});

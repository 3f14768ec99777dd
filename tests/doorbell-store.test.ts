import { describe, expect, it } from "vitest";
import type { Connection } from "../core/doorbell/connections.ts";
import * as store from "../core/doorbell/store.ts";
import { queryPk } from "./fixture.ts";

// Tests share one table: every id (and the third service) is unique to this run.
const run = Math.random().toString(36).slice(2, 10);
let n = 0;

function conn(minerId: string, services: string[], connectedAt = Date.now(), region = "r1"): Connection {
  n += 1;
  return {
    id: `conn-${run}-${n}`,
    minerId,
    accountId: `acct_${run}`,
    keyId: `key_${run}`,
    services,
    caps: { services, gpus: [], prices: {}, region },
    connectedAt,
  };
}

const ids = (list: Connection[]) => list.map((c) => c.id);

describe("the doorbell's connection store", () => {
  it("finds the connections serving a service, and only those", async () => {
    const other = `svc-${run}`;
    const a = conn(`miner-a-${run}`, ["echo"]);
    const b = conn(`miner-b-${run}`, ["echo", other]);
    const c = conn(`miner-c-${run}`, [other]);
    await Promise.all([a, b, c].map((x) => store.add(x)));
    try {
      const echo = await store.serving("echo", 1000);
      expect(ids(echo)).toEqual(expect.arrayContaining([a.id, b.id]));
      expect(ids(echo)).not.toContain(c.id);
      expect(echo.find((x) => x.id === b.id)).toEqual(b);
      expect(ids(await store.serving(other, 1000)).sort()).toEqual([b.id, c.id].sort());
      expect(await store.serving(other, 1)).toHaveLength(1);
    } finally {
      await Promise.all([a, b, c].map((x) => store.remove(x.id)));
    }
  });

  it("leaves out the connections a job's constraints refuse, and still fills the limit from the rest", async () => {
    const other = `svc-${run}-caps`;
    const far = Array.from({ length: 30 }, (_, i) =>
      conn(`miner-far-${i}-${run}`, [other], Date.now() - 1000, "r2"),
    );
    const near = conn(`miner-near-${run}`, [other], Date.now(), "r1");
    await Promise.all([...far, near].map((x) => store.add(x)));
    try {
      // The near miner connected last, behind 30 refused ones in every shard's order.
      const found = await store.serving(other, 2, (c) => c.caps.region === "r1");
      expect(ids(found)).toEqual([near.id]);
    } finally {
      await Promise.all([...far, near].map((x) => store.remove(x.id)));
    }
  });

  it("lists a miner's connections, and gets one by id", async () => {
    const miner = `miner-d-${run}`;
    const first = conn(miner, ["echo"]);
    const second = conn(miner, ["echo"]);
    const stranger = conn(`miner-e-${run}`, ["echo"]);
    await Promise.all([first, second, stranger].map((x) => store.add(x)));
    try {
      expect(ids(await store.ofMiner(miner)).sort()).toEqual([first.id, second.id].sort());
      expect(await store.get(first.id)).toEqual(first);
      expect(await store.get(`conn-${run}-never`)).toBeUndefined();
    } finally {
      await Promise.all([first, second, stranger].map((x) => store.remove(x.id)));
    }
  });

  it("removes every item of a connection, and a second removal is harmless", async () => {
    const other = `svc-${run}-rm`;
    const x = conn(`miner-f-${run}`, ["echo", other]);
    await store.add(x);
    expect(await queryPk(`CONN#${x.id}`)).toHaveLength(1);
    await store.remove(x.id);
    await store.remove(x.id);
    expect(await queryPk(`CONN#${x.id}`)).toHaveLength(0);
    expect((await queryPk(`MINER#${x.minerId}`)).filter((i) => i.SK === `CONN#${x.id}`)).toHaveLength(0);
    expect(await store.ofMiner(x.minerId)).toEqual([]);
    expect(ids(await store.serving(other, 1000))).toEqual([]);
    expect(ids(await store.serving("echo", 1000))).not.toContain(x.id);
    expect(await store.get(x.id)).toBeUndefined();
  });

  it("never returns a connection past its expiresAt (DynamoDB Local keeps TTL items)", async () => {
    const other = `svc-${run}-old`;
    const old = conn(`miner-g-${run}`, ["echo", other], Date.now() - store.CONNECTION_TTL_MS - 60_000);
    await store.add(old);
    try {
      // Written, with its TTL in the past...
      const [pointer] = await queryPk(`CONN#${old.id}`);
      expect(Number(pointer?.expiresAt)).toBeLessThan(Date.now() / 1000);
      // ...and read as gone everywhere.
      expect(await store.get(old.id)).toBeUndefined();
      expect(await store.ofMiner(old.minerId)).toEqual([]);
      expect(await store.serving(other, 1000)).toEqual([]);
      expect(ids(await store.serving("echo", 1000))).not.toContain(old.id);
    } finally {
      await store.remove(old.id);
    }
    // A removal deletes a lapsed connection's items too (TTL may be days late on AWS).
    expect(await queryPk(`CONN#${old.id}`)).toHaveLength(0);
  });
});

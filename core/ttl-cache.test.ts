import { describe, expect, it } from "vitest";
import { TtlCache } from "./ttl-cache.ts";

describe("the per-instance TTL cache", () => {
  it("keeps an entry for its TTL, or until its own expiry if sooner, and not after", () => {
    const c = new TtlCache<string>(() => 5000);
    c.set("a", "x", undefined, 0);
    c.set("b", "y", 1000, 0);
    expect(c.get("a", 4999)).toBe("x");
    expect(c.get("a", 5000)).toBeUndefined();
    expect(c.get("b", 999)).toBe("y");
    expect(c.get("b", 1000)).toBeUndefined();
  });

  it("a TTL of zero caches nothing; past its size it starts over", () => {
    const zero = new TtlCache<number>(() => 0);
    zero.set("a", 1);
    expect(zero.get("a")).toBeUndefined();
    const small = new TtlCache<number>(() => 5000, 2);
    small.set("a", 1);
    small.set("b", 2);
    small.set("c", 3);
    expect([small.get("a"), small.get("b"), small.get("c")]).toEqual([undefined, undefined, 3]);
  });

  it("evicts by key or by what the entry holds", () => {
    const c = new TtlCache<{ lineage: string[] }>(() => 5000);
    c.set("k1", { lineage: ["key_a"] });
    c.set("k2", { lineage: ["key_b", "key_a"] });
    c.set("k3", { lineage: ["key_c"] });
    c.deleteWhere((e) => e.lineage.includes("key_a"));
    expect([c.get("k1"), c.get("k2"), c.get("k3")?.lineage]).toEqual([undefined, undefined, ["key_c"]]);
    c.delete("k3");
    expect(c.get("k3")).toBeUndefined();
  });
});

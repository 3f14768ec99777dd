import { describe, expect, it } from "vitest";
import { generateApiKey, hashApiKey, inspectApiKey } from "./api-key.ts";

describe("api keys", () => {
  it("a generated key carries its kind and a valid checksum", () => {
    for (const kind of ["client", "miner", "admin"] as const) {
      const key = generateApiKey(kind);
      expect(inspectApiKey(key)).toEqual({ ok: true, kind });
    }
  });

  it("a mistyped key is rejected by its checksum", () => {
    const key = generateApiKey("client");
    const last = key.at(-8) === "a" ? "b" : "a";
    const typo = `${key.slice(0, -8)}${last}${key.slice(-7)}`;
    expect(inspectApiKey(typo)).toEqual({ ok: false, reason: "checksum" });
  });

  it("an unknown prefix is rejected", () => {
    expect(inspectApiKey("xk_abc")).toEqual({ ok: false, reason: "prefix" });
  });

  it("stores only a sha-256 hex digest", () => {
    expect(hashApiKey("ck_x")).toMatch(/^[0-9a-f]{64}$/);
  });
});

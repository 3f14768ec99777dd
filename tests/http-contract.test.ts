import { describe, expect, it } from "vitest";
import { api, createAccount } from "./fixture.ts";

describe("the HTTP contract", () => {
  it("health reports the database and queues as ok", async () => {
    const res = await api("GET", "/v1/health");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "ok", database: { status: "ok" }, queues: { status: "ok" } });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("an unknown route is a 404 problem+json", async () => {
    const res = await api("GET", "/v1/nowhere");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ status: 404, code: "not_found", title: "Not Found" });
  });

  it("malformed JSON is a 400 problem+json", async () => {
    const { key } = await createAccount("admin");
    const res = await api("POST", "/v1/admin/accounts", {
      key,
      raw: '{"name": "x",',
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ code: "malformed_json" });
  });

  it("an oversized body is a 413 problem+json", async () => {
    const { key } = await createAccount("admin");
    const huge = JSON.stringify({ name: "x".repeat(2 * 1024 * 1024), kind: "client" });
    const res = await api("POST", "/v1/admin/accounts", {
      key,
      raw: huge,
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: "payload_too_large" });
  });

  it("invalid fields are a 422 naming every offending path", async () => {
    const res = await api("POST", "/v1/admin/accounts", {
      key: (await createAccount("admin")).key,
      body: { name: "", kind: "robot" },
    });
    expect(res.status).toBe(422);
    const paths = (res.body.errors as { path: string }[]).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(["body.name", "body.kind"]));
  });

  it("the OpenAPI document lists the public routes", async () => {
    const res = await api<{ openapi: string; paths: Record<string, unknown> }>("GET", "/v1/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(["/v1/health", "/v1/admin/accounts"]));
  });
});

describe("authentication", () => {
  it("a request without a key is 401", async () => {
    const res = await api("POST", "/v1/admin/accounts", { body: { name: "a", kind: "client" } });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: "unauthorized" });
  });

  it("a mistyped key is 401 without naming the account", async () => {
    const { key } = await createAccount("client");
    const typo = `${key.slice(0, 10)}${key[10] === "A" ? "B" : "A"}${key.slice(11)}`;
    const res = await api("GET", "/v1/account", { key: typo });
    expect(res.status).toBe(401);
  });

  it("X-Api-Key works like a bearer token", async () => {
    const { key, id } = await createAccount("client");
    const res = await api("GET", "/v1/account", { headers: { "x-api-key": key } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, kind: "client", balance: { available: 0, held: 0 } });
  });

  it("a client key on an admin route is 403", async () => {
    const { key } = await createAccount("client");
    const res = await api("POST", "/v1/admin/accounts", { key, body: { name: "a", kind: "client" } });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: "forbidden" });
  });

  it("keys are typed by prefix and stored only as a hash", async () => {
    const client = await createAccount("client");
    const miner = await createAccount("miner");
    expect(client.key).toMatch(/^ck_/);
    expect(miner.key).toMatch(/^mk_/);
  });
});

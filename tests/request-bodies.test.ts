import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { api, createAccount, stack } from "./fixture.ts";

const MiB = 1024 * 1024;

async function countKeys(accountKey: string): Promise<number> {
  const res = await api<{ items: unknown[] }>("GET", "/v1/keys", { key: accountKey });
  expect(res.status).toBe(200);
  return res.body.items.length;
}

describe("request bodies", () => {
  it("Node's fetch sending 1.5 MB to 8 MB bodies always receives the 413 problem+json, never EPIPE", async () => {
    const { key } = await createAccount("admin");
    for (const size of [1.5 * MiB, 3 * MiB, 8 * MiB, 1.5 * MiB, 8 * MiB, 5 * MiB]) {
      const body = JSON.stringify({ name: "x".repeat(size), kind: "client" });
      // Plain fetch, not the fixture: the fixture reads the body the same way, but this is what a user's client does.
      const res = await fetch(`${stack.url}/v1/admin/accounts`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(413);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await res.json()).toMatchObject({ code: "payload_too_large", status: 413 });
    }
  });

  it("a body just under the limit is read whole, and one just over is a 413", async () => {
    const { key } = await createAccount("admin");
    const pad = (n: number) => JSON.stringify({ name: "x".repeat(n), kind: "client" });
    const overhead = pad(0).length;
    const under = await api("POST", "/v1/admin/accounts", {
      key,
      raw: pad(MiB - overhead),
      headers: { "content-type": "application/json" },
    });
    // Read whole and validated: the name is too long, which only a parsed body can tell.
    expect(under.status).toBe(422);
    expect(under.body).toMatchObject({ code: "validation_failed" });
    const over = await api("POST", "/v1/admin/accounts", {
      key,
      raw: pad(MiB - overhead + 1),
      headers: { "content-type": "application/json" },
    });
    expect(over.status).toBe(413);
  });

  it("a body that is not JSON by its Content-Type is 415 naming the header, and nothing is created", async () => {
    const admin = await createAccount("admin");
    const before = await countKeys(admin.key);
    const bodies: [string, string][] = [
      ["text/plain", "{}"],
      ["text/plain;charset=UTF-8", '{"name":"x"}'],
      ["application/x-www-form-urlencoded", "name=x&scopes=admin"],
      [
        "multipart/form-data; boundary=b",
        '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
      ],
      ["application/xml", "<key/>"],
    ];
    for (const [type, raw] of bodies) {
      const res = await api("POST", "/v1/keys", { key: admin.key, raw, headers: { "content-type": type } });
      expect(res.status, type).toBe(415);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.body).toMatchObject({
        code: "unsupported_media_type",
        errors: [{ path: "headers.content-type" }],
      });
    }
    expect(await countKeys(admin.key)).toBe(before);
  });

  it("JSON with a +json suffix or charset parameter is accepted as JSON", async () => {
    const { key } = await createAccount("admin");
    for (const type of ["application/json; charset=utf-8", "application/merge-patch+json"]) {
      const res = await api("POST", "/v1/admin/accounts", {
        key,
        raw: JSON.stringify({ name: `suffix-${type}`, kind: "client" }),
        headers: { "content-type": type },
      });
      expect(res.status, type).toBe(201);
    }
  });

  it("a JSON body that is not an object (array, number, string, null) is 422 on body and mints no key", async () => {
    const admin = await createAccount("admin");
    const before = await countKeys(admin.key);
    for (const raw of ["[]", "[1]", '[{"name":"x"}]', "1", '"key"', "null", "true"]) {
      const res = await api("POST", "/v1/keys", {
        key: admin.key,
        raw,
        headers: { "content-type": "application/json" },
      });
      expect(res.status, raw).toBe(422);
      expect(res.body).toMatchObject({ code: "validation_failed", errors: [{ path: "body" }] });
    }
    expect(await countKeys(admin.key)).toBe(before);
  });

  it("a body that is not valid UTF-8 is a 400 malformed_json", async () => {
    const { key } = await createAccount("admin");
    const bytes = Buffer.concat([
      Buffer.from('{"name":"'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('","kind":"client"}'),
    ]);
    const res = await fetch(`${stack.url}/v1/admin/accounts`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: bytes,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "malformed_json",
      detail: expect.stringContaining("UTF-8"),
    });
  });

  it("DynamoDB Local runs with its telemetry off", () => {
    const port = new URL(stack.dynamoEndpoint).port;
    const cmdlines = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        } catch {
          return [];
        }
      })
      .filter((args) => args.includes("DynamoDBLocal.jar") && args[args.indexOf("-port") + 1] === port);
    expect(cmdlines).toHaveLength(1);
    expect(cmdlines[0]).toContain("-disableTelemetry");
  });
});

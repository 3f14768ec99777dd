import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { SCHEMA_PATH, sdkSchemaText } from "../scripts/gen-sdk.ts";
import { createCoordClient, retryDelayMs } from "../sdk/client.ts";
import { api, fundedClient, isolated, minerCall, pollJobs, registeredMiner, stack } from "./fixture.ts";

/* The typed SDK (sdk/client.ts) against the real stack: generated from the served document, retrying safely. */

describe("the SDK", () => {
  it("is generated from the OpenAPI document the coordinator serves (npm run gen:sdk), and matches it", async () => {
    expect(readFileSync(SCHEMA_PATH, "utf8")).toBe(await sdkSchemaText());
    const served = await api<{ paths: Record<string, unknown> }>("GET", "/v1/openapi.json");
    const schema = readFileSync(SCHEMA_PATH, "utf8");
    for (const path of Object.keys(served.body.paths)) expect(schema).toContain(`"${path}"`);
  });

  it("bundles for the browser: nothing of Node's in the client and the verifiers", async () => {
    const out = await build({
      entryPoints: [fileURLToPath(new URL("../sdk/index.ts", import.meta.url))],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    expect(out.errors).toEqual([]);
    expect(out.outputFiles[0]?.text).not.toMatch(/from "node:|require\("node:/);
  });

  it("retries a submit whose answer was lost with the same Idempotency-Key: one job, the first answer", async () => {
    const client = await fundedClient();
    const keys: string[] = [];
    let lost = false;
    // The first answer to the submit never reaches the caller, as when a connection drops after the server
    // committed: the SDK sends it again.
    const flaky: typeof fetch = async (input, init) => {
      const req = new Request(input, init);
      if (req.method === "POST") keys.push(req.headers.get("idempotency-key") ?? "");
      const res = await fetch(req);
      if (req.method === "POST" && !lost) {
        lost = true;
        throw new TypeError("fetch failed (connection reset)");
      }
      return res;
    };
    const coord = createCoordClient({ baseUrl: stack.url, key: client.key, fetch: flaky, maxBackoffMs: 50 });
    const { region } = isolated();
    const out = await coord.api.POST("/v1/jobs", {
      body: { service: "echo", input: { n: 1 }, constraints: { regions: [region] } },
    });
    expect(out.response.status).toBe(201);
    expect(out.response.headers.get("idempotent-replayed")).toBe("true");
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    const listed = await api<{ jobs: { id: string }[] }>("GET", "/v1/jobs?limit=50", { key: client.key });
    expect(listed.body.jobs.map((j) => j.id)).toEqual([(out.data as { id: string }).id]);
  });

  it("waits out a 429 or 503 as Retry-After says, and gives up after its attempts", async () => {
    const at = Date.parse("2026-01-01T00:00:00Z");
    expect(
      retryDelayMs(new Response(null, { status: 429, headers: { "retry-after": "2" } }), 0, 10_000),
    ).toBe(2000);
    expect(
      retryDelayMs(
        new Response(null, { status: 503, headers: { "retry-after": new Date(at + 3000).toUTCString() } }),
        0,
        10_000,
        at,
      ),
    ).toBe(3000);
    expect(
      retryDelayMs(new Response(null, { status: 429, headers: { "retry-after": "600" } }), 0, 10_000),
    ).toBe(10_000);
    expect(retryDelayMs(undefined, 3, 10_000)).toBeLessThanOrEqual(2000);

    let calls = 0;
    const busy: typeof fetch = async () => {
      calls++;
      return new Response(JSON.stringify({ code: "rate_limited" }), {
        status: 429,
        headers: { "retry-after": "0", "content-type": "application/problem+json" },
      });
    };
    const coord = createCoordClient({ baseUrl: stack.url, fetch: busy, attempts: 3 });
    const out = await coord.api.GET("/v1/health");
    expect(out.response.status).toBe(429);
    expect(calls).toBe(3);
  });

  it("uploads and downloads an artifact, and waits for a job to finish", async () => {
    const client = await fundedClient();
    const coord = createCoordClient({ baseUrl: stack.url, key: client.key });
    const bytes = randomBytes(3000);
    const id = await coord.upload(bytes, "audio/wav", { filename: "a.wav" });
    expect(Buffer.from(await coord.download(id)).equals(bytes)).toBe(true);

    const { region, constraints } = isolated();
    const miner = await registeredMiner({ region, prices: { echo: 1000 } });
    const sub = await coord.api.POST("/v1/jobs", {
      body: { service: "echo", input: { hello: "sdk" }, constraints, max_price: 5000 },
    });
    const jobId = (sub.data as { id: string }).id;
    const waiting = coord.waitFor(jobId, { waitSeconds: 1 });
    const claimed = (await pollJobs(miner, { wait_seconds: 5 })).jobs[0];
    await minerCall(miner, jobId, "result", { claim_token: claimed?.claim_token, output: { hello: "sdk" } });
    expect(await waiting).toMatchObject({ id: jobId, status: "completed" });
  });
});

import { describe, expect, it } from "vitest";
import { SERVICES } from "../core/services/registry.ts";
import { declaredInputFields, JOB_OPTION_FIELDS } from "../core/services/shortcut.ts";
import {
  api,
  createAccount,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  submitEcho,
} from "./fixture.ts";

function paths(body: unknown): string[] {
  return ((body as { errors?: { path: string }[] }).errors ?? []).map((e) => e.path);
}

describe("submitting jobs", () => {
  it("concurrent duplicates with one Idempotency-Key create one job and replay the first response", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const body = { service: "echo", input: { n: 1 }, constraints };
    const key = `idem-${Math.random()}`;
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        api<{ id: string }>("POST", "/v1/jobs", {
          key: client.key,
          body,
          headers: { "idempotency-key": key },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    const list = await api<{ jobs: { id: string }[] }>("GET", "/v1/jobs?limit=100", { key: client.key });
    expect(list.body.jobs).toHaveLength(1);
    const other = await api("POST", "/v1/jobs", {
      key: client.key,
      body: { ...body, input: { n: 2 } },
      headers: { "idempotency-key": key },
    });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ code: "idempotency_mismatch" });
  });

  it("an input that breaks the service schema is 422 naming the field", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "stable-diffusion.generate", input: { prompt: "a cat", width: 1001, height: 1024 } },
    });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toContain("input.width");
  });

  it("bad job options are 422 naming each field", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/jobs", {
      key: client.key,
      body: {
        service: "echo",
        input: {},
        priority: 42,
        ttl_seconds: 0,
        max_attempts: 99,
        webhook_url: "not a url",
        constraints: { gpu_count: -1 },
      },
    });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toEqual(
      expect.arrayContaining([
        "body.priority",
        "body.ttl_seconds",
        "body.max_attempts",
        "body.webhook_url",
        "body.constraints.gpu_count",
      ]),
    );
  });

  it("cancel honours Idempotency-Key: a repeat replays the first answer", async () => {
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints: isolated().constraints });
    const headers = { "idempotency-key": `cancel-${Math.random()}` };
    const first = await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key, headers });
    const again = await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key, headers });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  it("a webhook_url pointing at cloud metadata is 422 naming body.webhook_url", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input: {}, webhook_url: "http://169.254.169.254/latest/meta-data/" },
    });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toEqual(["body.webhook_url"]);
  });

  it("an unknown service is 422 naming body.service", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/jobs", { key: client.key, body: { service: "teleport", input: {} } });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toEqual(["body.service"]);
  });

  it("an input over 256 KB is 413 naming input", async () => {
    const client = await fundedClient();
    const res = await api("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input: { blob: "x".repeat(300 * 1024) } },
    });
    expect(res.status).toBe(413);
    expect(paths(res.body)).toEqual(["input"]);
  });

  it("a submit the balance cannot hold is 402", async () => {
    const client = await createAccount("client");
    const res = await submitEcho(client, { max_price: 10 });
    expect(res.status).toBe(402);
    expect(res.body).toMatchObject({ code: "insufficient_funds" });
  });

  it("a typed shortcut's body is the service input, with the job options beside its fields", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const res = await api<{ id: string; service: string; status: string; priority: number }>(
      "POST",
      "/v1/services/echo/run",
      {
        key: client.key,
        body: { a: 1, nested: { b: [2] }, priority: 7, max_attempts: 2, metadata: { m: "x" }, constraints },
      },
    );
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      service: "echo",
      status: "queued",
      priority: 7,
      max_attempts: 2,
      metadata: { m: "x" },
      constraints: { regions: [region] },
    });
    // The miner gets the input alone: the job options went to the job.
    const job = (await pollJobs(miner, { wait_seconds: 5 })).jobs.find((j) => j.job_id === res.body.id);
    expect(job?.input).toEqual({ a: 1, nested: { b: [2] } });

    // A strict service: the same job as POST /v1/jobs with the input wrapped and the options beside it.
    const input = { audio_url: "https://example.com/talk.mp3", language: "en" };
    const options = { priority: 3, max_price: 500_000, ttl_seconds: 600, constraints };
    const viaShortcut = await api<Record<string, unknown>>("POST", "/v1/services/whisper/transcribe", {
      key: client.key,
      body: { ...input, ...options },
    });
    const viaJobs = await api<Record<string, unknown>>("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "whisper.transcribe", input, ...options },
    });
    expect(viaShortcut.status, viaShortcut.text).toBe(201);
    expect(viaJobs.status, viaJobs.text).toBe(201);
    const same = (j: Record<string, unknown>) => {
      const { id, created_at, updated_at, queue_deadline, ...rest } = j;
      return rest;
    };
    expect(same(viaShortcut.body)).toEqual(same(viaJobs.body));
    expect(viaShortcut.body).toMatchObject({
      service: "whisper.transcribe",
      priority: 3,
      max_price: 500_000,
    });

    // The OpenAPI document says so: the job options as properties, any other field allowed (the input's).
    const doc = await api<{
      paths: Record<string, { post: { summary: string; requestBody: { content: Record<string, unknown> } } }>;
    }>("GET", "/v1/openapi.json");
    const op = doc.body.paths["/v1/services/{service}/{action}"]?.post;
    expect(op?.summary).toMatch(/body is the service's input/);
    const schema = op?.requestBody.content["application/json"] as {
      schema: { properties: Record<string, unknown>; additionalProperties?: unknown };
    };
    expect(Object.keys(schema.schema.properties).sort()).toEqual([...JOB_OPTION_FIELDS].sort());
    expect(schema.schema.additionalProperties).not.toBe(false);

    const unknown = await api("POST", "/v1/services/warp/drive", { key: client.key, body: {} });
    expect(unknown.status).toBe(404);
  });

  it("a typed shortcut's bad fields are a 422 naming them where they were sent (body.<field>)", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const shortcut = (body: unknown) =>
      api<{ code: string }>("POST", "/v1/services/whisper/transcribe", { key: client.key, body });
    const audio = { audio_url: "https://example.com/a.mp3", constraints };
    const cases: [unknown, string][] = [
      [{ ...audio, priority: 42 }, "body.priority"],
      [{ ...audio, webhook_url: "http://169.254.169.254/" }, "body.webhook_url"],
      [{ ...audio, language: "klingon" }, "body.language"],
      [{ ...audio, temprature: 0.2 }, "body.temprature"],
      [{ constraints }, "body.audio_url"],
    ];
    for (const [body, path] of cases) {
      const res = await shortcut(body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.code).toBe("validation_failed");
      expect(paths(res.body), JSON.stringify(body)).toEqual([path]);
    }
    const big = await api("POST", "/v1/services/echo/run", {
      key: client.key,
      body: { blob: "x".repeat(300 * 1024), constraints },
    });
    expect(big.status).toBe(413);
    expect(paths(big.body)).toEqual(["body"]);
  });

  it("a typed shortcut refuses the wrapped {input} body with 422 naming body.input", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    for (const path of ["/v1/services/echo/run", "/v1/services/whisper/transcribe"]) {
      const res = await api<{ code: string; errors: { path: string; message: string }[] }>("POST", path, {
        key: client.key,
        body: { input: { audio_url: "https://example.com/a.mp3" }, constraints },
      });
      expect(res.status, path).toBe(422);
      expect(paths(res.body)).toEqual(["body.input"]);
      expect(res.body.errors[0]?.message).toMatch(/top level/);
    }
    const list = await api<{ jobs: unknown[] }>("GET", "/v1/jobs", { key: client.key });
    expect(list.body.jobs).toEqual([]);
  });

  it("a typed shortcut's Idempotency-Key binds to its route and the body as sent", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const key = `sc-${Math.random()}`;
    const body = { n: 1, constraints };
    const send = (path: string, b: unknown) =>
      api<{ id: string }>("POST", path, { key: client.key, body: b, headers: { "idempotency-key": key } });
    const first = await send("/v1/services/echo/run", body);
    const again = await send("/v1/services/echo/run", { constraints, n: 1 }); // same JSON, other key order
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(first.text);
    // Another body, the equivalent POST /v1/jobs request, or a shortcut of another service: another request.
    expect((await send("/v1/services/echo/run", { n: 2, constraints })).status).toBe(422);
    expect((await send("/v1/jobs", { service: "echo", input: { n: 1 }, constraints })).status).toBe(422);
    const other = await send("/v1/services/whisper/transcribe", body);
    expect(other.status).toBe(422);
    expect(paths(other.body)).toEqual(["header.idempotency-key"]);
    const list = await api<{ jobs: { id: string }[] }>("GET", "/v1/jobs", { key: client.key });
    expect(list.body.jobs.map((j) => j.id)).toEqual([first.body.id]);
  });

  it("no service's input declares a field a shortcut body reserves for job options", () => {
    expect([...JOB_OPTION_FIELDS].sort()).toEqual(
      [
        "constraints",
        "priority",
        "max_price",
        "ttl_seconds",
        "timeout_seconds",
        "max_attempts",
        "webhook_url",
        "metadata",
      ].sort(),
    );
    for (const def of SERVICES) {
      const declared = declaredInputFields(def);
      expect(declared.length, def.id).toBeGreaterThan(0);
      expect(
        declared.filter((f) => f === "input" || JOB_OPTION_FIELDS.includes(f)),
        def.id,
      ).toEqual([]);
    }
  });

  it("Prefer: wait returns the terminal job when it finishes in time", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const submitted = api<{ id: string; status: string }>("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input: { w: 1 }, constraints },
      headers: { prefer: "wait=20" },
    });
    const [job] = (await pollJobs(miner, { wait_seconds: 15 })).jobs;
    await minerCall(miner, job?.job_id ?? "", "result", { claim_token: job?.claim_token, output: { w: 1 } });
    const res = await submitted;
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("completed");
    expect(res.headers.get("preference-applied")).toBe("wait=20");
  });
});

describe("reading jobs", () => {
  it("GET ?wait long-polls until the job changes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints });
    const waiting = api<{ status: string }>("GET", `/v1/jobs/${sub.body.id}?wait=10`, { key: client.key });
    const miner = await registeredMiner({ region });
    await pollJobs(miner, { wait_seconds: 5 });
    expect((await waiting).body.status).toBe("assigned");
  });

  it("listing pages through jobs with a cursor and filters by status", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submitEcho(client, { constraints })).body.id);
    await api("POST", `/v1/jobs/${ids[0]}/cancel`, { key: client.key });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { jobs: { id: string }[]; next_cursor: string | null } } = await api(
        "GET",
        `/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { key: client.key },
      );
      seen.push(...page.body.jobs.map((j) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const cancelled = await api<{ jobs: { id: string }[] }>("GET", "/v1/jobs?status=cancelled", {
      key: client.key,
    });
    expect(cancelled.body.jobs.map((j) => j.id)).toEqual([ids[0]]);
    expect((await api("GET", "/v1/jobs?limit=0", { key: client.key })).status).toBe(422);
    expect((await api("GET", "/v1/jobs?status=sleeping", { key: client.key })).status).toBe(422);
    expect((await api("GET", "/v1/jobs?cursor=garbage", { key: client.key })).status).toBe(422);
  });

  it("each event of a job's timeline names the request that caused it (its trace id)", async () => {
    const client = await fundedClient();
    const job = await submitEcho(client, { constraints: isolated().constraints });
    const cancel = await api("POST", `/v1/jobs/${job.body.id}/cancel`, { key: client.key, body: {} });
    expect(cancel.status).toBe(200);
    const events = await api<{ events: { type: string; correlation_id: string | null }[] }>(
      "GET",
      `/v1/jobs/${job.body.id}/events`,
      { key: client.key },
    );
    const byType = Object.fromEntries(events.body.events.map((e) => [e.type, e.correlation_id]));
    expect(byType["job.submitted.v1"]).toBe(job.headers.get("x-request-id"));
    expect(byType["job.cancelled.v1"]).toBe(cancel.headers.get("x-request-id"));
    expect(job.headers.get("x-request-id")).not.toBe(cancel.headers.get("x-request-id"));
  });

  it("another account's job is 404 on every job route", async () => {
    const a = await fundedClient();
    const b = await fundedClient();
    const job = await submitEcho(a, { constraints: isolated().constraints });
    for (const [method, path] of [
      ["GET", `/v1/jobs/${job.body.id}`],
      ["GET", `/v1/jobs/${job.body.id}/result`],
      ["GET", `/v1/jobs/${job.body.id}/events`],
      ["POST", `/v1/jobs/${job.body.id}/cancel`],
      ["POST", `/v1/jobs/${job.body.id}/retry`],
    ] as const) {
      const res = await api(method, path, { key: b.key });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    const list = await api<{ jobs: unknown[] }>("GET", "/v1/jobs", { key: b.key });
    expect(list.body.jobs).toEqual([]);
  });
});

describe("miners", () => {
  it("re-registering the same name updates the same miner", async () => {
    const account = await createAccount("miner");
    const first = await registeredMiner({ name: "rig-1", concurrency: 1 }, account);
    const again = await registeredMiner({ name: "rig-1", concurrency: 4 }, account);
    expect(again.id).toBe(first.id);
    const list = await api<{ miners: { id: string; concurrency: number }[] }>("GET", "/v1/miners", {
      key: account.key,
    });
    expect(list.body.miners).toEqual([expect.objectContaining({ id: first.id, concurrency: 4 })]);
  });

  it("registration with unknown services or bad GPUs is 422 naming the fields", async () => {
    const account = await createAccount("miner");
    const res = await api("POST", "/v1/miners/register", {
      key: account.key,
      body: {
        name: "bad rig!",
        services: ["echo", "nope"],
        gpus: [{ model: "RTX", vram_mb: -1 }],
        cuda_version: "twelve",
      },
    });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toEqual(
      expect.arrayContaining(["body.name", "body.gpus.0.vram_mb", "body.cuda_version"]),
    );
    const unknown = await api("POST", "/v1/miners/register", {
      key: account.key,
      body: { name: "rig", services: ["nope"] },
    });
    expect(paths(unknown.body)).toEqual(["body.services.0"]);
  });

  it("a miner key cannot act as another account's miner", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const owner = await registeredMiner({ region });
    const intruder = await createAccount("miner");
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(owner, { wait_seconds: 3 })).jobs;
    const headers = { "x-miner-id": owner.id };
    expect((await api("POST", "/v1/miners/heartbeat", { key: intruder.key, headers, body: {} })).status).toBe(
      404,
    );
    expect((await api("POST", "/v1/miners/poll", { key: intruder.key, headers, body: {} })).status).toBe(404);
    const hijack = await api("POST", `/v1/miners/${sub.body.id}/result`, {
      key: intruder.key,
      headers,
      body: { claim_token: job?.claim_token, output: {} },
    });
    expect(hijack.status).toBe(404);
  });

  it("a client key on miner routes is 403 and miner routes without X-Miner-Id are 422", async () => {
    const client = await fundedClient();
    expect((await api("POST", "/v1/miners/poll", { key: client.key, body: {} })).status).toBe(403);
    const miner = await createAccount("miner");
    const res = await api("POST", "/v1/miners/poll", { key: miner.key, body: {} });
    expect(res.status).toBe(422);
    expect(paths(res.body)).toEqual(["header.x-miner-id"]);
  });

  it("bad reports are 422 naming the field, and a stale token is 409", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 3 })).jobs;
    const noToken = await minerCall(miner, sub.body.id, "result", { output: {} });
    expect(paths(noToken.body)).toEqual(["body.claim_token"]);
    const badProgress = await minerCall(miner, sub.body.id, "progress", {
      claim_token: job?.claim_token,
      progress: 2,
    });
    expect(paths(badProgress.body)).toEqual(["body.progress"]);
    const badFail = await minerCall(miner, sub.body.id, "fail", {
      claim_token: job?.claim_token,
      error_code: "",
    });
    expect(paths(badFail.body)).toEqual(["body.error_code"]);
    const stale = await minerCall(miner, sub.body.id, "result", { claim_token: "ct_wrong", output: {} });
    expect(stale.status).toBe(409);
    const badPoll = await api("POST", "/v1/miners/poll", {
      key: miner.key,
      headers: miner.headers,
      body: { wait_seconds: 99 },
    });
    expect(paths(badPoll.body)).toEqual(["body.wait_seconds"]);
  });
});

import { describe, expect, it } from "vitest";
import { newId } from "../core/ids.ts";
import { loadJob } from "../core/jobs/read.ts";
import { applyTransition } from "../core/jobs/transition.ts";
import {
  api,
  type Claimed,
  createAccount,
  eventually,
  fundedClient,
  getItem,
  isolated,
  minerCall,
  pollJobs,
  type Res,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";

/*
 * Valid JSON that a DynamoDB map cannot hold (outside testing found each of these as a 500): job input and output
 * are stored as JSON text, so they come back exactly; what JSON text cannot carry either is a 422 naming the path.
 * Ids too long (or malformed) for a table key are 404 before any lookup. Nothing here may ever be a 5xx.
 */

const JSON_HEADERS = { "content-type": "application/json" };

/** `n` arrays nested in one another: `[[...]]`, n levels. */
const nest = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;

/**
 * Every shape that broke the map storage, as JSON text: an empty key, numbers beyond DynamoDB's range and precision
 * (and an integer beyond 2^53), 40 levels of nesting (DynamoDB stops at 32), a 70,000-character key, and strings
 * JSON escapes.
 */
const AWKWARD = `{
  "": 1,
  "big": 1e300,
  "tiny": 5e-324,
  "most": -1.7976931348623157e308,
  "integer": 12345678901234567890,
  "${"k".repeat(70_000)}": "a long key",
  "deep": ${"[".repeat(40)}{"": "at the bottom", "n": 1e-300}${"]".repeat(40)},
  "text": "\\u0000 \\ud83d\\ude00 \\ud800",
  "nested": {"": {"": [1e300, 12345678901234567890, {"": null}]}}
}`;

function problemPaths(res: Res): string[] {
  return ((res.body as { errors?: { path: string }[] }).errors ?? []).map((e) => e.path);
}

function expectProblem(res: Res, status: number, code: string) {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(res.body).toMatchObject({ code, status });
}

function submitRaw(client: { key: string }, input: string, extra = "") {
  return api<{ id: string; status: string }>("POST", "/v1/jobs", {
    key: client.key,
    raw: `{"service": "echo", "input": ${input}${extra}}`,
    headers: JSON_HEADERS,
  });
}

function resultRaw(miner: TestMiner, jobId: string, token: string, output: string, extra = "") {
  return api("POST", `/v1/miners/${jobId}/result`, {
    key: miner.key,
    headers: { ...miner.headers, ...JSON_HEADERS },
    raw: `{"claim_token": ${JSON.stringify(token)}, "output": ${output}${extra}}`,
  });
}

/** A client, a miner in its own region and one echo job that the miner holds. */
async function heldJob(input = "{}") {
  const { region, constraints } = isolated();
  const client = await fundedClient();
  const miner = await registeredMiner({ region });
  const sub = await submitRaw(client, input, `, "constraints": ${JSON.stringify(constraints)}`);
  expect(sub.status, sub.text.slice(0, 500)).toBe(201);
  const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
  expect(job?.job_id).toBe(sub.body.id);
  return { client, miner, job: job as Claimed };
}

describe("job input a DynamoDB map cannot hold", () => {
  it("input with an empty key, 1e300, a 20-digit integer, 40 levels of nesting and a 70,000-character key is stored and handed to the miner as the same JSON value", async () => {
    const { job } = await heldJob(AWKWARD);
    expect(job.input).toEqual(JSON.parse(AWKWARD));
  });

  it("input nested exactly 64 levels deep is accepted, and read back the same", async () => {
    const input = `{"d": ${nest(63)}}`;
    const { job } = await heldJob(input);
    expect(job.input).toEqual(JSON.parse(input));
  });

  it("input holding a number that parses to Infinity (1e999) is 422 naming body.input.a.b", async () => {
    const client = await fundedClient();
    const res = await submitRaw(client, `{"a": {"b": 1e999}, "list": [1, -1e999]}`);
    expectProblem(res, 422, "validation_failed");
    expect(problemPaths(res)).toEqual(["body.input.a.b", "body.input.list.1"]);
  });

  it("input nested deeper than 64 levels is 422 naming the path, even 100,000 levels deep", async () => {
    const client = await fundedClient();
    const just = await submitRaw(client, `{"d": ${nest(64)}}`);
    expectProblem(just, 422, "validation_failed");
    expect(problemPaths(just)).toEqual([`body.input.d${".0".repeat(63)}`]);
    expect(just.text).toContain("64 levels");
    for (const headers of [{}, { "idempotency-key": `deep-${Math.random()}` }] as Record<string, string>[]) {
      const far = await api("POST", "/v1/jobs", {
        key: client.key,
        raw: `{"service": "echo", "input": {"d": ${nest(100_000)}}}`,
        headers: { ...JSON_HEADERS, ...headers },
      });
      expectProblem(far, 422, "validation_failed");
      expect(problemPaths(far)[0]).toMatch(/^body\.input\.d(\.0)+$/);
    }
  });

  it("metadata with an empty key is 422 on body.metadata, and no job is created", async () => {
    const client = await fundedClient();
    const res = await submitEcho(client, { metadata: { "": "x" } });
    expectProblem(res, 422, "validation_failed");
    expect(problemPaths(res)).toEqual(["body.metadata"]);
    const jobs = await api<{ jobs: unknown[] }>("GET", "/v1/jobs", { key: client.key });
    expect(jobs.body.jobs).toEqual([]);
  });

  it("an input over 256 KB is still 413 naming input", async () => {
    const client = await fundedClient();
    const res = await submitRaw(client, JSON.stringify({ blob: "x".repeat(300 * 1024) }));
    expectProblem(res, 413, "payload_too_large");
    expect(problemPaths(res)).toEqual(["input"]);
  });
});

describe("job output a DynamoDB map cannot hold", () => {
  it("a result with an empty key, 1e300, a 20-digit integer, deep nesting and a long key completes the job, and GET result returns it exactly", async () => {
    const { client, miner, job } = await heldJob();
    const done = await resultRaw(miner, job.job_id, job.claim_token, AWKWARD, `, "usage": {"gpu_ms": 1e300}`);
    expect(done.status, done.text.slice(0, 500)).toBe(200);
    expect(done.body).toMatchObject({ status: "completed" });
    const result = await api<{ output: unknown; usage: unknown }>("GET", `/v1/jobs/${job.job_id}/result`, {
      key: client.key,
    });
    expect(result.status).toBe(200);
    expect(result.body.output).toEqual(JSON.parse(AWKWARD));
    expect(result.body.usage).toEqual({ gpu_ms: 1e300 });
  });

  it("a result with 1e999 or nesting past 64 levels is 422 naming body.output, and the job stays with the miner, which can still complete it", async () => {
    const { client, miner, job } = await heldJob();
    const infinite = await resultRaw(miner, job.job_id, job.claim_token, `{"a": {"b": 1e999}}`);
    expectProblem(infinite, 422, "validation_failed");
    expect(problemPaths(infinite)).toEqual(["body.output.a.b"]);
    const deep = await resultRaw(miner, job.job_id, job.claim_token, `{"d": ${nest(100_000)}}`);
    expectProblem(deep, 422, "validation_failed");
    expect(problemPaths(deep)[0]).toMatch(/^body\.output\.d(\.0)+$/);
    const emptyUsage = await resultRaw(miner, job.job_id, job.claim_token, "{}", `, "usage": {"": 1}`);
    expectProblem(emptyUsage, 422, "validation_failed");
    expect(problemPaths(emptyUsage)[0]).toMatch(/^body\.usage/);
    const infiniteUsage = await resultRaw(
      miner,
      job.job_id,
      job.claim_token,
      "{}",
      `, "usage": {"x": 1e999}`,
    );
    expectProblem(infiniteUsage, 422, "validation_failed");
    expect(problemPaths(infiniteUsage)).toEqual(["body.usage.x"]);

    const still = await api("GET", `/v1/jobs/${job.job_id}`, { key: client.key });
    expect(still.body).toMatchObject({ status: "assigned", miner_id: miner.id });
    const ok = await minerCall(miner, job.job_id, "result", {
      claim_token: job.claim_token,
      output: { ok: 1 },
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ status: "completed" });
  });
});

describe("ids too long or malformed for a table key", () => {
  const LONG = "x".repeat(3000);
  const MALFORMED = [LONG, `acct_${"0".repeat(3000)}`, "nope"];

  it("an id of any length or shape in an admin, job, key or pool path, or in X-Miner-Id, is 404 not_found", async () => {
    const client = await fundedClient();
    const owner = await createAccount("miner");
    const pool = await api<{ id: string }>("POST", "/v1/pools", { key: owner.key, body: { name: "p" } });
    expect(pool.status).toBe(201);
    const miner = await registeredMiner();
    for (const id of MALFORMED) {
      const e = encodeURIComponent(id);
      const requests: { method: string; path: string; key: string; body?: unknown; headers?: object }[] = [
        { method: "GET", path: `/v1/admin/accounts/${e}`, key: stack.adminKey },
        { method: "POST", path: `/v1/admin/accounts/${e}/keys`, key: stack.adminKey, body: {} },
        { method: "GET", path: `/v1/admin/accounts/${e}/keys`, key: stack.adminKey },
        {
          method: "POST",
          path: `/v1/admin/accounts/${e}/adjust`,
          key: stack.adminKey,
          body: { amount: 1, reason: "x" },
        },
        { method: "POST", path: `/v1/admin/miners/${e}/drain`, key: stack.adminKey },
        { method: "POST", path: `/v1/admin/miners/${e}/ban`, key: stack.adminKey },
        { method: "POST", path: `/v1/admin/miners/${e}/unban`, key: stack.adminKey },
        { method: "POST", path: `/v1/admin/keys/${e}/revoke`, key: stack.adminKey },
        { method: "POST", path: `/v1/admin/keys/${e}/rotate`, key: stack.adminKey, body: {} },
        { method: "GET", path: `/v1/jobs/${e}`, key: client.key },
        { method: "GET", path: `/v1/jobs/${e}/result`, key: client.key },
        { method: "GET", path: `/v1/jobs/${e}/events`, key: client.key },
        { method: "POST", path: `/v1/jobs/${e}/cancel`, key: client.key },
        { method: "POST", path: `/v1/jobs/${e}/retry`, key: client.key },
        { method: "POST", path: `/v1/keys/${e}/revoke`, key: client.key },
        { method: "DELETE", path: `/v1/keys/${e}`, key: client.key },
        { method: "GET", path: `/v1/pools/${e}`, key: owner.key },
        { method: "PATCH", path: `/v1/pools/${e}`, key: owner.key, body: { name: "q" } },
        { method: "GET", path: `/v1/pools/${e}/members`, key: owner.key },
        { method: "DELETE", path: `/v1/pools/${pool.body.id}/members/${e}`, key: owner.key },
        { method: "DELETE", path: `/v1/pools/${e}/members/${e}`, key: owner.key },
        {
          method: "POST",
          path: "/v1/miners/heartbeat",
          key: miner.key,
          headers: { "x-miner-id": id },
          body: {},
        },
        { method: "POST", path: "/v1/miners/poll", key: miner.key, headers: { "x-miner-id": id }, body: {} },
        { method: "POST", path: "/v1/miners/drain", key: miner.key, headers: { "x-miner-id": id } },
        {
          method: "POST",
          path: `/v1/miners/${newId("job")}/result`,
          key: miner.key,
          headers: { "x-miner-id": id },
          body: { claim_token: "ct_x", output: {} },
        },
        {
          method: "POST",
          path: `/v1/miners/${e}/start`,
          key: miner.key,
          headers: miner.headers,
          body: { claim_token: "ct_x" },
        },
      ];
      for (const r of requests) {
        const res = await api(r.method, r.path, {
          key: r.key,
          body: r.body,
          headers: r.headers as Record<string, string>,
        });
        expect(res.status, `${r.method} ${r.path.slice(0, 80)} (${id.length} chars): ${res.text}`).toBe(404);
        expect(res.body).toMatchObject({ code: "not_found" });
      }
    }
  });

  it("a heartbeat naming malformed job ids, or the same job twice, answers 200 and renews the held job", async () => {
    const { job, miner } = await heldJob();
    const lease = String((await getItem(`JOB#${job.job_id}`, "JOB"))?.leaseExpiresAt);
    await new Promise((r) => setTimeout(r, 20));
    const beat = await api<{
      stop: { job_id: string; reason: string }[];
      held: { job_id: string; claim_token: string }[];
    }>("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {
        jobs: [
          { job_id: job.job_id, claim_token: job.claim_token },
          { job_id: job.job_id, claim_token: job.claim_token },
          { job_id: "x".repeat(100), claim_token: "ct_x" },
        ],
      },
    });
    expect(beat.status, beat.text).toBe(200);
    expect(beat.body.stop).toEqual([{ job_id: "x".repeat(100), claim_token: "ct_x", reason: "not_found" }]);
    // Leases are the miner's: the heartbeat moved the miner's liveness lease past the job's, and names the job held.
    expect(String((await getItem(`MINER#${miner.id}`, "MINER"))?.leaseUntil) > lease).toBe(true);
    expect(beat.body.held).toEqual([{ job_id: job.job_id, claim_token: job.claim_token }]);
  });

  it("a cursor holding a key too long for DynamoDB is 422 naming query.cursor", async () => {
    const client = await createAccount("client");
    const cursor = Buffer.from(
      JSON.stringify({
        GSI2PK: `ACCOUNT#${client.id}#JOBS`,
        GSI2SK: "x".repeat(3000),
        PK: "JOB#x",
        SK: "JOB",
      }),
    ).toString("base64url");
    const res = await api("GET", `/v1/jobs?cursor=${cursor}`, { key: client.key });
    expectProblem(res, 422, "validation_failed");
    expect(problemPaths(res)).toEqual(["query.cursor"]);
  });
});

describe("reports on jobs a miner never held", () => {
  it("a miner's start, progress, result or fail on another account's job with a guessed token is the same 404 as on a job that does not exist", async () => {
    const { client, job } = await heldJob();
    const stranger = await registeredMiner();
    const missing = newId("job");
    for (const [action, extra] of [
      ["start", {}],
      ["progress", { progress: 0.5 }],
      ["result", { output: {} }],
      ["fail", { error_code: "x", retryable: false }],
    ] as const) {
      const body = { claim_token: "ct_guessed", ...extra };
      const theirs = await minerCall(stranger, job.job_id, action, body);
      const none = await minerCall(stranger, missing, action, body);
      expectProblem(theirs, 404, "not_found");
      expectProblem(none, 404, "not_found");
      expect((theirs.body as { detail: string }).detail).toBe((none.body as { detail: string }).detail);
      expect(Object.keys(theirs.body).sort()).toEqual(Object.keys(none.body).sort());
    }
    const beat = await api<{ stop: { reason: string }[] }>("POST", "/v1/miners/heartbeat", {
      key: stranger.key,
      headers: stranger.headers,
      body: { jobs: [{ job_id: job.job_id, claim_token: "ct_guessed" }] },
    });
    expect(beat.body.stop.map((s) => s.reason)).toEqual(["not_found"]);
    const still = await api("GET", `/v1/jobs/${job.job_id}`, { key: client.key });
    expect(still.body).toMatchObject({ status: "assigned" });
  });

  it("the miner's own account's job with a wrong token is still 409 stale_claim with the job's status", async () => {
    const { miner, job } = await heldJob();
    const res = await minerCall(miner, job.job_id, "result", { claim_token: "ct_wrong", output: {} });
    expectProblem(res, 409, "stale_claim");
    expect(res.body).toMatchObject({ job_status: "assigned", attempt: 1 });
  });
});

describe("job transitions", () => {
  it("a transition the job's state does not allow is a 409 conflict naming the status, and writes nothing", async () => {
    const client = await fundedClient();
    const sub = await submitEcho(client, { constraints: isolated().constraints });
    expect((await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key })).status).toBe(200);
    const job = await loadJob(sub.body.id);
    expect(job?.status).toBe("cancelled");
    await expect(
      applyTransition(job as NonNullable<typeof job>, "start", { changes: {}, event: { miner_id: "mnr_x" } }),
    ).rejects.toMatchObject({ code: "conflict", details: { job_status: "cancelled", transition: "start" } });
    expect((await getItem(`JOB#${sub.body.id}`, "JOB"))?.version).toBe(job?.version);
  });
});

describe("a miner marked offline", () => {
  it("gets 204 with Coord-Miner-Status: offline and a Coord-Hint on poll while jobs wait, and work again after a heartbeat", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    // No heartbeats: the sweep marks it offline after three silent intervals.
    await eventually(async () => (await getItem(`MINER#${miner.id}`, "MINER"))?.status === "offline", 20_000);
    const sub = await submitEcho(client, { constraints });
    const idle = await pollJobs(miner);
    expect(idle.status).toBe(204);
    expect(idle.res.headers.get("coord-miner-status")).toBe("offline");
    expect(idle.res.headers.get("coord-hint")).toMatch(/heartbeat/);
    expect(idle.res.headers.get("retry-after")).toBeTruthy();

    const beat = await api("POST", "/v1/miners/heartbeat", {
      key: miner.key,
      headers: miner.headers,
      body: {},
    });
    expect(beat.status).toBe(200);
    const back = await pollJobs(miner, { wait_seconds: 5 });
    expect(back.status).toBe(200);
    expect(back.jobs.map((j) => j.job_id)).toEqual([sub.body.id]);
  }, 40_000);

  it("an online miner's empty poll names no miner status", async () => {
    const miner = await registeredMiner({ region: isolated().region });
    const idle = await pollJobs(miner);
    expect(idle.status).toBe(204);
    expect(idle.res.headers.get("coord-miner-status")).toBeNull();
  });
});

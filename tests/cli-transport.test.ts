import { describe, expect, it } from "vitest";
import { Api, ApiError } from "../cli/http.ts";
import { api, coordWithIO, createAccount, fundedClient, isolated, stack } from "./fixture.ts";

/*
 * The CLI sends through the SDK's retrying fetch (sdk/client.ts `retryingFetch`, under cli/http.ts `Api`): on the
 * real stack, behind a network that misbehaves the way real ones do (a 429 from a proxy, an answer lost after the
 * server acted), a submit is retried with one Idempotency-Key into one job; a mutation whose route keeps no replay
 * is not sent twice; `retries429: 0` (the miner agent's polls) sends once.
 */

type Job = { id: string; status: string };

function coord(args: string[], key: string, fetchImpl: typeof fetch) {
  return coordWithIO(args, {
    env: { COORD_URL: stack.url, COORD_API_KEY: key, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME },
    fetch: fetchImpl,
  });
}

const pathOf = (input: string | URL | Request) =>
  new URL(input instanceof Request ? input.url : String(input)).pathname;
const methodOf = (input: string | URL | Request, init?: RequestInit) =>
  (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
const keyOf = (input: string | URL | Request, init?: RequestInit) =>
  new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get("idempotency-key");

const problem = (status: number, code: string) =>
  new Response(JSON.stringify({ status, code, title: "stand-in", detail: `${code} (a proxy's answer)` }), {
    status,
    headers: { "content-type": "application/problem+json", "retry-after": "0" },
  });

async function jobsOf(key: string) {
  return (await api<{ jobs: Job[] }>("GET", "/v1/jobs?limit=50", { key })).body.jobs;
}

describe("the CLI's transport (the SDK's retrying fetch)", () => {
  it("a submit answered 429 is sent again with the same generated Idempotency-Key: one job", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const keys: (string | null)[] = [];
    let refused = 0;
    // A proxy that turns the first submit away (429, Retry-After: 0) without passing it on.
    const busy: typeof fetch = async (input, init) => {
      if (methodOf(input, init) === "POST" && pathOf(input) === "/v1/jobs") {
        keys.push(keyOf(input, init));
        if (refused++ === 0) return problem(429, "rate_limited");
      }
      return fetch(input, init);
    };
    const out = await coord(
      [
        "jobs",
        "submit",
        "echo",
        "--input",
        '{"n":1}',
        "--constraints",
        JSON.stringify(constraints),
        "--json",
      ],
      client.key,
      busy,
    );
    expect(out.code, out.stderr).toBe(0);
    const job = JSON.parse(out.stdout) as Job;
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect((await jobsOf(client.key)).map((j) => j.id)).toEqual([job.id]);
  });

  it("a submit whose answer is lost after the job was made is replayed, not made twice", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const keys: (string | null)[] = [];
    let lost = 0;
    // A gateway that passes the first submit on, then loses the coordinator's answer (503).
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (methodOf(input, init) === "POST" && pathOf(input) === "/v1/jobs") {
        keys.push(keyOf(input, init));
        if (lost++ === 0) {
          await res.body?.cancel();
          return problem(503, "unavailable");
        }
      }
      return res;
    };
    const out = await coord(
      [
        "jobs",
        "submit",
        "echo",
        "--input",
        '{"n":2}',
        "--constraints",
        JSON.stringify(constraints),
        "--idempotency-key",
        `cli-${constraints.regions[0]}`,
      ],
      client.key,
      lossy,
    );
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain("replayed the first response");
    expect(keys).toEqual([`cli-${constraints.regions[0]}`, `cli-${constraints.regions[0]}`]);
    const jobs = await jobsOf(client.key);
    expect(jobs).toHaveLength(1);
    expect(out.stdout).toContain(jobs[0]?.id);
  });

  it("a mutation whose route keeps no replay is retried on 429 only: admin adjust credits once", async () => {
    const client = await createAccount("client");
    let sent = 0;
    let calls = 0;
    // The first adjust is turned away (429: not processed, so retried); the next passes, its answer lost (503).
    const network: typeof fetch = async (input, init) => {
      if (!pathOf(input).endsWith("/adjust")) return fetch(input, init);
      calls++;
      if (calls === 1) return problem(429, "rate_limited");
      sent++;
      const res = await fetch(input, init);
      await res.body?.cancel();
      return problem(503, "unavailable");
    };
    const out = await coord(
      ["admin", "adjust", client.id, "--amount", "700", "--reason", "once"],
      stack.adminKey,
      network,
    );
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("HTTP 503");
    expect(calls).toBe(2);
    expect(sent).toBe(1);
    const account = await api<{ balance: { available: number } }>("GET", "/v1/account", { key: client.key });
    expect(account.body.balance.available).toBe(700);
  });

  it("reads are retried through 5xx and network errors; retries429: 0 sends once and fails at once", async () => {
    const client = await fundedClient();
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      calls++;
      if (calls === 1) throw new TypeError("fetch failed (connection reset)");
      if (calls === 2) return problem(502, "bad_gateway");
      return fetch(input, init);
    };
    const out = await coord(["account", "--json"], client.key, flaky);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ id: client.id });
    expect(calls).toBe(3);

    let polls = 0;
    const busy: typeof fetch = async () => {
      polls++;
      return problem(429, "rate_limited");
    };
    const once = new Api({ url: stack.url, key: client.key, fetch: busy });
    const err = await once.request("POST", "/v1/miners/poll", { body: {}, retries429: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    expect(polls).toBe(1);
    await once.get("/v1/health", { retries429: 2 }).catch(() => {});
    expect(polls).toBe(4);
  });
});

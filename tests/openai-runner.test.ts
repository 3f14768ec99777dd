import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runMiner } from "../cli/miner/agent.ts";
import { openAiRunner } from "../cli/miner/runners/openai.ts";
import {
  api,
  createAccount,
  eventually,
  fundedClient,
  isolated,
  minerRunWithoutServer,
  stack,
} from "./fixture.ts";
import { ANSWER, type OpenAiStandIn, startOpenAiStandIn } from "./openai-stand-in.ts";

/*
 * The reference miner's `openai` runner (llm.inference) against a STAND-IN for an OpenAI-compatible server that
 * speaks the real wire format (tests/openai-stand-in.ts): streamed tokens become progress, the server's usage is
 * recorded with the result, and refusals are failures with the server's reason.
 */

let server: OpenAiStandIn;
beforeAll(async () => {
  server = await startOpenAiStandIn();
});
afterAll(() => server.close());

type Job = { id: string; status: string; error?: { code: string; message: string } | null };

/** Runs the reference miner with the openai runner until it has done `jobs` jobs. */
async function llmMiner(region: string, jobs: number, models?: Record<string, string>) {
  const account = await createAccount("miner");
  return runMiner({
    url: stack.url,
    key: account.key,
    name: `llm-${region}`,
    services: ["llm.inference"],
    region,
    gpus: [{ model: "H100", vram_mb: 81_920, count: 2 }],
    prices: { "llm.inference": 10 },
    registration: { cuda_version: "12.4", models: ["llama-3.1-8b-instruct"] },
    maxJobs: jobs,
    log: () => {},
    executors: { "llm.inference": openAiRunner({ baseUrl: server.url, ...(models ? { models } : {}) }) },
  });
}

const submit = async (key: string, constraints: Record<string, unknown>, input: Record<string, unknown>) => {
  const res = await api<Job>("POST", "/v1/jobs", {
    key,
    body: {
      service: "llm.inference",
      input: { model: "llama-3.1-8b-instruct", ...input },
      constraints,
      max_price: 10_000_000,
    },
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
};

describe("the openai runner", () => {
  it("streams a chat completion from the server: tokens as progress, the text and the server's usage in the result", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, {
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Say the pangram" },
      ],
      max_tokens: 64,
      temperature: 0.2,
    });
    const summary = await llmMiner(region, 1);
    expect(summary.completed).toBe(1);

    const result = await api<{ output: Record<string, unknown>; usage: Record<string, number> }>(
      "GET",
      `/v1/jobs/${job.id}/result`,
      { key: client.key },
    );
    expect(result.body.output).toEqual({
      text: ANSWER.join(" "),
      finish_reason: "stop",
      usage: { prompt_tokens: 6, completion_tokens: ANSWER.length, total_tokens: 6 + ANSWER.length },
    });
    expect(result.body.usage).toEqual({
      prompt_tokens: 6,
      completion_tokens: ANSWER.length,
      total_tokens: 6 + ANSWER.length,
    });
    // What reached the server: the chat route, streamed with usage, the job's sampling settings.
    const sent = server.requests.find((r) => (r.body.messages as unknown[] | undefined)?.length === 2);
    expect(sent).toMatchObject({
      path: "/v1/chat/completions",
      body: {
        model: "llama-3.1-8b-instruct",
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 64,
        temperature: 0.2,
      },
    });
    // The tokens came in over about a second: at least one progress report on the job.
    const events = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${job.id}/events`, {
      key: client.key,
    });
    expect(events.body.events.map((e) => e.type)).toContain("job.progress.v1");
  }, 30_000);

  it("sends a raw prompt to /v1/completions under the server's model name, and stops at max_tokens", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, { prompt: "Once upon a time", max_tokens: 3 });
    await llmMiner(region, 1, { "llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct" });
    const result = await api<{ output: Record<string, unknown> }>("GET", `/v1/jobs/${job.id}/result`, {
      key: client.key,
    });
    expect(result.body.output).toMatchObject({ text: ANSWER.slice(0, 3).join(" "), finish_reason: "length" });
    expect(server.requests.at(-1)).toMatchObject({
      path: "/v1/completions",
      body: { model: "meta-llama/Llama-3.1-8B-Instruct", prompt: "Once upon a time", max_tokens: 3 },
    });
  }, 30_000);

  it("a model the server refuses fails the job with the server's reason, not retried", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const job = await submit(client.key, constraints, { prompt: "hi", max_tokens: 4 });
    await llmMiner(region, 1, { "llama-3.1-8b-instruct": "unknown-model" });
    const done = await eventually(async () => {
      const res = await api<Job>("GET", `/v1/jobs/${job.id}`, { key: client.key });
      return res.body.status === "failed" ? res.body : undefined;
    });
    expect(done.error).toMatchObject({
      code: "model_refused",
      message: expect.stringContaining("does not exist"),
    });
  }, 30_000);

  it("coord miner run refuses to serve llm.inference without a model server to forward to", async () => {
    const out = await minerRunWithoutServer("llm.inference");
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain("--openai-url");
  });
});

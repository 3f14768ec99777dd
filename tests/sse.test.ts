import { describe, expect, it } from "vitest";
import { api, fundedClient, minerCall, pollJobs, registeredMiner, stack, submitEcho } from "./fixture.ts";

const isolated = () => {
  const region = `sse-${Math.random().toString(36).slice(2, 10)}`;
  return { region, constraints: { regions: [region] } };
};

interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** Opens an SSE stream and collects its messages until the server ends it (or `timeoutMs`). */
async function openStream(
  path: string,
  key: string,
  headers: Record<string, string> = {},
  timeoutMs = 20_000,
) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const res = await fetch(`${stack.url}${path}`, {
    headers: { authorization: `Bearer ${key}`, accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const messages: SseMessage[] = [];
  const done = (async () => {
    if (!res.body || res.status !== 200) return;
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const msg: SseMessage = { data: "" };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) msg.id = line.slice(4);
            else if (line.startsWith("event: ")) msg.event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          msg.data = data.join("\n");
          if (msg.event) messages.push(msg);
          end = buffer.indexOf("\n\n");
        }
      }
    } finally {
      clearTimeout(timer);
    }
  })();
  return { res, messages, done, close: () => abort.abort() };
}

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe("live job events", () => {
  it("SSE delivers every transition in order, ends after the terminal one, and resumes from Last-Event-ID", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const id = sub.body.id;

    const stream = await openStream(`/v1/jobs/${id}/events`, client.key);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await until(() => stream.messages.length === 1);

    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    const token = jobs.find((j) => j.job_id === id)?.claim_token;
    await until(() => stream.messages.length === 2);
    await minerCall(miner, id, "start", { claim_token: token });
    await minerCall(miner, id, "progress", { claim_token: token, progress: 0.3 });
    await minerCall(miner, id, "progress", { claim_token: token, progress: 0.6 });
    await minerCall(miner, id, "result", { claim_token: token, output: { done: true } });
    await stream.done;

    const types = [
      "job.submitted.v1",
      "job.assigned.v1",
      "job.started.v1",
      "job.progress.v1",
      "job.progress.v1",
      "job.completed.v1",
    ];
    expect(stream.messages.map((m) => m.event)).toEqual(types);
    expect(stream.messages.map((m) => Number(m.id))).toEqual([1, 2, 3, 4, 5, 6]);
    const last = JSON.parse(stream.messages.at(-1)?.data ?? "{}");
    expect(last).toMatchObject({ seq: 6, type: "job.completed.v1", status: "completed" });
    expect(JSON.parse(stream.messages[3]?.data ?? "{}").data.progress).toBe(0.3);

    // A reconnect resumes after the last event it saw: nothing lost, nothing repeated.
    const resumed = await openStream(`/v1/jobs/${id}/events`, client.key, { "last-event-id": "3" });
    await resumed.done;
    expect(resumed.messages.map((m) => [Number(m.id), m.event])).toEqual([
      [4, "job.progress.v1"],
      [5, "job.progress.v1"],
      [6, "job.completed.v1"],
    ]);
    // Caught up on a finished job: 204 tells EventSource to stop reconnecting.
    const finished = await openStream(`/v1/jobs/${id}/events`, client.key, { "last-event-id": "6" });
    expect(finished.res.status).toBe(204);
  });

  it("long-poll returns the events after a seq as soon as one exists, and nothing once the wait passes", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const sub = await submitEcho(client, { constraints });
    const id = sub.body.id;

    const started = Date.now();
    const waiting = api<{ events: { seq: number; type: string }[]; status: string; last_seq: number }>(
      "GET",
      `/v1/jobs/${id}/events?after=1&wait=10`,
      { key: client.key },
    );
    await new Promise((r) => setTimeout(r, 300));
    await pollJobs(miner, { wait_seconds: 5 });
    const res = await waiting;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.body.events.map((e) => [e.seq, e.type])).toEqual([[2, "job.assigned.v1"]]);
    expect(res.body).toMatchObject({ status: "assigned", last_seq: 2 });

    const quiet = Date.now();
    const none = await api<{ events: unknown[]; last_seq: number }>(
      "GET",
      `/v1/jobs/${id}/events?after=2&wait=1`,
      {
        key: client.key,
      },
    );
    expect(Date.now() - quiet).toBeGreaterThanOrEqual(900);
    expect(none.body).toMatchObject({ events: [], last_seq: 2 });

    // Without `wait`: the history at once (as before).
    const all = await api<{ events: { seq: number }[] }>("GET", `/v1/jobs/${id}/events`, { key: client.key });
    expect(all.body.events.map((e) => e.seq)).toEqual([1, 2]);
  });

  it("another account's job is 404 on every form, and bad cursors are 422", async () => {
    const client = await fundedClient();
    const other = await fundedClient();
    const sub = await submitEcho(client, { constraints: isolated().constraints });
    const stream = await openStream(`/v1/jobs/${sub.body.id}/events`, other.key);
    expect(stream.res.status).toBe(404);
    expect(
      (await api("GET", `/v1/jobs/${sub.body.id}/events?after=0&wait=1`, { key: other.key })).status,
    ).toBe(404);
    const bad = await openStream(`/v1/jobs/${sub.body.id}/events`, client.key, { "last-event-id": "abc" });
    expect(bad.res.status).toBe(422);
    const badAfter = await api<{ errors: { path: string }[] }>(
      "GET",
      `/v1/jobs/${sub.body.id}/events?after=-1`,
      {
        key: client.key,
      },
    );
    expect(badAfter.status).toBe(422);
    expect(badAfter.body.errors[0]?.path).toBe("query.after");
  });
});

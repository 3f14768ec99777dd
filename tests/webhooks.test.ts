import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBStreamEvent } from "aws-lambda";
import { afterAll, describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import type { Envelope } from "../events/catalog.ts";
import { toBusEvent } from "../events/publisher.ts";
import { sqs as sqsClient } from "../functions/sqs.ts";
import { envelopeFromItem, makeRelayHandler } from "../functions/stream/relay.ts";
import { LocalBus } from "../local/bus.ts";
import { generateSecret, verifyWebhook, WebhookVerificationError } from "../sdk/webhooks.ts";
import {
  api,
  eventually,
  fundedClient,
  minerCall,
  pollJobs,
  queryPk,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";
import { type Receiver, startReceiver } from "./webhooks-receiver.ts";

const sqs = sqsClient();
const receivers: Receiver[] = [];
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

async function receiver(respond?: Parameters<typeof startReceiver>[0]) {
  const r = await startReceiver(respond);
  receivers.push(r);
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each test works in its own region, so parallel tests never claim each other's jobs. */
const isolated = () => {
  const region = `wh-${Math.random().toString(36).slice(2, 10)}`;
  return { region, constraints: { regions: [region] } };
};

interface EndpointRes {
  id: string;
  secret: string;
  status: string;
  url: string;
  event_types: string[];
  consecutive_failures: number;
  disabled_reason: string | null;
}

async function endpoint(key: string, body: Record<string, unknown>) {
  const res = await api<EndpointRes>("POST", "/v1/webhooks/endpoints", { key, body });
  if (res.status !== 201) throw new Error(`endpoint: ${res.status} ${res.text}`);
  return res.body;
}

/** Submits an echo job and has `miner` claim it; returns the job id and claim token. */
async function claimed(client: { key: string }, miner: TestMiner, constraints: object, extra = {}) {
  const sub = await submitEcho(client, { constraints, ...extra });
  expect(sub.status).toBe(201);
  // The test stack marks a miner offline after 3 s without a heartbeat, which a test waiting on deliveries
  // exceeds: heartbeat first, as a real miner does, and poll again after an empty answer (a loaded machine).
  const deadline = Date.now() + 20_000;
  for (;;) {
    await api("POST", "/v1/miners/heartbeat", { key: miner.key, headers: miner.headers, body: {} });
    const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
    const job = jobs.find((j) => j.job_id === sub.body.id);
    if (job) return { id: sub.body.id, token: job.claim_token };
    if (Date.now() > deadline) throw new Error(`job ${sub.body.id} not claimed`);
  }
}

async function complete(client: { key: string }, miner: TestMiner, constraints: object, extra = {}) {
  const { id, token } = await claimed(client, miner, constraints, extra);
  const res = await minerCall(miner, id, "result", { claim_token: token, output: { ok: true } });
  expect(res.status).toBe(200);
  return id;
}

async function fail(client: { key: string }, miner: TestMiner, constraints: object) {
  const { id, token } = await claimed(client, miner, constraints);
  const res = await minerCall(miner, id, "fail", {
    claim_token: token,
    error_code: "bad_input",
    error_message: "cannot",
    retryable: false,
  });
  expect(res.status).toBe(200);
  return id;
}

/** The outbox item of a job's event of `type`, as the table holds it. */
async function outboxItem(jobId: string, type: string) {
  const item = (await queryPk(`JOB#${jobId}`)).find((i) => i.entity === "event" && i.type === type);
  if (!item) throw new Error(`no ${type} for ${jobId}`);
  return item;
}

function busMessage(env: Envelope): string {
  return JSON.stringify(toBusEvent(env));
}

interface DeliveryRes {
  id: string;
  event_type: string;
  status: string;
  response_status: number | null;
  last_error: string | null;
  attempt_count: number;
  attempts: { attempt: number; status_code?: number; error?: string }[];
}

describe("client webhooks", () => {
  it("a completed job is delivered exactly once, and a failed one once, even when the relay and the queue see duplicates", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, concurrency: 2 });
    const rx = await receiver();
    const ep = await endpoint(client.key, {
      url: rx.url,
      event_types: ["job.completed.v1", "job.failed.v1"],
    });
    expect(ep.secret).toMatch(/^whsec_/);

    const done = await complete(client, miner, constraints);
    const failed = await fail(client, miner, constraints);
    await eventually(async () => rx.received.length >= 2, 15_000);

    // Duplicates: the same bus events again on the queue (twice each), and the relay re-publishing the outbox items.
    const items = [await outboxItem(done, "job.completed.v1"), await outboxItem(failed, "job.failed.v1")];
    for (const item of items) {
      for (let i = 0; i < 2; i++) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: stack.queueUrls.webhooks?.url,
            MessageBody: busMessage(envelopeFromItem(item)),
          }),
        );
      }
    }
    const bus = new LocalBus(sqs, async (name) => stack.queueUrls[name]?.url as string);
    const relay = makeRelayHandler(bus);
    const records = items.map((item, i) => ({
      eventName: "INSERT" as const,
      dynamodb: {
        NewImage: marshall(item, { removeUndefinedValues: true }),
        SequenceNumber: String(i + 1),
      },
    }));
    expect(await relay({ Records: records } as unknown as DynamoDBStreamEvent)).toEqual({
      batchItemFailures: [],
    });
    await sleep(2500);

    expect(rx.ofType("job.completed.v1")).toHaveLength(1);
    expect(rx.ofType("job.failed.v1")).toHaveLength(1);
    for (const r of rx.received) {
      const event = verifyWebhook(ep.secret, r.headers as Record<string, string>, r.body);
      expect(r.id).toMatch(/^msg_[0-9a-z]{26}$/);
      expect([done, failed]).toContain(event.subject);
      expect(event.seq).toBeGreaterThan(1);
    }
    const completed = verifyWebhook(
      ep.secret,
      rx.ofType("job.completed.v1")[0]?.headers as never,
      rx.ofType("job.completed.v1")[0]?.body ?? "",
    );
    expect(completed).toMatchObject({
      type: "job.completed.v1",
      subject: done,
      data: { job_id: done, status: "completed" },
    });

    const log = await api<{ items: DeliveryRes[] }>("GET", `/v1/webhooks/endpoints/${ep.id}/deliveries`, {
      key: client.key,
    });
    expect(log.status).toBe(200);
    expect(
      log.body.items.map((d) => [d.event_type, d.status, d.response_status, d.attempt_count]).sort(),
    ).toEqual([
      ["job.completed.v1", "succeeded", 200, 1],
      ["job.failed.v1", "succeeded", 200, 1],
    ]);
  });

  it("a receiver that answers 500 three times then 200 gets the same webhook-id four times, and the delivery ends succeeded", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const rx = await receiver((_r, n) => (n <= 3 ? 500 : 200));
    const ep = await endpoint(client.key, { url: rx.url, event_types: ["job.completed.v1"] });
    const id = await complete(client, miner, constraints);

    await eventually(async () => rx.received.length >= 4, 20_000);
    const ids = new Set(rx.received.map((r) => r.id));
    expect(ids.size).toBe(1);
    const timestamps = rx.received.map((r) => Number(r.headers["webhook-timestamp"]));
    // Every attempt is signed afresh (its own timestamp), and each verifies.
    for (const r of rx.received) verifyWebhook(ep.secret, r.headers as never, r.body);
    expect(timestamps.every((t, i) => i === 0 || t >= (timestamps[i - 1] as number))).toBe(true);
    // Back-off: the retries are spread out (COORD_WEBHOOK_RETRY_SCHEDULE=1,1,1,1 with jitter in the test stack).
    const first = rx.received[0] as { at: number };
    expect((rx.received[3] as { at: number }).at - first.at).toBeGreaterThan(2000);

    const delivery = await eventually(async () => {
      const res = await api<{ items: DeliveryRes[] }>("GET", `/v1/webhooks/endpoints/${ep.id}/deliveries`, {
        key: client.key,
      });
      const d = res.body.items[0];
      return d?.status === "succeeded" ? d : undefined;
    });
    expect(delivery.id).toBe([...ids][0]);
    expect(delivery.attempts.map((a) => a.status_code)).toEqual([500, 500, 500, 200]);
    expect(delivery.response_status).toBe(200);
    await sleep(1500);
    expect(rx.received).toHaveLength(4);

    // The detail shows the payload, as sent.
    const detail = await api<{ payload: { subject: string } }>(
      "GET",
      `/v1/webhooks/endpoints/${ep.id}/deliveries/${delivery.id}`,
      { key: client.key },
    );
    expect(detail.body.payload.subject).toBe(id);

    // Manual redelivery: one more request, the same webhook-id.
    const again = await api("POST", `/v1/webhooks/endpoints/${ep.id}/deliveries/${delivery.id}/redeliver`, {
      key: client.key,
    });
    expect(again.status).toBe(202);
    await eventually(async () => rx.received.length >= 5, 10_000);
    expect(rx.received[4]?.id).toBe(delivery.id);
    const after = await eventually(async () => {
      const res = await api<DeliveryRes>("GET", `/v1/webhooks/endpoints/${ep.id}/deliveries/${delivery.id}`, {
        key: client.key,
      });
      return res.body.attempt_count === 5 && res.body.status === "succeeded" ? res.body : undefined;
    });
    expect(after.response_status).toBe(200);
  });

  it("our verifier refuses a stale timestamp, a wrong secret and a changed body", async () => {
    const client = await fundedClient();
    const rx = await receiver();
    const ep = await endpoint(client.key, { url: rx.url, event_types: ["job.submitted.v1"] });
    const { constraints } = isolated();
    await submitEcho(client, { constraints });
    const got = await eventually(async () => rx.received[0], 10_000);
    const headers = got.headers as Record<string, string>;
    const ts = Number(headers["webhook-timestamp"]);

    expect(verifyWebhook(ep.secret, headers, got.body).type).toBe("job.submitted.v1");
    expect(() => verifyWebhook(generateSecret(), headers, got.body)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(ep.secret, headers, got.body, { now: ts + 301 })).toThrow(/too old/);
    expect(() => verifyWebhook(ep.secret, headers, got.body, { now: ts - 301 })).toThrow(/too new/);
    expect(() => verifyWebhook(ep.secret, headers, got.body.replace("queued", "running"))).toThrow(
      /no matching signature/,
    );
    expect(() => verifyWebhook(ep.secret, { ...headers, "webhook-id": "msg_other" }, got.body)).toThrow(
      WebhookVerificationError,
    );
  });

  it("a rotated endpoint secret overlaps: deliveries carry both signatures until the old one expires", async () => {
    const client = await fundedClient();
    const rx = await receiver();
    const ep = await endpoint(client.key, { url: rx.url, event_types: ["job.submitted.v1"] });
    const rotated = await api<EndpointRes & { secret_info: { previous_secrets_valid_until: string[] } }>(
      "POST",
      `/v1/webhooks/endpoints/${ep.id}/secret/rotate`,
      { key: client.key, body: { overlap_seconds: 3600 } },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(ep.secret);
    expect(rotated.body.secret_info.previous_secrets_valid_until).toHaveLength(1);
    // The secret is never shown again.
    const read = await api("GET", `/v1/webhooks/endpoints/${ep.id}`, { key: client.key });
    expect(read.text).not.toContain("whsec_");

    await submitEcho(client, { constraints: isolated().constraints });
    const got = await eventually(async () => rx.received[0], 10_000);
    expect(String(got.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    verifyWebhook(ep.secret, got.headers as never, got.body);
    verifyWebhook(rotated.body.secret, got.headers as never, got.body);

    // A rotation under an Idempotency-Key runs once: the repeat replays the same new secret.
    const idem = { "idempotency-key": `rot-${Math.random()}` };
    const once = await api<EndpointRes>("POST", `/v1/webhooks/endpoints/${ep.id}/secret/rotate`, {
      key: client.key,
      body: { overlap_seconds: 3600 },
      headers: idem,
    });
    const twice = await api<EndpointRes>("POST", `/v1/webhooks/endpoints/${ep.id}/secret/rotate`, {
      key: client.key,
      body: { overlap_seconds: 3600 },
      headers: idem,
    });
    expect(once.body.secret).toMatch(/^whsec_/);
    expect(twice.headers.get("idempotent-replayed")).toBe("true");
    // The replay is the first answer without its secret (no replay record holds one), and it rotated nothing.
    expect(twice.body).toEqual({ ...once.body, secret: null, secret_redacted: true });
    const after = await api<{ secret_info: unknown }>("GET", `/v1/webhooks/endpoints/${ep.id}`, {
      key: client.key,
    });
    expect(after.body.secret_info).toEqual((once.body as unknown as { secret_info: unknown }).secret_info);
    const other = await api("POST", `/v1/webhooks/endpoints/${ep.id}/secret/rotate`, {
      key: client.key,
      body: { overlap_seconds: 60 },
      headers: idem,
    });
    expect(other.status).toBe(422);

    // A rotation with no overlap: only the newest secret signs from now on.
    const now = await api<EndpointRes>("POST", `/v1/webhooks/endpoints/${ep.id}/secret/rotate`, {
      key: client.key,
      body: { overlap_seconds: 0 },
    });
    await submitEcho(client, { constraints: isolated().constraints });
    const next = await eventually(async () => rx.received[1], 10_000);
    expect(String(next.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    verifyWebhook(now.body.secret, next.headers as never, next.body);
    expect(() => verifyWebhook(rotated.body.secret, next.headers as never, next.body)).toThrow();
  });

  it("a private, link-local or metadata webhook URL is refused at registration with 422 naming the field", async () => {
    const client = await fundedClient();
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/",
      "http://[::ffff:169.254.169.254]/",
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://169.254.10.1:8080/",
      "http://[fe80::1]/",
      "http://0.0.0.0:9000/",
      "ftp://example.com/",
      "http://user:pass@example.com/",
      "not a url",
    ]) {
      const res = await api<{ code: string; errors: { path: string; message: string }[] }>(
        "POST",
        "/v1/webhooks/endpoints",
        { key: client.key, body: { url } },
      );
      expect(res.status, url).toBe(422);
      expect(res.body.code).toBe("validation_failed");
      expect(res.body.errors[0]?.path).toBe("body.url");
    }
    // Loopback is allowed in the test stack only because it runs with COORD_WEBHOOK_ALLOW_PRIVATE=1.
    const local = await api("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "http://127.0.0.1:9/hook" },
    });
    expect(local.status).toBe(201);
    const patched = await api<{ errors: { path: string }[] }>(
      "PATCH",
      `/v1/webhooks/endpoints/${local.body.id}`,
      {
        key: client.key,
        body: { url: "http://169.254.169.254/" },
      },
    );
    expect(patched.status).toBe(422);
    expect(patched.body.errors[0]?.path).toBe("body.url");
  });

  it("a webhook URL on port 0 is refused with 422 naming the url field, for endpoints and a job's webhook_url", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    for (const url of ["https://example.com:0/hook", "http://127.0.0.1:0/", "http://127.0.0.1:000/hook"]) {
      const created = await api<{ errors: { path: string; message: string }[] }>(
        "POST",
        "/v1/webhooks/endpoints",
        { key: client.key, body: { url } },
      );
      expect(created.status, url).toBe(422);
      expect(created.body.errors).toEqual([{ path: "body.url", message: "body.url must not use port 0" }]);
      const job = await submitEcho(client, { constraints, webhook_url: url });
      expect(job.status, url).toBe(422);
      expect((job.body as unknown as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([
        "body.webhook_url",
      ]);
      const shortcut = await api<{ errors: { path: string }[] }>("POST", "/v1/services/echo/run", {
        key: client.key,
        body: { constraints, webhook_url: url },
      });
      expect(shortcut.status, url).toBe(422);
      expect(shortcut.body.errors.map((e) => e.path)).toEqual(["body.webhook_url"]);
    }
    const ep = await endpoint(client.key, { url: "http://127.0.0.1:9/hook" });
    const patched = await api<{ errors: { path: string }[] }>("PATCH", `/v1/webhooks/endpoints/${ep.id}`, {
      key: client.key,
      body: { url: "http://127.0.0.1:0/hook" },
    });
    expect(patched.status).toBe(422);
    expect(patched.body.errors.map((e) => e.path)).toEqual(["body.url"]);
    const jobs = await api<{ jobs: unknown[] }>("GET", "/v1/jobs", { key: client.key });
    expect(jobs.body.jobs).toEqual([]);
  });

  it("answers that show a webhook secret are no-store, and their Idempotency-Key replays redact it rather than store it", async () => {
    const client = await fundedClient();
    const shown: string[] = [];
    // Each of the four secret-bearing answers, sent twice with one key: the first shows the secret, the replay not.
    const twice = async (path: string, body?: unknown) => {
      const headers = { "idempotency-key": `shown-${Math.random()}` };
      const first = await api<{ secret: string | null; secret_redacted?: boolean }>("POST", path, {
        key: client.key,
        body,
        headers,
      });
      const replay = await api<{ secret: string | null; secret_redacted?: boolean }>("POST", path, {
        key: client.key,
        body,
        headers,
      });
      expect(first.status, path).toBeLessThan(300);
      expect(first.headers.get("cache-control"), path).toBe("no-store");
      expect(first.body.secret, path).toMatch(/^whsec_/);
      expect(first.body.secret_redacted, path).toBeUndefined();
      shown.push(first.body.secret as string);
      expect(replay.status, path).toBe(first.status);
      expect(replay.headers.get("idempotent-replayed"), path).toBe("true");
      expect(replay.headers.get("cache-control"), path).toBe("no-store");
      expect(replay.body, path).toEqual({ ...first.body, secret: null, secret_redacted: true });
      // The record behind the replay holds no secret.
      const record = (await queryPk(`IDEM#${client.id}#${headers["idempotency-key"]}`))[0];
      expect(record?.entity, path).toBe("idempotency");
      expect(JSON.stringify(record), path).not.toContain("whsec_");
      return first.body as unknown as { id: string };
    };
    const ep = await twice("/v1/webhooks/endpoints", { url: "http://127.0.0.1:9/shown" });
    await twice(`/v1/webhooks/endpoints/${ep.id}/secret/rotate`, { overlap_seconds: 0 });
    await twice("/v1/webhooks/secret");
    await twice("/v1/webhooks/secret/rotate", { overlap_seconds: 0 });
    expect(new Set(shown).size).toBe(4);
    // Without a key too: no-store on every answer that shows a secret.
    const plain = await api("POST", `/v1/webhooks/endpoints/${ep.id}/secret/rotate`, { key: client.key });
    expect(plain.headers.get("cache-control")).toBe("no-store");
  });

  it("a job's webhook_url that turns out to reach the metadata service is refused at delivery time, without a request", async () => {
    // Submit refuses such a URL outright (422); delivery checks again, for names that resolve there later (DNS
    // rebinding). Simulate that by pointing a stored job's webhook_url at the metadata address before it completes.
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const refused = await submitEcho(client, {
      constraints,
      webhook_url: "http://169.254.169.254/latest/meta-data/",
    });
    expect(refused.status).toBe(422);
    const rx = await receiver();
    const { id, token } = await claimed(client, miner, constraints, { webhook_url: rx.url });
    await ddb().send(
      new UpdateCommand({
        TableName: stack.tableName,
        Key: { PK: `JOB#${id}`, SK: "JOB" },
        UpdateExpression: "SET webhookUrl = :u",
        ExpressionAttributeValues: { ":u": "http://169.254.169.254/latest/meta-data/" },
      }),
    );
    expect((await minerCall(miner, id, "result", { claim_token: token, output: {} })).status).toBe(200);
    const d = await eventually(async () => {
      const res = await api<{ items: DeliveryRes[] }>("GET", `/v1/webhooks/jobs/${id}/deliveries`, {
        key: client.key,
      });
      return res.body.items.find((i) => i.event_type === "job.completed.v1" && i.status === "failed");
    }, 15_000);
    expect(d.attempt_count).toBe(1);
    expect(d.response_status).toBeNull();
    expect(d.last_error).toMatch(/metadata/);
    expect(rx.ofType("job.completed.v1")).toEqual([]);
  });

  it("a job's webhook_url gets its job's events signed with the account's default secret, shown once", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const secret = await api<{ secret: string; revealed: boolean }>("POST", "/v1/webhooks/secret", {
      key: client.key,
    });
    expect(secret.status).toBe(200);
    expect(secret.body.secret).toMatch(/^whsec_/);
    expect((await api("POST", "/v1/webhooks/secret", { key: client.key })).status).toBe(409);
    const info = await api("GET", "/v1/webhooks/secret", { key: client.key });
    expect(info.body).toMatchObject({ revealed: true });
    expect(info.text).not.toContain("whsec_");

    const rx = await receiver();
    const { id, token } = await claimed(client, miner, constraints, { webhook_url: rx.url });
    await minerCall(miner, id, "start", { claim_token: token });
    // Progress in a burst: webhooks send at most one job.progress.v1 per job per 500 ms.
    const started = Date.now();
    for (let i = 1; i <= 6; i++) {
      await minerCall(miner, id, "progress", { claim_token: token, progress: i / 10 });
    }
    const span = Date.now() - started;
    await minerCall(miner, id, "result", { claim_token: token, output: { ok: 1 } });
    await eventually(async () => rx.ofType("job.completed.v1").length === 1, 10_000);
    await sleep(500);

    for (const r of rx.received) {
      const event = verifyWebhook(secret.body.secret, r.headers as never, r.body);
      expect(event.subject).toBe(id);
    }
    const types = rx.received.map((r) => r.type);
    for (const t of ["job.submitted.v1", "job.assigned.v1", "job.started.v1", "job.completed.v1"]) {
      expect(
        types.filter((x) => x === t),
        t,
      ).toHaveLength(1);
    }
    const progress = rx.ofType("job.progress.v1").length;
    expect(progress).toBeGreaterThanOrEqual(1);
    expect(progress).toBeLessThanOrEqual(Math.floor(span / 500) + 1);
    expect(progress).toBeLessThan(6);
    // The job's history still has every progress event.
    const history = await api<{ events: { type: string }[] }>("GET", `/v1/jobs/${id}/events`, {
      key: client.key,
    });
    expect(history.body.events.filter((e) => e.type === "job.progress.v1")).toHaveLength(6);

    const log = await api<{ items: DeliveryRes[] }>("GET", `/v1/webhooks/jobs/${id}/deliveries`, {
      key: client.key,
    });
    expect(log.body.items.length).toBe(rx.received.length);
    expect(log.body.items.every((d) => d.status === "succeeded")).toBe(true);

    // Rotating the default secret shows the new one once; the old one keeps signing through the overlap.
    const rotated = await api<{ secret: string; previous_secrets_valid_until: string[] }>(
      "POST",
      "/v1/webhooks/secret/rotate",
      { key: client.key, body: { overlap_seconds: 600 } },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(secret.body.secret);
    expect(rotated.body.previous_secrets_valid_until).toHaveLength(1);
  });

  it("an endpoint that keeps failing is disabled (with an event), and can be enabled again", async () => {
    const client = await fundedClient();
    const rx = await receiver(() => 503);
    const ep = await endpoint(client.key, { url: rx.url, event_types: ["job.submitted.v1"] });
    const { constraints } = isolated();
    // COORD_WEBHOOK_DISABLE_AFTER=2 in the test stack: two messages that fail every attempt (five each).
    await submitEcho(client, { constraints });
    await submitEcho(client, { constraints });
    const disabled = await eventually(async () => {
      const res = await api<EndpointRes>("GET", `/v1/webhooks/endpoints/${ep.id}`, { key: client.key });
      return res.body.status === "disabled" ? res.body : undefined;
    }, 25_000);
    expect(disabled.disabled_reason).toMatch(/failed every delivery attempt/);
    expect(rx.received).toHaveLength(10);
    const events = (await queryPk(`ACCOUNT#${client.id}`)).filter(
      (i) => i.entity === "event" && i.type === "webhook_endpoint.disabled.v1",
    );
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ endpoint_id: ep.id, url: rx.url });

    const log = await api<{ items: DeliveryRes[] }>("GET", `/v1/webhooks/endpoints/${ep.id}/deliveries`, {
      key: client.key,
    });
    expect(log.body.items.map((d) => [d.status, d.response_status, d.attempt_count])).toEqual([
      ["failed", 503, 5],
      ["failed", 503, 5],
    ]);
    // A disabled endpoint receives nothing and cannot be redelivered to.
    const redeliver = await api(
      "POST",
      `/v1/webhooks/endpoints/${ep.id}/deliveries/${log.body.items[0]?.id}/redeliver`,
      {
        key: client.key,
      },
    );
    expect(redeliver.status).toBe(409);
    await submitEcho(client, { constraints });
    await sleep(1500);
    expect(rx.received).toHaveLength(10);

    const enabled = await api<EndpointRes>("PATCH", `/v1/webhooks/endpoints/${ep.id}`, {
      key: client.key,
      body: { enabled: true },
    });
    expect(enabled.body).toMatchObject({ status: "enabled", consecutive_failures: 0, disabled_reason: null });
  });

  it("endpoints are the account's own: list, read, filter, delete; another account's is 404", async () => {
    const client = await fundedClient();
    const other = await fundedClient();
    const ep = await endpoint(client.key, { url: "http://127.0.0.1:9/a", description: "mine" });
    expect(ep.event_types).toEqual([]);
    const list = await api<{ items: { id: string }[] }>("GET", "/v1/webhooks/endpoints", { key: client.key });
    expect(list.body.items.map((e) => e.id)).toEqual([ep.id]);
    expect((await api("GET", `/v1/webhooks/endpoints/${ep.id}`, { key: other.key })).status).toBe(404);
    expect((await api("DELETE", `/v1/webhooks/endpoints/${ep.id}`, { key: other.key })).status).toBe(404);
    expect((await api("GET", `/v1/webhooks/endpoints/${ep.id}/deliveries`, { key: other.key })).status).toBe(
      404,
    );
    const bad = await api<{ errors: { path: string }[] }>("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "http://127.0.0.1:9/b", event_types: ["job.nope.v1"] },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0]?.path).toBe("body.event_types.0");
    const filtered = await api<EndpointRes>("PATCH", `/v1/webhooks/endpoints/${ep.id}`, {
      key: client.key,
      body: { event_types: ["job.completed.v1"] },
    });
    expect(filtered.body.event_types).toEqual(["job.completed.v1"]);

    // Idempotency-Key: the same request replays the first answer (its secret redacted), a different one is 422.
    const idem = { "idempotency-key": `ep-${Math.random()}` };
    const first = await api<EndpointRes>("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "http://127.0.0.1:9/c" },
      headers: idem,
    });
    const replay = await api<EndpointRes>("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "http://127.0.0.1:9/c" },
      headers: idem,
    });
    expect(replay.status).toBe(201);
    expect(first.body.secret).toMatch(/^whsec_/);
    expect(replay.body).toEqual({ ...first.body, secret: null, secret_redacted: true });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const mismatch = await api("POST", "/v1/webhooks/endpoints", {
      key: client.key,
      body: { url: "http://127.0.0.1:9/d" },
      headers: idem,
    });
    expect(mismatch.status).toBe(422);

    expect((await api("DELETE", `/v1/webhooks/endpoints/${ep.id}`, { key: client.key })).status).toBe(204);
    expect((await api("GET", `/v1/webhooks/endpoints/${ep.id}`, { key: client.key })).status).toBe(404);
    // Webhook management is for client keys.
    expect((await api("GET", "/v1/webhooks/endpoints", { key: stack.adminKey })).status).toBe(403);
    expect((await api("GET", "/v1/webhooks/endpoints")).status).toBe(401);
  });
});

import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import * as v from "valibot";
import { NotFoundError } from "../../../core/errors.ts";
import { parse } from "../../../core/validate.ts";
import { QUEUES } from "../../../events/queues.ts";
import { DLQ_ATTRIBUTES } from "../../queues/webhooks-tasks.ts";
import { queueUrl, sqs } from "../../sqs.ts";
import { adminOnly } from "../auth.ts";
import { readJson } from "../body.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/**
 * Dead-letter queues, for operators: see what died and why, and move it back. Peeking receives with a short
 * visibility and hands every message back at once (visibility 0), so a peek does not hide messages for long; a
 * redrive sends each message to its source queue and only then deletes it from the DLQ (at least once: consumers
 * are idempotent).
 */
const QUEUE_NAMES: readonly string[] = QUEUES.map((q) => q.name);

function known(name: string): string {
  if (!QUEUE_NAMES.includes(name)) throw new NotFoundError(`queue '${name}'`);
  return name;
}

export const dlqUrl = (name: string) => queueUrl(`${name}-dlq`);

const count = (max: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,4}$/, `limit must be an integer from 1 to ${max}`),
      v.transform(Number),
      v.minValue(1, `limit must be an integer from 1 to ${max}`),
      v.maxValue(max, `limit must be an integer from 1 to ${max}`),
    ),
  );

export const PeekQuery = v.object({ limit: count(100) });
export const RedriveInput = v.optional(
  v.object({
    /** Move at most this many (default 100). */
    max_messages: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
    /** Move only these messages (ids from the peek). */
    message_ids: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(100))), v.maxLength(100))),
  }),
);

function view(m: Message) {
  let body: unknown = m.Body;
  try {
    body = JSON.parse(m.Body ?? "");
  } catch {
    // not JSON: shown as text
  }
  const detail = (body as { detail?: Record<string, unknown> } | undefined)?.detail;
  const attr = (name: string) => m.MessageAttributes?.[name]?.StringValue ?? null;
  return {
    message_id: m.MessageId,
    sent_at: m.Attributes?.SentTimestamp ? new Date(Number(m.Attributes.SentTimestamp)).toISOString() : null,
    receive_count: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
    error: attr(DLQ_ATTRIBUTES.error),
    dead_lettered_at: attr(DLQ_ATTRIBUTES.at),
    event:
      detail && typeof detail === "object"
        ? { id: detail.id ?? null, type: detail.type ?? null, subject: detail.subject ?? null }
        : null,
    body,
  };
}

/** Receives up to `limit` distinct messages, holding each for `holdSeconds`. */
async function receive(url: string, limit: number, holdSeconds: number): Promise<Message[]> {
  const seen = new Map<string, Message>();
  for (let empty = 0; seen.size < limit && empty < 2; ) {
    const out = await sqs().send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, limit - seen.size),
        VisibilityTimeout: holdSeconds,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    const fresh = (out.Messages ?? []).filter((m) => m.MessageId && !seen.has(m.MessageId));
    if (fresh.length === 0) empty++;
    for (const m of fresh) seen.set(m.MessageId as string, m);
  }
  return [...seen.values()];
}

async function release(url: string, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    await sqs().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: chunk.map((m, idx) => ({
          Id: String(idx),
          ReceiptHandle: m.ReceiptHandle ?? "",
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}

/** A queue's depth: messages waiting, and those received and not yet deleted (also what /metrics reports). */
export async function depth(url: string) {
  const out = await sqs().send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    messages: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    in_flight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/** Moves messages from the DLQ back to the source queue: send first, delete after (never lost, maybe doubled). */
async function redrive(name: string, raw: unknown) {
  const body = parse(RedriveInput, raw, "body") ?? {};
  const max = body.max_messages ?? 100;
  const only = body.message_ids ? new Set(body.message_ids) : undefined;
  const from = await dlqUrl(name);
  const to = await queueUrl(name);
  let moved = 0;
  const skipped: Message[] = [];
  try {
    while (moved < max) {
      const batch = await receive(from, Math.min(10, max - moved), 30);
      const fresh = batch.filter((m) => !skipped.some((s) => s.MessageId === m.MessageId));
      if (fresh.length === 0) break;
      const chosen = only ? fresh.filter((m) => only.has(m.MessageId ?? "")) : fresh;
      skipped.push(...fresh.filter((m) => !chosen.includes(m)));
      if (chosen.length === 0) continue;
      const sent = await sqs().send(
        new SendMessageBatchCommand({
          QueueUrl: to,
          Entries: chosen.map((m, idx) => ({
            Id: String(idx),
            MessageBody: m.Body ?? "",
            // Our dead-letter annotations stay behind; anything else the message carried goes with it.
            MessageAttributes: Object.fromEntries(
              Object.entries(m.MessageAttributes ?? {}).filter(
                ([k]) => !Object.values(DLQ_ATTRIBUTES).includes(k),
              ),
            ),
          })),
        }),
      );
      const ok = new Set((sent.Successful ?? []).map((s) => s.Id));
      const done = chosen.filter((_, idx) => ok.has(String(idx)));
      skipped.push(...chosen.filter((_, idx) => !ok.has(String(idx))));
      if (done.length > 0) {
        await sqs().send(
          new DeleteMessageBatchCommand({
            QueueUrl: from,
            Entries: done.map((m, idx) => ({ Id: String(idx), ReceiptHandle: m.ReceiptHandle ?? "" })),
          }),
        );
      }
      moved += done.length;
      if (only && moved >= only.size) break;
    }
  } finally {
    if (skipped.length > 0) await release(from, skipped);
  }
  return { queue: name, moved, remaining: (await depth(from)).messages };
}

const limited = rateLimit("admin");

export const dlq = documentedRoutes("/v1/admin/dlq", "admin")
  .get("/", { summary: "Every queue's DLQ depth", auth: "admin" }, adminOnly, limited, async (c) =>
    c.json({
      items: await Promise.all(
        QUEUE_NAMES.map(async (name) => ({ queue: name, dlq: await depth(await dlqUrl(name)) })),
      ),
    }),
  )
  .get(
    "/:queue",
    { summary: "Peek at a DLQ's messages (handed back at once)", auth: "admin", query: PeekQuery },
    adminOnly,
    limited,
    async (c) => {
      const name = known(c.req.param("queue"));
      const q = parse(PeekQuery, c.req.query(), "query");
      const url = await dlqUrl(name);
      const messages = await receive(url, q.limit ?? 10, 10);
      await release(url, messages);
      return c.json({ queue: name, depth: await depth(url), messages: messages.map(view) });
    },
  )
  .post(
    "/:queue/redrive",
    {
      summary: "Move a DLQ's messages (all, or message_ids) back to their queue",
      auth: "admin",
      body: RedriveInput,
      responses: { "200": "{queue, moved, remaining}" },
    },
    adminOnly,
    limited,
    async (c) => c.json(await redrive(known(c.req.param("queue")), await readJson(c))),
  ).app;

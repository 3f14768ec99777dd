import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import * as v from "valibot";
import type { Principal } from "../../core/context.ts";
import { ValidationError } from "../../core/errors.ts";
import type { Job } from "../../core/jobs/model.ts";
import { getOwnJob, jobEvents, waitForJob } from "../../core/jobs/read.ts";
import { isTerminal } from "../../core/jobs/statuses.ts";
import { parse } from "../../core/validate.ts";
import type { AppEnv } from "./env.ts";

/**
 * Live job updates on `GET /v1/jobs/{id}/events`, read from the job's event history (its outbox items, ordered by
 * `seq` = the job's version), so every transition is seen once and in order whatever the bus does:
 * - `Accept: text/event-stream`: Server-Sent Events, `id:` = seq, `event:` = the event type; a reconnect with
 *   `Last-Event-ID` (or `?after=`) resumes after that seq. The stream ends after the terminal event; a reconnect to
 *   a finished job with nothing new gets 204, which tells EventSource to stop.
 * - otherwise JSON, long-polled with `?after=<seq>&wait=<s>`: the events after `seq`, as soon as there is one, or
 *   none when `wait` passes. Without `wait`, the history at once.
 * The stream is bounded (COORD_SSE_MAX_SECONDS; 25 s on Lambda, where the HTTP API buffers responses, so a client
 * reconnects with Last-Event-ID and the stream degrades to chunked long-polling; see docs/events.md).
 */

const Seq = v.pipe(
  v.string(),
  v.regex(/^\d{1,10}$/, "must be a non-negative integer (an event seq)"),
  v.transform(Number),
);
const EventsQuery = v.object({
  after: v.optional(Seq),
  wait: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+(\.\d+)?$/, "wait is a number of seconds"),
      v.transform(Number),
      v.maxValue(60, "wait is at most 60 seconds"),
    ),
  ),
});

/** How long one SSE response may last. */
export function sseMaxSeconds(): number {
  const raw = process.env.COORD_SSE_MAX_SECONDS;
  if (raw) return Math.max(1, Number(raw) || 0);
  return process.env.AWS_LAMBDA_FUNCTION_NAME ? 25 : 300;
}

const HEARTBEAT_SECONDS = 15;

export function wantsEventStream(c: Context): boolean {
  return (c.req.header("accept") ?? "").toLowerCase().includes("text/event-stream");
}

function lastEventId(c: Context): number | undefined {
  const raw = c.req.header("last-event-id");
  if (raw === undefined || raw.trim() === "") return undefined;
  if (!/^\d{1,10}$/.test(raw.trim())) {
    throw new ValidationError([{ path: "header.last-event-id", message: "must be an event seq" }]);
  }
  return Number(raw.trim());
}

/**
 * Waits until the job has events after `after`, the job is terminal, or `seconds` pass; returns the events (maybe
 * none) and the job as last read. Only the job item is polled while nothing changes (a cheap GetItem with
 * back-off, see waitForJob); the history is queried when the version moves.
 */
export async function eventsAfter(principal: Principal, id: string, after: number, seconds: number) {
  let job: Job = await getOwnJob(principal, id);
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (job.version > after) {
      const events = await jobEvents(principal, id, after);
      if (events.length > 0) return { events, job };
    }
    const remaining = (deadline - Date.now()) / 1000;
    if (isTerminal(job.status) || remaining <= 0) return { events: [], job };
    const next = await waitForJob(principal, id, remaining, { sinceVersion: job.version });
    if (next.version === job.version && !isTerminal(next.status)) return { events: [], job: next };
    job = next;
  }
}

/** The `/v1/jobs/:id/events` handler: SSE or (long-polled) JSON. */
export async function jobEventsResponse(c: Context<AppEnv>) {
  const principal = c.var.principal;
  const id = c.req.param("id") as string;
  const q = parse(EventsQuery, c.req.query(), "query");
  if (!wantsEventStream(c)) {
    const after = q.after ?? 0;
    if (q.wait === undefined) return c.json({ events: await jobEvents(principal, id, after) });
    const { events, job } = await eventsAfter(principal, id, after, q.wait);
    return c.json({
      events,
      status: job.status,
      last_seq: events.at(-1)?.seq ?? Math.max(after, 0),
    });
  }

  let after = lastEventId(c) ?? q.after ?? 0;
  // Checked before the stream starts, so that an unknown job is a plain 404.
  const first = await getOwnJob(principal, id);
  if (isTerminal(first.status) && first.version <= after) return c.body(null, 204);
  const endAt = Date.now() + sseMaxSeconds() * 1000;
  c.header("X-Accel-Buffering", "no");
  return streamSSE(c, async (stream) => {
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    await stream.write(`retry: 1000\n\n`);
    while (!closed) {
      const slice = Math.min(HEARTBEAT_SECONDS, (endAt - Date.now()) / 1000);
      if (slice <= 0) break;
      const { events, job } = await eventsAfter(principal, id, after, slice);
      for (const e of events) {
        await stream.writeSSE({ id: String(e.seq), event: e.type, data: JSON.stringify(e) });
        after = e.seq;
      }
      // Done once the terminal state is read and nothing after `after` is left (a gap in seqs cannot hold it open).
      if (isTerminal(job.status) && (job.version <= after || events.length === 0)) break;
      if (events.length === 0) await stream.write(": keep-alive\n\n");
    }
  });
}

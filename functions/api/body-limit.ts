import type { Context, MiddlewareHandler } from "hono";
import { parseJsonBody } from "./body.ts";
import type { AppEnv } from "./env.ts";
import { problem } from "./problem.ts";

/** How much of an oversized body we still read (and throw away) so that the client gets to read our 413. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/** JSON, or a `+json` structured syntax suffix (RFC 6839), with any parameters. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

/**
 * The request body gate, in front of every route:
 * - a body with a Content-Type other than JSON is 415 (no Content-Type is taken as JSON, for hand-written clients);
 * - a body over `maxBytes` is 413. Before answering, the rest of the body is read and discarded (up to 64 MiB or
 *   10 s): a server that answers and closes while the client is still writing makes most clients (Node's `fetch`
 *   among them) fail with EPIPE instead of showing the 413.
 * A body within the limit is read once and parsed here (body.ts: UTF-8, JSON, an object), so every route refuses
 * the same malformed bodies whether or not it reads one; routes take `c.var.body`.
 */
export function bodyGate(maxBytes: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return next();
    const type = c.req.header("content-type");
    const declared = Number(c.req.header("content-length") ?? Number.NaN);
    if (type !== undefined && type.trim() !== "" && !JSON_TYPE.test(type) && declared !== 0) {
      await drain(body.getReader(), 0);
      return problem(
        c,
        415,
        "unsupported_media_type",
        `request bodies are JSON; Content-Type ${type} is not`,
        {
          errors: [{ path: "headers.content-type", message: "must be application/json" }],
        },
      );
    }
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (declared > maxBytes) return tooLarge(c, reader, 0, maxBytes);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) return tooLarge(c, reader, size, maxBytes);
      chunks.push(value);
    }
    const bytes = Buffer.concat(chunks, size);
    c.set("rawBody", bytes);
    c.set("body", parseJsonBody(bytes));
    return next();
  };
}

async function tooLarge(
  c: Context,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  read: number,
  maxBytes: number,
) {
  const drained = await drain(reader, read);
  // Past the drain bound the rest was never read, so the connection cannot be reused.
  if (!drained) c.header("Connection", "close");
  return problem(
    c,
    413,
    "payload_too_large",
    `request body exceeds ${maxBytes} bytes: put large data in an artifact (POST /v1/uploads) and reference it as {"artifact_id": ...}`,
  );
}

/** Reads and discards the rest of a body; false if it gave up (too much, too slow) before the end. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, alreadyRead: number): Promise<boolean> {
  const deadline = Date.now() + DRAIN_MAX_MS;
  let read = alreadyRead;
  try {
    for (;;) {
      if (read > DRAIN_MAX_BYTES || Date.now() > deadline) {
        await reader.cancel().catch(() => {});
        return false;
      }
      const { done, value } = await reader.read();
      if (done) return true;
      read += value.length;
    }
  } catch {
    return false;
  }
}

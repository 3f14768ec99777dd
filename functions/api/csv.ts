import type { Context } from "hono";
import { log } from "../log.ts";
import type { AppEnv } from "./env.ts";

/**
 * A CSV download streamed as its chunks come (core produces them a page of entries at a time), pulled at the reader's
 * pace. A failure after the first byte cannot change the status any more: the stream errors, so the client sees a
 * broken transfer rather than a file that looks complete. (On Lambda the HTTP API buffers the whole response, 6 MB at
 * most: narrow a large export with `from`/`to`.)
 */
export function csvAttachment(c: Context<AppEnv>, filename: string, chunks: AsyncIterable<string>): Response {
  const iterator = chunks[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        // A pull must enqueue or close: an empty chunk (a page with nothing in it) is skipped.
        for (;;) {
          const next = await iterator.next();
          if (next.done) return controller.close();
          if (next.value) return controller.enqueue(encoder.encode(next.value));
        }
      } catch (err) {
        log.error("csv export failed mid-stream", {
          request_id: c.var.requestId,
          path: c.req.path,
          err: err instanceof Error ? err.stack : String(err),
        });
        controller.error(err);
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  return c.body(body, 200, {
    "Content-Type": "text/csv; charset=utf-8",
    "Content-Disposition": `attachment; filename="${filename}"`,
  });
}

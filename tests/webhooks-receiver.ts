import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a test receiver got. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** The parsed body's `type` (the event type). */
  type: string;
  /** `webhook-id`. */
  id: string;
}

/**
 * A webhook receiver for tests: a local HTTP server on 127.0.0.1 (reachable because the test stack runs with
 * COORD_WEBHOOK_ALLOW_PRIVATE=1) that records every request and answers what `respond` says (200 by default).
 */
export async function startReceiver(respond: (r: Received, n: number) => number = () => 200) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let type = "";
      try {
        type = String((JSON.parse(body) as { type?: string }).type ?? "");
      } catch {
        // not JSON
      }
      const r: Received = {
        headers: req.headers,
        body,
        at: Date.now(),
        type,
        id: String(req.headers["webhook-id"]),
      };
      received.push(r);
      res.writeHead(respond(r, received.length), { "content-type": "text/plain" });
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    ofType: (type: string) => received.filter((r) => r.type === type),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { withWorkClass } from "../core/db/work-class.ts";
import { LocalConnections, setConnections } from "../core/doorbell/connections.ts";
import { MAX_MINER_FRAME_BYTES } from "../core/doorbell/protocol.ts";
import { closeSession, newConnectionId, onMinerFrame, openSession } from "../core/doorbell/session.ts";
import { CoordError } from "../core/errors.ts";
import { authorize, MINER_WORK } from "../functions/api/auth.ts";
import { problemBody, statusOf } from "../functions/api/problem.ts";
import { log } from "../functions/log.ts";

export const CONNECT_PATH = "/v1/miners/connect";

/** WebSocket close codes of the doorbell (4000-4999 are the application's). */
export const CLOSE = { keyRefused: 4401, minerGone: 4404 } as const;

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Answers a refused upgrade over the raw socket as problem+json, as a route would, then closes it. */
function refuse(socket: Duplex, status: number, code: string, detail: string, instance: string): void {
  const body = JSON.stringify(problemBody(status, code, detail, { instance }));
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The doorbell on the offline stack's HTTP server: `GET /v1/miners/connect` upgrades to a WebSocket after the same
 * checks as a miner's HTTP routes (a miner key with `miners:work`, the caller's own miner), refusing with the same
 * problem+json otherwise. Frames go to the same session functions the AWS WebSocket API's Lambda calls
 * (core/doorbell/session.ts); the key is checked again on every frame (from the key cache), so a revoked key's socket
 * is closed within the cache's bound.
 */
export function attachDoorbell(server: Server): { registry: LocalConnections; close(): void } {
  const registry = new LocalConnections();
  setConnections(registry);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MINER_FRAME_BYTES });
  const sockets = new Set<WebSocket>();

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    if (path !== CONNECT_PATH) return refuse(socket, 404, "not_found", `no WebSocket at ${path}`, path);
    const auth = () => authorize(header(req, "authorization"), header(req, "x-api-key"), MINER_WORK);
    const id = newConnectionId();
    void (async () => {
      const principal = await auth();
      const connection = await openSession(principal, header(req, "x-miner-id"), id);
      wss.handleUpgrade(req, socket, head, (ws) => {
        sockets.add(ws);
        registry.attach(connection, {
          send: (text) => ws.send(text),
          get open() {
            return ws.readyState === ws.OPEN;
          },
        });
        ws.on("message", (data) => {
          void (async () => {
            try {
              // Heartbeats are upkeep: a fleet of them must not hold submits back (core/db/work-class.ts).
              const reply = await withWorkClass("upkeep", async () =>
                onMinerFrame(await auth(), connection, data.toString()),
              );
              if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(reply));
              if (reply.type === "error" && reply.code === "not_found")
                ws.close(CLOSE.minerGone, "miner not found");
            } catch (err) {
              if (err instanceof CoordError && (err.code === "unauthorized" || err.code === "forbidden")) {
                ws.send(JSON.stringify({ type: "error", code: err.code, detail: err.message }));
                ws.close(CLOSE.keyRefused, err.code);
              } else log.error("doorbell frame failed", { err: String(err), connection_id: id });
            }
          })();
        });
        ws.on("close", () => {
          sockets.delete(ws);
          void closeSession(id);
        });
        ws.on("error", () => ws.terminate());
      });
    })().catch((err) => {
      if (err instanceof CoordError) refuse(socket, statusOf(err.code), err.code, err.message, path);
      else {
        log.error("doorbell upgrade failed", { err: String(err) });
        refuse(socket, 500, "internal", "the upgrade failed", path);
      }
    });
  });

  return {
    registry,
    close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      setConnections(undefined);
    },
  };
}

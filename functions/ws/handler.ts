import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { changedSince, keyCacheMs } from "../../core/accounts/key-cache.ts";
import type { Principal } from "../../core/context.ts";
import { setConnections } from "../../core/doorbell/connections.ts";
import { closeSession, onMinerFrame, openSession } from "../../core/doorbell/session.ts";
import { CoordError } from "../../core/errors.ts";
import { authorize, MINER_WORK } from "../api/auth.ts";
import { problemBody, statusOf } from "../api/problem.ts";
import { log } from "../log.ts";
import { AwsConnections } from "./aws-connections.ts";

/** `$connect` carries the upgrade request's headers (not in the aws-lambda type), with the client's spelling. */
type WsEvent = APIGatewayProxyWebsocketEventV2 & { headers?: Record<string, string | undefined> };

const connections = new AwsConnections(process.env.COORD_DOORBELL_ENDPOINT);
setConnections(connections);

const OK = { statusCode: 200 };

function header(event: WsEvent, name: string): string | undefined {
  const found = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === name);
  return found?.[1];
}

/** `$connect`: the same checks as the offline upgrade; a refusal is the route's answer, and no socket opens. */
async function connect(event: WsEvent): Promise<APIGatewayProxyResultV2> {
  try {
    const principal = await authorize(header(event, "authorization"), header(event, "x-api-key"), MINER_WORK);
    await openSession(principal, header(event, "x-miner-id"), event.requestContext.connectionId);
    return OK;
  } catch (err) {
    if (!(err instanceof CoordError)) throw err;
    const status = statusOf(err.code);
    const instance = `/${event.requestContext.stage}`;
    return {
      statusCode: status,
      headers: { "content-type": "application/problem+json" },
      body: JSON.stringify(problemBody(status, err.code, err.message, { instance })),
    };
  }
}

/**
 * `$default`: one frame. The principal is rebuilt from the connection item (the key was checked at `$connect`;
 * frames carry none), and the key's revocation is checked again from the feed. A refused key or a miner gone gets an
 * error frame, then the socket is closed, as the offline server does.
 */
async function frame(event: WsEvent): Promise<APIGatewayProxyResultV2> {
  const id = event.requestContext.connectionId;
  const connection = await connections.get(id);
  if (!connection) {
    await connections.send(id, {
      type: "error",
      code: "not_found",
      detail: "connection not found: reconnect",
    });
    await connections.close(id);
    return OK;
  }
  // Revoked or rotated since `$connect` verified it (from a verdict up to one cache period old), by the key feed.
  // Not seen this way: a delegated key's ancestor revoked, or the key's own expiry; such a socket goes on until it
  // reconnects (at most 2 hours), while every HTTP route refuses the key at once.
  if (await changedSince(connection.keyId, connection.connectedAt - keyCacheMs())) {
    await connections.send(id, { type: "error", code: "unauthorized", detail: "API key revoked or rotated" });
    await connections.close(id);
    return OK;
  }
  const principal: Principal = {
    accountId: connection.accountId,
    kind: "miner",
    keyId: connection.keyId,
    scopes: [MINER_WORK.scope],
  };
  const text = event.isBase64Encoded
    ? Buffer.from(event.body ?? "", "base64").toString("utf8")
    : (event.body ?? "");
  const reply = await onMinerFrame(principal, connection, text);
  if (!(await connections.send(id, reply))) await connections.remove(id);
  else if (reply.type === "error" && reply.code === "not_found") await connections.close(id);
  return OK;
}

/** The WebSocket API's one function: `$connect`, `$disconnect` and `$default` (every frame) come here. */
export async function handler(event: WsEvent): Promise<APIGatewayProxyResultV2> {
  const { routeKey, connectionId } = event.requestContext;
  try {
    if (routeKey === "$connect") return await connect(event);
    if (routeKey === "$disconnect") {
      await closeSession(connectionId);
      return OK;
    }
    return await frame(event);
  } catch (err) {
    log.error("doorbell route failed", { err: String(err), route: routeKey, connection_id: connectionId });
    return { statusCode: 500 };
  }
}

import { randomBytes } from "node:crypto";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { CoordError, ForbiddenError, ValidationError } from "../errors.ts";
import { heartbeat } from "../jobs/lifecycle.ts";
import { readSummary } from "../jobs/queue-summary.ts";
import { capabilities, getMiner, type Miner } from "../miners/miners.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { type Connection, connections } from "./connections.ts";
import { type CoordinatorMessage, MAX_MINER_FRAME_BYTES, MinerMessage } from "./protocol.ts";

/** How often a miner on the doorbell heartbeats while it holds no job (its socket is its liveness meanwhile). */
export const idleHeartbeatSeconds = () => setting("COORD_IDLE_HEARTBEAT_SECONDS");

/**
 * Where miners open the doorbell: `COORD_DOORBELL_URL` (on AWS, the WebSocket API's wss:// stage URL, set by
 * stacks/), else this server's own `/v1/miners/connect` with the ws scheme (the offline stack serves both).
 */
export function doorbellUrl(requestUrl: string): string {
  if (process.env.COORD_DOORBELL_URL) return process.env.COORD_DOORBELL_URL;
  const u = new URL(requestUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.search = "";
  return u.toString();
}

/** The answer to a plain request for the caller's miner's doorbell (404 for another's): upgrade, at this address. */
export async function upgradeRequired(
  principal: Principal,
  minerId: string | undefined,
  requestUrl: string,
): Promise<never> {
  if (!minerId)
    throw new ValidationError([
      { path: "header.x-miner-id", message: "send X-Miner-Id (from registration)" },
    ]);
  await getMiner(principal, minerId);
  const url = doorbellUrl(requestUrl);
  throw new CoordError("upgrade_required", `open a WebSocket at ${url}`, { url });
}

export function newConnectionId(): string {
  return `conn_${randomBytes(12).toString("base64url")}`;
}

/** Whether the queue summary (cached per instance: no DynamoDB request) shows work for a service the miner runs. */
async function workFor(miner: Pick<Miner, "services">): Promise<boolean> {
  const summary = await readSummary();
  return miner.services.some((s) => summary.has(s));
}

/**
 * Opens a miner's doorbell session, after the key was checked (a miner key with `miners:work`): the miner must be
 * the caller's and not banned. Registers the connection. Throws the domain's errors, which the upgrade (or the AWS
 * `$connect` route) answers as problem+json before any socket exists.
 */
export async function openSession(
  principal: Principal,
  minerId: string | undefined,
  connectionId: string,
): Promise<Connection> {
  if (!minerId)
    throw new ValidationError([
      { path: "header.x-miner-id", message: "send X-Miner-Id (from registration)" },
    ]);
  const miner = await getMiner(principal, minerId, { consistent: true });
  if (miner.banned) throw new ForbiddenError("this miner is banned");
  const connection: Connection = {
    id: connectionId,
    minerId: miner.id,
    accountId: miner.accountId,
    keyId: principal.keyId,
    services: miner.services,
    caps: capabilities(miner),
    connectedAt: Date.now(),
  };
  await connections()?.add(connection);
  return connection;
}

/** The answer to a miner's hello: its intervals, and whether work may already be waiting. */
async function welcome(principal: Principal, connection: Connection): Promise<CoordinatorMessage> {
  const miner = await getMiner(principal, connection.minerId);
  return {
    type: "welcome",
    miner_id: miner.id,
    connection_id: connection.id,
    heartbeat_interval_seconds: idleHeartbeatSeconds(),
    busy_heartbeat_interval_seconds: config.heartbeatSeconds,
    lease_seconds: config.leaseSeconds,
    work: miner.status === "online" && miner.active < miner.concurrency && (await workFor(miner)),
  };
}

/** One text frame from the miner; the answer to send back (errors are answered, never thrown). */
export async function onMinerFrame(
  principal: Principal,
  connection: Connection,
  text: string,
): Promise<CoordinatorMessage> {
  try {
    if (Buffer.byteLength(text) > MAX_MINER_FRAME_BYTES)
      throw new CoordError("payload_too_large", `a frame is at most ${MAX_MINER_FRAME_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new CoordError("malformed_json", "a frame is one JSON object");
    }
    const message = parse(MinerMessage, raw, "message");
    if (message.type === "hello") return await welcome(principal, connection);
    const { type: _type, ...body } = message;
    // Over the socket the miner's silence is judged on the idle interval: the socket shows it is there meanwhile.
    const beat = await heartbeat(principal, connection.minerId, body, {
      intervalSeconds: idleHeartbeatSeconds(),
    });
    const busy = beat.held.length > 0;
    return {
      type: "heartbeat",
      status: beat.status,
      held: beat.held,
      lease_expires_at: beat.lease_expires_at,
      stop: beat.stop,
      heartbeat_interval_seconds: busy ? config.heartbeatSeconds : idleHeartbeatSeconds(),
      work: beat.status === "online" && (await workFor(connection)),
    };
  } catch (err) {
    if (err instanceof ValidationError)
      return { type: "error", code: err.code, detail: err.message, errors: err.issues };
    if (err instanceof CoordError) return { type: "error", code: err.code, detail: err.message };
    throw err;
  }
}

/** The socket closed (either side): forget the connection. The miner falls back to HTTP until it reconnects. */
export async function closeSession(connectionId: string): Promise<void> {
  await connections()?.remove(connectionId);
}

import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { config } from "../../core/config.ts";
import type { Connection, Connections } from "../../core/doorbell/connections.ts";
import type { CoordinatorMessage } from "../../core/doorbell/protocol.ts";
import * as store from "../../core/doorbell/store.ts";
import { TtlCache } from "../../core/ttl-cache.ts";

/** API Gateway's answer for a connection that no longer exists. */
function isGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "GoneException" || e.$metadata?.httpStatusCode === 410;
}

/**
 * The doorbell's connections on AWS: the connection items of the table (core/doorbell/store.ts) and API Gateway's
 * management API, which reaches a socket from any Lambda instance. `endpoint` is the WebSocket stage's https callback
 * URL (`COORD_DOORBELL_ENDPOINT`); the client is made at the first send, so a bundle loads without it.
 */
export class AwsConnections implements Connections {
  private client?: ApiGatewayManagementApiClient;
  /**
   * When this instance last rang each connection. Per instance only, never written to the table: a ring is a hint
   * (the claim's conditions decide), so another instance ringing the same miner first costs one wasted poll, whereas
   * a shared record would cost a write on every ring of the hot path. Entries lapse with the connection.
   */
  private readonly rungAt = new TtlCache<number>(() => store.CONNECTION_TTL_MS);

  constructor(private readonly endpoint: string | undefined) {}

  private api(): ApiGatewayManagementApiClient {
    if (!this.endpoint)
      throw new Error("COORD_DOORBELL_ENDPOINT is not set: the doorbell cannot reach sockets");
    this.client ??= new ApiGatewayManagementApiClient({ endpoint: this.endpoint, region: config.region });
    return this.client;
  }

  add(conn: Connection): Promise<void> {
    return store.add(conn);
  }

  remove(connectionId: string): Promise<void> {
    return store.remove(connectionId);
  }

  /** The store's candidates, those this instance rang least recently first (then the oldest connections). */
  async serving(
    service: string,
    limit: number,
    accept?: (conn: Connection) => boolean,
  ): Promise<Connection[]> {
    const found = await store.serving(service, limit, accept);
    const rung = (c: Connection) => this.rungAt.get(c.id) ?? 0;
    return found.sort((a, b) => rung(a) - rung(b) || a.connectedAt - b.connectedAt);
  }

  ofMiner(minerId: string): Promise<Connection[]> {
    return store.ofMiner(minerId);
  }

  /** The connection by id (the `$default` route's lookup), if it is still recorded and live. */
  get(connectionId: string): Promise<Connection | undefined> {
    return store.get(connectionId);
  }

  async send(connectionId: string, message: CoordinatorMessage): Promise<boolean> {
    try {
      await this.api().send(
        new PostToConnectionCommand({ ConnectionId: connectionId, Data: JSON.stringify(message) }),
      );
      return true;
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
  }

  rung(connectionId: string): void {
    this.rungAt.set(connectionId, Date.now());
  }

  /**
   * Closes a socket from the server side (revoked key, miner gone) and forgets it. API Gateway sends no application
   * close code (the offline server's 4401/4404): the error frame sent before says why. Its `$disconnect` follows, and
   * removes nothing more.
   */
  async close(connectionId: string): Promise<void> {
    try {
      await this.api().send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (err) {
      if (!isGone(err)) throw err;
    }
    await store.remove(connectionId);
  }
}

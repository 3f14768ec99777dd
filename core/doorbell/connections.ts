import type { Capabilities } from "../matching/constraints.ts";
import type { CoordinatorMessage } from "./protocol.ts";

/** A miner's open doorbell socket. */
export interface Connection {
  id: string;
  minerId: string;
  accountId: string;
  /** The key that opened it (a revoked key's sockets are refused at their next frame). */
  keyId: string;
  /** The services the miner registered (rings are per service). */
  services: string[];
  /** What matching looks at, as registered when the socket opened (a ring re-reads the miner before it rings). */
  caps: Capabilities;
  connectedAt: number;
}

/**
 * Where the doorbell's connections live and how a message reaches one. Offline: this process's sockets
 * (`LocalConnections`); on AWS: connection items in the table and API Gateway's management API
 * (functions/ws/aws-connections.ts). The session and ring logic (session.ts, ring.ts) is the same for both.
 */
export interface Connections {
  add(conn: Connection): Promise<void>;
  remove(connectionId: string): Promise<void>;
  /**
   * Connections of miners serving `service` that `accept` takes (a job's hard constraints, on `caps`), least
   * recently rung first, at most `limit`.
   */
  serving(service: string, limit: number, accept?: (conn: Connection) => boolean): Promise<Connection[]>;
  ofMiner(minerId: string): Promise<Connection[]>;
  /** Sends one message; false when the connection is gone (the caller forgets it). */
  send(connectionId: string, message: CoordinatorMessage): Promise<boolean>;
  /** Records a ring, so that the next job rings someone else first. */
  rung(connectionId: string): void;
}

/** What a local socket needs to offer the registry. */
export interface LocalSocket {
  send(text: string): void;
  readonly open: boolean;
}

/** The connections of this process's sockets (the offline stack's one server). */
export class LocalConnections implements Connections {
  private readonly byId = new Map<string, { conn: Connection; socket: LocalSocket; rungAt: number }>();
  private readonly byService = new Map<string, Set<string>>();

  attach(conn: Connection, socket: LocalSocket): void {
    this.byId.set(conn.id, { conn, socket, rungAt: 0 });
    for (const s of conn.services) {
      const set = this.byService.get(s) ?? new Set<string>();
      set.add(conn.id);
      this.byService.set(s, set);
    }
  }

  async add(_conn: Connection): Promise<void> {
    // `attach` registered the socket itself (it is in this process); nothing else to record.
  }

  async remove(connectionId: string): Promise<void> {
    const entry = this.byId.get(connectionId);
    if (!entry) return;
    this.byId.delete(connectionId);
    for (const s of entry.conn.services) this.byService.get(s)?.delete(connectionId);
  }

  async serving(
    service: string,
    limit: number,
    accept?: (conn: Connection) => boolean,
  ): Promise<Connection[]> {
    const ids = [...(this.byService.get(service) ?? [])];
    return ids
      .map((id) => this.byId.get(id))
      .filter((e): e is NonNullable<typeof e> => e?.socket.open === true && (!accept || accept(e.conn)))
      .sort((a, b) => a.rungAt - b.rungAt || a.conn.connectedAt - b.conn.connectedAt)
      .slice(0, limit)
      .map((e) => e.conn);
  }

  async ofMiner(minerId: string): Promise<Connection[]> {
    return [...this.byId.values()].filter((e) => e.conn.minerId === minerId).map((e) => e.conn);
  }

  async send(connectionId: string, message: CoordinatorMessage): Promise<boolean> {
    const entry = this.byId.get(connectionId);
    if (!entry?.socket.open) return false;
    entry.socket.send(JSON.stringify(message));
    return true;
  }

  rung(connectionId: string): void {
    const entry = this.byId.get(connectionId);
    if (entry) entry.rungAt = Date.now();
  }

  get size(): number {
    return this.byId.size;
  }
}

let current: Connections | undefined;

/** The process's doorbell registry (the local stack or the AWS adapters set it); none: nothing rings. */
export function setConnections(c: Connections | undefined): void {
  current = c;
}

export function connections(): Connections | undefined {
  return current;
}

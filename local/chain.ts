import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setting } from "../core/settings.ts";

/**
 * The local EVM chain settlement anchors on offline (docs/settlement.md): ganache's provider, in-process, behind a
 * plain JSON-RPC HTTP server on a loopback port like any node, mining a block every COORD_LOCAL_CHAIN_BLOCK_SECONDS (so confirmations accrue as on
 * a real chain; 0 mines one block per transaction), with one funded account for anchoring. In memory, or persisted
 * under `<dataDir>/chain/` (the chain and its anchoring key together). Its `evm_snapshot` / `evm_revert` /
 * `evm_mine` methods are what the tests reorg it with.
 */
export interface LocalChain {
  rpcUrl: string;
  chainId: number;
  /** The funded anchoring account's key (`0x` + 64 hex). */
  anchorPrivateKey: `0x${string}`;
  stop(): Promise<void>;
}

export interface LocalChainOptions {
  /** Persist the chain and its anchoring key here (`<dataDir>/chain/`); unset: in memory. */
  dataDir?: string;
  chainId?: number;
  blockSeconds?: number;
}

/** Ganache's own default chain id, which wallets know as "localhost". */
export const LOCAL_CHAIN_ID = 1337;
/** What the anchoring account starts with: a million ether, a few million anchors' gas. */
const FUNDING_WEI = `0x${(10n ** 24n).toString(16)}`;

type Ganache = typeof import("ganache").default;

/**
 * Ganache's optional native server (uWS) has no build for this Node; on load it says so on the console and falls back
 * to a pure-Node one. We use neither (its fallback keeps a listener per connection): that notice is kept off the
 * console.
 */
async function importGanache(): Promise<Ganache> {
  const methods = ["log", "warn", "error"] as const;
  const saved = methods.map((m) => console[m]);
  for (const [i, m] of methods.entries()) {
    const original = saved[i] as (...args: unknown[]) => void;
    console[m] = (...args: unknown[]) => {
      if (typeof args[0] === "string" && /µWS|Falling back to a NodeJS implementation/.test(args[0])) return;
      original(...args);
    };
  }
  try {
    return (await import("ganache")).default;
  } finally {
    for (const [i, m] of methods.entries()) console[m] = saved[i] as (typeof console)[typeof m];
  }
}

function anchorKey(dir: string | undefined): `0x${string}` {
  const fresh = () => `0x${randomBytes(32).toString("hex")}` as const;
  if (!dir) return fresh();
  const file = join(dir, "anchor-key");
  if (!existsSync(file)) writeFileSync(file, `${fresh()}\n`, { mode: 0o600 });
  return readFileSync(file, "utf8").trim() as `0x${string}`;
}

export async function startLocalChain(opts: LocalChainOptions = {}): Promise<LocalChain> {
  const dir = opts.dataDir ? join(opts.dataDir, "chain") : undefined;
  if (dir) mkdirSync(dir, { recursive: true });
  const anchorPrivateKey = anchorKey(dir);
  const chainId = opts.chainId ?? LOCAL_CHAIN_ID;
  const ganache = await importGanache();
  const provider = ganache.provider({
    logging: { quiet: true },
    chain: { chainId, networkId: chainId },
    miner: { blockTime: opts.blockSeconds ?? setting("COORD_LOCAL_CHAIN_BLOCK_SECONDS") },
    wallet: { accounts: [{ secretKey: anchorPrivateKey, balance: FUNDING_WEI }] },
    ...(dir ? { database: { dbPath: join(dir, "db") } } : {}),
  });
  const server = createServer((req, res) => void serveRpc(provider, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    rpcUrl: `http://127.0.0.1:${port}`,
    chainId,
    anchorPrivateKey,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await provider.disconnect();
    },
  };
}

type Provider = ReturnType<Ganache["provider"]>;
interface RpcCall {
  jsonrpc?: string;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

/** One JSON-RPC 2.0 request (or batch) over HTTP POST, answered by the provider. */
async function serveRpc(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const answer = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  let payload: RpcCall | RpcCall[];
  try {
    payload = JSON.parse(Buffer.concat(chunks).toString("utf8")) as RpcCall | RpcCall[];
  } catch {
    return answer(200, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
  }
  const one = async (call: RpcCall) => {
    try {
      const result = await provider.request({
        method: String(call.method),
        params: (Array.isArray(call.params) ? call.params : []) as never,
      } as never);
      return { jsonrpc: "2.0", id: call.id ?? null, result };
    } catch (err) {
      const e = err as { code?: number; message?: string; data?: unknown };
      return {
        jsonrpc: "2.0",
        id: call.id ?? null,
        error: { code: e.code ?? -32603, message: e.message ?? String(err), data: e.data },
      };
    }
  };
  answer(200, Array.isArray(payload) ? await Promise.all(payload.map(one)) : await one(payload));
}

import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { ChainConfig } from "./config.ts";

/**
 * The coordinator's side of the chain, through viem: sending an anchoring transaction from the configured account,
 * and reading back what the chain itself says about it (the webhook is never trusted for that). No caching of chain
 * answers: `cacheTime: 0`, every check reads the node.
 */

export interface Connection {
  chainId: number;
  from: `0x${string}`;
  to: `0x${string}`;
  public: PublicClient<Transport, Chain>;
  wallet: WalletClient<Transport, Chain, Account>;
}

let cached: { key: string; conn: Promise<Connection> } | undefined;

/** A connection to the configured node (one per process and configuration), checked to serve COORD_CHAIN_ID. */
export function connect(cfg: ChainConfig): Promise<Connection> {
  const key = `${cfg.rpcUrl}|${cfg.privateKey}|${cfg.chainId}|${cfg.to}`;
  if (cached?.key === key) return cached.conn;
  const conn = open(cfg);
  cached = { key, conn };
  // A node that was down is tried again on the next call.
  conn.catch(() => {
    if (cached?.conn === conn) cached = undefined;
  });
  return conn;
}

async function open(cfg: ChainConfig): Promise<Connection> {
  const transport = http(cfg.rpcUrl, { timeout: 10_000, retryCount: 2 });
  const nodeChainId = await createPublicClient({ transport }).getChainId();
  if (cfg.chainId !== undefined && cfg.chainId !== nodeChainId) {
    throw new Error(
      `COORD_CHAIN_ID is ${cfg.chainId} but the node at COORD_CHAIN_RPC_URL serves chain ${nodeChainId}`,
    );
  }
  const chain = defineChain({
    id: nodeChainId,
    name: `chain ${nodeChainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [cfg.rpcUrl] } },
  });
  const account = privateKeyToAccount(cfg.privateKey);
  const from = account.address.toLowerCase() as `0x${string}`;
  return {
    chainId: nodeChainId,
    from,
    to: cfg.to ?? from,
    public: createPublicClient({ chain, transport, cacheTime: 0 }),
    wallet: createWalletClient({ chain, account, transport, cacheTime: 0 }),
  };
}

/** What this process sent lately, per anchoring account: nonce, hash, and the account's mined count when sent. */
const recent = new Map<string, { nonce: number; hash: Hex; minedAtSend: number }[]>();

/**
 * The nonce of the account's next transaction. Nodes do not agree on what `pending` counts (ganache counts mined
 * transactions only), so the process also counts its own transactions still waiting in the node, from the account's
 * mined count up, as long as the node knows them. After a rewind (the mined count went below what it was when
 * they were sent: a reorg, a chain reset) they are forgotten, and a transaction the node dropped frees its nonce,
 * so a lost one never leaves a gap that would hold every later one back.
 */
async function nextNonce(conn: Connection): Promise<{ nonce: number; mined: number }> {
  const [mined, pending] = await Promise.all([
    minedNonce(conn),
    conn.public.getTransactionCount({ address: conn.from, blockTag: "pending" }),
  ]);
  let sent = recent.get(conn.from) ?? [];
  const last = sent.at(-1);
  if (last && mined < last.minedAtSend) sent = [];
  sent = sent.filter((s) => s.nonce >= mined);
  let next = mined;
  for (const s of sent) {
    if (s.nonce !== next) break;
    const tx = await conn.public.getTransaction({ hash: s.hash }).catch(() => undefined);
    if (!tx) break;
    next++;
  }
  recent.set(
    conn.from,
    sent.filter((s) => s.nonce < next),
  );
  return { nonce: Math.max(next, pending), mined };
}

/**
 * Signs and sends one anchoring transaction (zero value, `data` as calldata, to the anchor address) at the account's
 * next nonce. Resolves once the node accepted it. A refusal forgets what this process sent (the next call counts
 * from the chain again).
 */
export async function sendAnchor(conn: Connection, data: Hex): Promise<{ hash: Hex; nonce: number }> {
  const { nonce, mined: minedAtSend } = await nextNonce(conn);
  const request = await conn.wallet.prepareTransactionRequest({
    account: conn.wallet.account,
    chain: conn.wallet.chain,
    to: conn.to,
    data,
    value: 0n,
    nonce,
  });
  const serializedTransaction = await conn.wallet.signTransaction(request);
  try {
    const hash = await conn.wallet.sendRawTransaction({ serializedTransaction });
    recent.set(conn.from, [...(recent.get(conn.from) ?? []), { nonce, hash, minedAtSend }]);
    return { hash, nonce };
  } catch (err) {
    recent.delete(conn.from);
    throw err;
  }
}

export type Sighting =
  /** In a block of the canonical chain (its receipt, and the block at that height has the receipt's hash). */
  | { kind: "mined"; blockNumber: number; blockHash: Hex; success: boolean }
  /** Not in the canonical chain: `known` whether the node still knows the transaction (its mempool). */
  | { kind: "missing"; known: boolean };

/** Where the chain has the transaction now. */
export async function sight(conn: Connection, hash: Hex): Promise<Sighting> {
  const receipt = await conn.public.getTransactionReceipt({ hash }).catch((err: Error) => {
    if (err.name === "TransactionReceiptNotFoundError") return undefined;
    throw err;
  });
  if (receipt) {
    const block = await conn.public.getBlock({ blockNumber: receipt.blockNumber }).catch(() => undefined);
    if (block?.hash && block.hash === receipt.blockHash) {
      return {
        kind: "mined",
        blockNumber: Number(receipt.blockNumber),
        blockHash: receipt.blockHash,
        success: receipt.status === "success",
      };
    }
  }
  const tx = await conn.public.getTransaction({ hash }).catch((err: Error) => {
    if (err.name === "TransactionNotFoundError") return undefined;
    throw err;
  });
  return { kind: "missing", known: tx !== undefined };
}

/** The canonical chain's height now. */
export async function headBlock(conn: Connection): Promise<number> {
  return Number(await conn.public.getBlockNumber({ cacheTime: 0 }));
}

/** How many of the anchoring account's transactions are mined (the next nonce the chain would accept). */
export async function minedNonce(conn: Connection): Promise<number> {
  return conn.public.getTransactionCount({ address: conn.from, blockTag: "latest" });
}

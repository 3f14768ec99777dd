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
import { setting } from "../settings.ts";
import type { ChainConfig } from "./config.ts";
import { capped, type Fees, feeCeiling, gweiToWei, replacementFees } from "./fees.ts";

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
    // Waiting means known and in no block: a node may still answer for a transaction of a block since rewound.
    const tx = await conn.public.getTransaction({ hash: s.hash }).catch(() => undefined);
    if (!tx || tx.blockNumber !== null) break;
    next++;
  }
  recent.set(
    conn.from,
    sent.filter((s) => s.nonce < next),
  );
  return { nonce: Math.max(next, pending), mined };
}

/** A replacement the fee cap leaves no room for: the transaction it would replace waits as it is. */
export class FeeCapReached extends Error {
  constructor(readonly previous: Fees) {
    super(
      `a replacement would offer more than COORD_CHAIN_MAX_FEE_GWEI per gas (the stuck transaction offers ${feeCeiling(previous)} wei)`,
    );
    this.name = "FeeCapReached";
  }
}

/** What the chain asks per gas now, from the request viem prepared. */
function estimateOf(request: {
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  gasPrice?: bigint;
}): Fees {
  if (request.maxFeePerGas !== undefined)
    return {
      kind: "eip1559",
      maxFeePerGas: request.maxFeePerGas,
      maxPriorityFeePerGas: request.maxPriorityFeePerGas ?? 0n,
    };
  return { kind: "legacy", gasPrice: request.gasPrice ?? 0n };
}

/** What the transaction this process sent at `nonce` offers, if the node still holds it unmined. */
export async function feesWaitingAt(conn: Connection, nonce: number): Promise<Fees | undefined> {
  const sent = (recent.get(conn.from) ?? []).find((s) => s.nonce === nonce);
  return sent ? feesOfTransaction(conn, sent.hash) : undefined;
}

/**
 * Signs and sends one anchoring transaction (zero value, `data` as calldata, to the anchor address) and resolves
 * once the node accepted it. By default at the account's next nonce, offering what the chain asks (held to
 * COORD_CHAIN_MAX_FEE_GWEI); with `replacing`, at that transaction's nonce, offering enough more than it to replace
 * it in any pool (core/settlement/fees.ts), or `FeeCapReached` when the cap leaves no room. A refusal forgets what
 * this process sent (the next call counts from the chain again).
 */
export async function sendAnchor(
  conn: Connection,
  data: Hex,
  replacing?: { nonce: number; fees: Fees | undefined },
): Promise<{ hash: Hex; nonce: number; fees: Fees }> {
  const { nonce, mined: minedAtSend } = replacing
    ? { nonce: replacing.nonce, mined: await minedNonce(conn) }
    : await nextNonce(conn);
  const common = {
    account: conn.wallet.account,
    chain: conn.wallet.chain,
    to: conn.to,
    data,
    value: 0n,
    nonce,
  };
  const request = await conn.wallet.prepareTransactionRequest(common);
  const cap = gweiToWei(setting("COORD_CHAIN_MAX_FEE_GWEI"));
  const estimate = estimateOf(request);
  // A replacement whose predecessor's fees are unknown (the node forgot it, and it predates their recording) need
  // not outbid anything the pool holds.
  const previous = replacing?.fees;
  const fees = previous ? replacementFees(previous, estimate, cap) : capped(estimate, cap);
  if (!fees) throw new FeeCapReached(previous as Fees);
  const serializedTransaction = await conn.wallet.signTransaction(
    fees.kind === "legacy"
      ? { ...common, gas: request.gas, type: "legacy", gasPrice: fees.gasPrice }
      : {
          ...common,
          gas: request.gas,
          type: "eip1559",
          maxFeePerGas: fees.maxFeePerGas,
          maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
        },
  );
  try {
    const hash = await conn.wallet.sendRawTransaction({ serializedTransaction });
    // A replacement takes its nonce's place among what this process waits on.
    const others = (recent.get(conn.from) ?? []).filter((s) => s.nonce !== nonce);
    recent.set(
      conn.from,
      [...others, { nonce, hash, minedAtSend }].sort((a, b) => a.nonce - b.nonce),
    );
    return { hash, nonce, fees };
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

/** What a transaction the node holds unmined offers per gas. */
export async function feesOfTransaction(conn: Connection, hash: Hex): Promise<Fees | undefined> {
  const tx = await conn.public.getTransaction({ hash }).catch(() => undefined);
  if (!tx || tx.blockNumber !== null) return undefined;
  if (tx.maxFeePerGas !== undefined)
    return {
      kind: "eip1559",
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas ?? 0n,
    };
  return tx.gasPrice !== undefined ? { kind: "legacy", gasPrice: tx.gasPrice } : undefined;
}

/** The canonical chain's height now. */
export async function headBlock(conn: Connection): Promise<number> {
  return Number(await conn.public.getBlockNumber({ cacheTime: 0 }));
}

/** How many of the anchoring account's transactions are mined (the next nonce the chain would accept). */
export async function minedNonce(conn: Connection): Promise<number> {
  return conn.public.getTransactionCount({ address: conn.from, blockTag: "latest" });
}

import { privateKeyToAccount } from "viem/accounts";
import { publishedKeyList } from "../receipts/receipts.ts";
import type { PublishedKey } from "../receipts/verify.ts";
import { TtlCache } from "../ttl-cache.ts";
import { connect } from "./chain.ts";
import { chainConfig, requiredConfirmations } from "./config.ts";

/**
 * What a verifier pins settlement to, published beside the receipt keys (`GET /v1/receipts/keys`): the chain and
 * the account every anchoring transaction comes from. A proof names them too, but a careful verifier keeps its own
 * copy (the keys file of `coord receipts verify --keys`) and checks proofs against that, not against the proof.
 */
export interface AnchoringView {
  /** Null while the node cannot be reached and COORD_CHAIN_ID is unset. */
  chain_id: number | null;
  /** The anchoring account (lowercase `0x` address): the sender of every anchoring transaction. */
  account: string;
  /** Where anchoring transactions are sent (the account itself unless COORD_ANCHOR_ADDRESS is set). */
  to: string;
  required_confirmations: number;
}

/** A public route's answer: the node is asked at most once a minute per instance (its chain id never changes). */
const cache = new TtlCache<AnchoringView | null>(() => 60_000);

/** The anchoring this deployment does, or null when it anchors nothing (no chain configured). */
export async function anchoringView(): Promise<AnchoringView | null> {
  const hit = cache.get("view");
  if (hit !== undefined) return hit;
  const view = await readAnchoring();
  cache.set("view", view);
  return view;
}

async function readAnchoring(): Promise<AnchoringView | null> {
  const cfg = chainConfig();
  if (!cfg) return null;
  const account = privateKeyToAccount(cfg.privateKey).address.toLowerCase();
  const chainId =
    cfg.chainId ??
    (await connect(cfg).then(
      (conn) => conn.chainId,
      () => null,
    ));
  return {
    chain_id: chainId,
    account,
    to: (cfg.to ?? account).toLowerCase(),
    required_confirmations: requiredConfirmations(),
  };
}

/** Everything a verifier pins (`GET /v1/receipts/keys`): the receipt keys and the anchoring. */
export async function trustAnchors(): Promise<{ keys: PublishedKey[]; anchoring: AnchoringView | null }> {
  const [keys, anchoring] = await Promise.all([publishedKeyList(), anchoringView()]);
  return { keys, anchoring };
}

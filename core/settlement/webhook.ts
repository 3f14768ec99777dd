import { createHmac, timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import { CoordError, UnauthorizedError } from "../errors.ts";
import { parse } from "../validate.ts";
import { type Rechecked, recheckTransactions } from "./anchoring.ts";
import { chainWebhookSecret } from "./config.ts";

/**
 * `POST /v1/webhooks/chain`: Alchemy's Address Activity webhook (or anything that signs like it), pointed at the
 * anchoring account. Only a hint: the coordinator re-checks the named transactions' batches by reading the chain
 * itself, so a forged, stale or replayed payload can at most make it look again. The signature is checked first:
 * `X-Alchemy-Signature` is the hex HMAC-SHA256 of the raw body with the webhook's signing key
 * (`COORD_CHAIN_WEBHOOK_SECRET`), compared in constant time; anything else is 401 and nothing is read or changed.
 */

const Activity = v.looseObject({
  hash: v.optional(v.string()),
  blockNum: v.optional(v.string()),
  fromAddress: v.optional(v.string()),
  toAddress: v.optional(v.string()),
});

export const ChainWebhookPayload = v.looseObject({
  webhookId: v.string(),
  id: v.string(),
  createdAt: v.string(),
  type: v.string(),
  event: v.looseObject({
    network: v.optional(v.string()),
    activity: v.pipe(v.array(Activity), v.maxLength(1000)),
  }),
});

/** At most this many distinct transactions are looked at per delivery (the rest wait for the cron). */
const MAX_CHECKED = 50;
const TX_HASH = /^0x[0-9a-f]{64}$/;

function verifySignature(raw: Uint8Array, header: string | undefined): void {
  const secret = chainWebhookSecret();
  if (!secret)
    throw new CoordError("settlement_not_configured", "no chain webhook secret is configured here");
  if (!header)
    throw new UnauthorizedError(
      "send X-Alchemy-Signature: the hex HMAC-SHA256 of the raw body with the webhook's signing key",
    );
  const expected = createHmac("sha256", secret).update(raw).digest();
  const given = /^[0-9a-f]{64}$/i.test(header.trim()) ? Buffer.from(header.trim(), "hex") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw new UnauthorizedError("X-Alchemy-Signature does not verify this body");
}

export interface ChainWebhookOutcome {
  received: true;
  /** The named transactions that were looked at, with their batch's status after the check. */
  checked: Rechecked[];
  /** Activities skipped: not a transaction hash, a repeat, or past the per-delivery limit. */
  skipped: number;
}

export async function handleChainWebhook(
  raw: Uint8Array | undefined,
  signature: string | undefined,
  body: unknown,
): Promise<ChainWebhookOutcome> {
  verifySignature(raw ?? new Uint8Array(), signature);
  const payload = parse(ChainWebhookPayload, body, "body");
  const activity = payload.type === "ADDRESS_ACTIVITY" ? payload.event.activity : [];
  const hashes = [
    ...new Set(activity.map((a) => a.hash?.toLowerCase() ?? "").filter((h) => TX_HASH.test(h))),
  ].slice(0, MAX_CHECKED);
  return {
    received: true,
    checked: await recheckTransactions(hashes),
    skipped: payload.event.activity.length - hashes.length,
  };
}

import { randomBytes } from "node:crypto";
import type { Principal } from "../context.ts";
import { NotFoundError } from "../errors.ts";
import { knownId } from "../ids.ts";
import { loadJob } from "../jobs/read.ts";
import { getResultItem } from "../jobs/store.ts";
import { TtlCache } from "../ttl-cache.ts";
import { base64url } from "./canonical.ts";
import { jobIdOfReceipt, type ReceiptDocument } from "./receipt.ts";
import { signingKey } from "./signing-key.ts";
import { publishedKeys, putChallenge } from "./store.ts";
import { type PublishedKey, type Verdict, verifyReceipt } from "./verify.ts";

/**
 * Receipts as the API serves them. A receipt is its job's: the job's client and the miner account that completed it
 * see it (and admins); anyone else gets 404, as for the job itself.
 */

const keyList = new TtlCache<PublishedKey[]>(() => 5_000);

/**
 * Every signing key ever published, oldest first: the one this deployment signs with is `current`; every other is
 * `retired`, valid until the next key was published (null for one published after the current: a rollout's).
 */
export async function publishedKeyList(): Promise<PublishedKey[]> {
  const hit = keyList.get("all");
  if (hit) return hit;
  const current = process.env.COORD_RECEIPT_SIGNING_KEY ? signingKey().id : undefined;
  const items = (await publishedKeys()).sort((a, b) => a.validFrom.localeCompare(b.validFrom));
  const list: PublishedKey[] = items.map((k, i) => ({
    key_id: k.keyId,
    public_key: k.publicKey,
    status: k.keyId === current ? "current" : "retired",
    valid_from: k.validFrom,
    valid_until: k.keyId === current ? null : (items[i + 1]?.validFrom ?? null),
  }));
  keyList.set("all", list, Date.now() + 5_000);
  return list;
}

/** The job if the caller is one of its parties (its client, the miner account that completed it, or an admin). */
async function partyJob(principal: Principal, jobId: string) {
  const job = await loadJob(jobId);
  const party =
    job &&
    (principal.kind === "admin" ||
      job.accountId === principal.accountId ||
      job.minerAccountId === principal.accountId);
  if (!job || !party) throw new NotFoundError("job");
  return job;
}

async function storedReceipt(job: { id: string; status: string }): Promise<ReceiptDocument | undefined> {
  const item = job.status === "completed" ? await getResultItem(job.id) : undefined;
  return typeof item?.receiptJson === "string"
    ? (JSON.parse(item.receiptJson) as ReceiptDocument)
    : undefined;
}

export async function jobReceipt(principal: Principal, jobId: string): Promise<ReceiptDocument> {
  const receipt = await storedReceipt(await partyJob(principal, jobId));
  if (!receipt) throw new NotFoundError("receipt");
  return receipt;
}

/** A job's receipts, one per completed attempt (a job completes at most once, so none or one). */
export async function jobReceipts(
  principal: Principal,
  jobId: string,
): Promise<{ receipts: ReceiptDocument[] }> {
  const receipt = await storedReceipt(await partyJob(principal, jobId));
  return { receipts: receipt ? [receipt] : [] };
}

export async function receiptById(principal: Principal, receiptId: string): Promise<ReceiptDocument> {
  knownId(receiptId, "rcpt", "receipt");
  try {
    return await jobReceipt(principal, jobIdOfReceipt(receiptId));
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError("receipt");
    throw err;
  }
}

/** Checks a receipt document exactly as it was returned, against the published keys. */
export async function verifyDocument(document: unknown): Promise<Verdict> {
  return verifyReceipt(document, await publishedKeyList());
}

/** How long a registration challenge may be used. */
const CHALLENGE_SECONDS = 600;

/**
 * A single-use challenge for the caller's account to sign at registration (proof of its miner's key), with the
 * account id the signed statement names (so that a miner needs no second request to build it).
 */
export async function createChallenge(
  principal: Principal,
): Promise<{ challenge: string; account_id: string; expires_at: string }> {
  const challenge = base64url.encode(new Uint8Array(randomBytes(32)));
  const expiresAt = new Date(Date.now() + CHALLENGE_SECONDS * 1000);
  await putChallenge(challenge, principal.accountId, expiresAt);
  return { challenge, account_id: principal.accountId, expires_at: expiresAt.toISOString() };
}

import { createHash } from "node:crypto";
import type { ArtifactDigest } from "../artifacts/references.ts";
import { ValidationError } from "../errors.ts";
import type { Job } from "../jobs/model.ts";
import { cachedMiner } from "../miners/cache.ts";
import { findMiner } from "../miners/miners.ts";
import { findService } from "../services/registry.ts";
import { canonicalBytes } from "./canonical.ts";
import { publicKeyFrom, rawPublicKey, verifyBytes } from "./ed25519.ts";
import { publishedSigningKey } from "./signing-key.ts";
import { RECEIPT_TYPE, resultStatement } from "./statements.ts";

/**
 * A completed job's receipt: what was done (hashes of input and output), by whom (account ids, never keys), when (the
 * coordinator's own clock) and for how much, signed by the coordinator's Ed25519 key over the body's RFC 8785 form.
 * It is built and signed before the completion's transaction and stored in the job's result item by that same
 * transaction, so a completed job has its receipt from the moment it is completed, and exactly one.
 */

export const sha256Hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/**
 * The hash of a JSON value that receipts and co-signatures name: SHA-256 of its canonical (RFC 8785) bytes. RFC 8785
 * has no form for a string with a lone surrogate (which JSON allows and the coordinator stores exactly); such a value
 * is hashed as `JSON.stringify` writes it (the surrogate escaped), documented in docs/receipts.md.
 */
export function jsonSha256(value: unknown): string {
  try {
    return sha256Hex(canonicalBytes(value));
  } catch {
    return sha256Hex(JSON.stringify(value));
  }
}

/** One receipt per completion; a job completes at most once, so the id follows from the job's. */
export const receiptIdOf = (jobId: string) => `rcpt_${jobId.slice(jobId.indexOf("_") + 1)}`;
export const jobIdOfReceipt = (receiptId: string) => `job_${receiptId.slice(receiptId.indexOf("_") + 1)}`;

export interface MinerCosign {
  public_key: string;
  claim_token_sha256: string;
  signature: string;
}

/**
 * Checks a result's co-signature: a miner that registered a `public_key` must sign the result statement (job id,
 * attempt, claim token hash, output hash); 422 naming `body.signature` otherwise, before anything is written. A key
 * changed by a re-registration a moment ago is caught by reading the miner again before refusing.
 */
export async function verifyCosign(
  job: Job,
  claimToken: string,
  outputSha256: string,
  signature: string | undefined,
): Promise<MinerCosign | undefined> {
  const minerId = job.minerId as string;
  const keyOf = async (fresh: boolean) =>
    (fresh ? undefined : cachedMiner(minerId)?.public_key) ?? (await findMiner(minerId))?.public_key;
  let registered = await keyOf(false);
  if (!registered) {
    if (signature === undefined) return undefined;
    throw new ValidationError([
      {
        path: "body.signature",
        message: "this miner registered no public_key: there is nothing to verify it with",
      },
    ]);
  }
  if (signature === undefined) {
    throw new ValidationError([
      {
        path: "body.signature",
        message: "this miner registered a public_key: sign the result statement with it",
      },
    ]);
  }
  const claim_token_sha256 = sha256Hex(claimToken);
  const statement = canonicalBytes(
    resultStatement({
      job_id: job.id,
      attempt: job.attempt,
      claim_token_sha256,
      output_sha256: outputSha256,
    }),
  );
  for (const fresh of [false, true]) {
    if (fresh) registered = await keyOf(true);
    if (!registered) break;
    const key = publicKeyFrom(registered);
    if (verifyBytes(key, statement, signature)) {
      return { public_key: rawPublicKey(key), claim_token_sha256, signature };
    }
  }
  throw new ValidationError([
    {
      path: "body.signature",
      message:
        "not this miner's Ed25519 signature of the result statement {type: coordinator.result.v1, job_id, attempt, claim_token_sha256, output_sha256} (RFC 8785)",
    },
  ]);
}

export interface ReceiptDocument {
  receipt: Record<string, unknown>;
  signature: string;
}

/** The signed receipt of a completion, built from what the completion's transaction will write. */
export async function issueReceipt(
  job: Job,
  done: {
    finishedAt: Date;
    units: number;
    price: number;
    fee: number;
    outputSha256: string;
    inputSha256: string;
    /** The artifacts the input referenced and the output uploaded, with their SHA-256 (core/artifacts). */
    artifacts?: readonly ArtifactDigest[];
    cosign?: MinerCosign;
  },
): Promise<ReceiptDocument> {
  const key = await publishedSigningKey();
  const receipt = {
    type: RECEIPT_TYPE,
    receipt_id: receiptIdOf(job.id),
    job_id: job.id,
    service: job.service,
    attempt: job.attempt,
    client_account_id: job.accountId,
    miner_account_id: job.minerAccountId ?? null,
    miner_id: job.minerId ?? null,
    input_sha256: done.inputSha256,
    output_sha256: done.outputSha256,
    artifacts: (done.artifacts ?? []).map((a) => ({ ...a })),
    started_at: job.startedAt ?? job.assignedAt ?? null,
    finished_at: done.finishedAt.toISOString(),
    units: done.units,
    unit_type: findService(job.service)?.pricing.unit ?? null,
    unit_price: job.unitPrice ?? 0,
    amount: done.price,
    fee: done.fee,
    currency: "micro-credits",
    miner_signature: done.cosign ?? null,
    key_id: key.id,
    issued_at: new Date().toISOString(),
  };
  return { receipt, signature: key.sign(receipt) };
}

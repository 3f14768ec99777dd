import * as v from "valibot";
import type { Ctx } from "../context.ts";
import { actorOf } from "../db/outbox.ts";
import { ConflictError, ValidationError } from "../errors.ts";
import { type Posting, platformFeeAccountOf, postingItems } from "../ledger/ledger.ts";
import { parse, ReasonText } from "../validate.ts";
import { cancelJob } from "./lifecycle.ts";
import { type Job, jobView } from "./model.ts";
import { getOwnJob } from "./read.ts";
import { applyTransition, TransactionRefused } from "./transition.ts";

export const RefundInput = v.object({
  /** Micro-credits to give back; default: all of the charge not refunded yet. */
  amount: v.optional(
    v.pipe(
      v.number(),
      v.safeInteger("amount must be an integer number of micro-credits"),
      v.minValue(1, "amount must be at least 1"),
    ),
  ),
  reason: ReasonText,
});

export const OperatorCancelInput = v.object({
  reason: ReasonText,
});

/**
 * How a refund of `amount` splits between the miner's earning and the platform fee, given what was refunded before:
 * the fee's share is taken back in proportion on the running total (rounded down), so that refunds in any number of
 * parts take back exactly the fee in all, and never more.
 */
export function refundSplit(
  price: number,
  fee: number,
  before: number,
  amount: number,
): { fromFee: number; fromMiner: number } {
  const feeBack = (total: number) => (price === 0 ? 0 : Math.floor((total * fee) / price));
  const fromFee = feeBack(before + amount) - feeBack(before);
  return { fromFee, fromMiner: amount - fromFee };
}

export interface RefundAnswer {
  job_id: string;
  amount: number;
  refunded_total: number;
  price: number;
  from_miner: number;
  from_fee: number;
  job: ReturnType<typeof jobView>;
}

/**
 * An operator refunds a completed job's charge, wholly or in part, through the ledger: the client gets the amount back
 * (available), the miner's earning and the platform fee give it back in proportion. The miner's balance may go below
 * zero if it was paid out already (its later earnings make it good; a payout needs a positive available balance).
 * The job's `refunded` total moves in the same transaction, under the job's version, so concurrent refunds never
 * give back more than the price.
 */
export async function refundJob(jobId: string, raw: unknown, ctx: Ctx): Promise<RefundAnswer> {
  const body = parse(RefundInput, raw, "body");
  if (!ctx.principal) throw new Error("refundJob needs an operator principal");
  for (let i = 0; ; i++) {
    const job = await getOwnJob(ctx.principal, jobId);
    if (job.status !== "completed") {
      throw new ConflictError(`only a completed job's charge can be refunded; this job is ${job.status}`, {
        job_status: job.status,
      });
    }
    const price = job.price ?? 0;
    const before = job.refunded ?? 0;
    const left = price - before;
    if (left <= 0) {
      throw new ConflictError(
        price === 0 ? "the job was not charged" : "the job's charge is refunded in full already",
        { price, refunded_total: before },
      );
    }
    const amount = body.amount ?? left;
    if (amount > left) {
      throw new ValidationError([
        { path: "body.amount", message: `at most ${left} of the charge ${price} is left to refund` },
      ]);
    }
    const { fromFee, fromMiner } = refundSplit(price, job.fee ?? 0, before, amount);
    const now = new Date();
    try {
      const next = await applyTransition(job, "refund", {
        changes: { refunded: before + amount },
        with: { money: postingItems(refundPostings(job, amount, fromMiner, fromFee, body.reason), now) },
        event: {
          amount,
          refunded_total: before + amount,
          price,
          from_miner: fromMiner,
          from_fee: fromFee,
          reason: body.reason,
        },
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        at: now,
      });
      return {
        job_id: job.id,
        amount,
        refunded_total: before + amount,
        price,
        from_miner: fromMiner,
        from_fee: fromFee,
        job: jobView(next),
      };
    } catch (err) {
      // Another refund (or a late event) moved the job meanwhile: read it again and judge afresh.
      if (!(err instanceof TransactionRefused) || !err.jobChanged || i >= 5) throw err;
    }
  }
}

function refundPostings(
  job: Job,
  amount: number,
  fromMiner: number,
  fromFee: number,
  reason: string,
): Posting[] {
  const postings: Posting[] = [
    {
      accountId: job.accountId,
      kind: "job_refund",
      deltaAvailable: amount,
      deltaHeld: 0,
      jobId: job.id,
      reason,
    },
    {
      accountId: job.minerAccountId as string,
      kind: "job_refund",
      deltaAvailable: -fromMiner,
      deltaHeld: 0,
      jobId: job.id,
      reason,
      guard: false,
      alsoAdd: { earned: -fromMiner },
    },
    {
      accountId: platformFeeAccountOf(job.id),
      kind: "job_refund",
      deltaAvailable: -fromFee,
      deltaHeld: 0,
      jobId: job.id,
      reason,
      guard: false,
    },
  ];
  return postings.filter((p) => p.deltaAvailable !== 0);
}

/** An operator cancels any account's queued or leased job, with a reason the audit trail keeps. */
export async function operatorCancel(jobId: string, raw: unknown, ctx: Ctx) {
  const { reason } = parse(OperatorCancelInput, raw, "body");
  if (!ctx.principal) throw new Error("operatorCancel needs an operator principal");
  return cancelJob(ctx.principal, jobId, ctx.correlationId, { reason, actor: actorOf(ctx) });
}

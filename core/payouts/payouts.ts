import * as v from "valibot";
import type { Ctx, Principal } from "../context.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut } from "../db/outbox.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { ConflictError, CoordError, NotFoundError } from "../errors.ts";
import { knownId, newId } from "../ids.ts";
import { PAYOUT_CLEARING_ID, postingItems } from "../ledger/ledger.ts";
import { parse } from "../validate.ts";
import { canMove, PAYOUT_STATUSES, PAYOUT_TRANSITIONS, type PayoutTransition } from "./statuses.ts";
import {
  getPayout,
  type Payout,
  payoutCreate,
  payoutMove,
  payoutsByStatus,
  payoutsOfAccount,
} from "./store.ts";

export const PayoutInput = v.object({
  amount: v.pipe(
    v.number(),
    v.safeInteger("amount must be an integer number of micro-credits"),
    v.minValue(1, "amount must be positive"),
  ),
});

export const DecisionInput = v.optional(
  v.object({ reason: v.optional(v.pipe(v.string(), v.trim(), v.maxLength(500))) }),
  {},
);

const Limit = v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(100)), "50");
export const PayoutsQuery = v.object({ cursor: v.optional(v.string()), limit: Limit });
export const AdminPayoutsQuery = v.object({
  status: v.optional(v.picklist(PAYOUT_STATUSES), "requested"),
  cursor: v.optional(v.string()),
  limit: Limit,
});

export function payoutView(p: Payout) {
  return {
    id: p.id,
    account_id: p.accountId,
    amount: p.amount,
    status: p.status,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
    ...(p.reason ? { reason: p.reason } : {}),
  };
}

/** A miner account asks to withdraw `amount` of its available earnings: held until an operator decides. */
export async function requestPayout(principal: Principal, raw: unknown, ctx: Ctx) {
  const { amount } = parse(PayoutInput, raw, "body");
  const at = new Date();
  const p: Payout = {
    id: newId("po", at.getTime()),
    accountId: principal.accountId,
    amount,
    status: "requested",
    createdAt: at.toISOString(),
    updatedAt: at.toISOString(),
  };
  try {
    await transact({
      payout: payoutCreate(p),
      money: postingItems(
        [
          {
            accountId: p.accountId,
            kind: "payout",
            deltaAvailable: -amount,
            deltaHeld: amount,
            reason: p.id,
          },
        ],
        at,
      ),
      event: outboxPut({
        type: "payout.requested.v1",
        subjectPk: keys.account(p.accountId).PK,
        subject: p.id,
        accountId: p.accountId,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: { payout_id: p.id, account_id: p.accountId, amount },
        at,
      }),
    });
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("money"))
      throw new CoordError("insufficient_funds", `the available balance cannot pay out ${amount}`);
    throw err;
  }
  return payoutView(p);
}

/**
 * An operator approves (held -> the payout clearing account, to be transferred outside: a Stripe Connect adapter
 * may do it later) or rejects (held -> available again) a requested payout, once.
 */
export async function decidePayout(id: string, t: PayoutTransition, raw: unknown, ctx: Ctx) {
  const { reason } = parse(DecisionInput, raw, "body");
  knownId(id, "po", "payout");
  const p = await getPayout(id);
  if (!p) throw new NotFoundError("payout");
  if (!canMove(t, p.status))
    throw new ConflictError(`the payout is already ${p.status}`, { payout_status: p.status });
  const at = new Date();
  const rule = PAYOUT_TRANSITIONS[t];
  const next: Payout = {
    ...p,
    status: rule.to,
    updatedAt: at.toISOString(),
    decidedBy: ctx.principal?.accountId,
    reason,
  };
  const postings =
    t === "approve"
      ? [
          {
            accountId: p.accountId,
            kind: "payout" as const,
            deltaAvailable: 0,
            deltaHeld: -p.amount,
            reason: p.id,
          },
          {
            accountId: PAYOUT_CLEARING_ID,
            kind: "payout" as const,
            deltaAvailable: p.amount,
            deltaHeld: 0,
            reason: p.id,
            guard: false,
          },
        ]
      : [
          {
            accountId: p.accountId,
            kind: "payout" as const,
            deltaAvailable: p.amount,
            deltaHeld: -p.amount,
            reason: p.id,
          },
        ];
  const data = { payout_id: p.id, account_id: p.accountId, amount: p.amount };
  try {
    await transact({
      payout: payoutMove(next, p.status),
      money: postingItems(postings, at),
      event: outboxPut({
        type: rule.event,
        subjectPk: keys.account(p.accountId).PK,
        subject: p.id,
        accountId: p.accountId,
        correlationId: ctx.correlationId,
        actor: actorOf(ctx),
        data: t === "reject" ? { ...data, reason: reason ?? "" } : data,
        at,
      }),
    });
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("payout")) {
      const now = await getPayout(id);
      throw new ConflictError(`the payout is already ${now?.status}`, { payout_status: now?.status });
    }
    throw err;
  }
  return payoutView(next);
}

export async function listOwnPayouts(principal: Principal, query: unknown) {
  const q = parse(PayoutsQuery, query, "query");
  const page = await payoutsOfAccount(principal.accountId, Number(q.limit), q.cursor);
  return { payouts: page.items.map(payoutView), next_cursor: page.nextCursor };
}

export async function listPayouts(query: unknown) {
  const q = parse(AdminPayoutsQuery, query, "query");
  const page = await payoutsByStatus(q.status, Number(q.limit), q.cursor);
  return { payouts: page.items.map(payoutView), next_cursor: page.nextCursor };
}

import Stripe from "stripe";
import { keys } from "../db/keys.ts";
import { outboxPut } from "../db/outbox.ts";
import { TransactionRefused, transact } from "../db/transaction.ts";
import { CoordError } from "../errors.ts";
import { postingItems, TREASURY_ID } from "../ledger/ledger.ts";
import { webhookSecrets } from "./config.ts";
import {
  eventRecord,
  getSession,
  paymentIntentPointer,
  type Session,
  sessionLeavesPending,
  sessionOfPaymentIntent,
  sessionRefunded,
} from "./store.ts";

/** Stripe's signature tolerance, and ours in both directions (a timestamp from the future is refused too). */
const TOLERANCE_SECONDS = 300;

type CheckoutSession = Stripe.Checkout.Session;

/** The event, if `header` signs `raw` with one of the secrets within the tolerance; else 400 and nothing recorded. */
function verified(raw: string, header: string | undefined): Stripe.Event {
  const secrets = webhookSecrets();
  if (secrets.length === 0)
    throw new CoordError("payments_not_configured", "no Stripe webhook secret is configured");
  if (!header) throw new CoordError("bad_signature", "send the Stripe-Signature header");
  const t = Number(/(?:^|,)t=(\d+)/.exec(header)?.[1]);
  if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS)
    throw new CoordError(
      "bad_signature",
      `the signature's timestamp is more than ${TOLERANCE_SECONDS} s away`,
    );
  for (const secret of secrets) {
    try {
      // Any `v1` of the header may match (Stripe sends one per active secret).
      return Stripe.webhooks.constructEvent(raw, header, secret, TOLERANCE_SECONDS);
    } catch {
      // the next secret (a rotation in progress)
    }
  }
  throw new CoordError("bad_signature", "Stripe-Signature does not verify this body");
}

export type WebhookOutcome =
  | "credited"
  | "refunded"
  | "flagged"
  | "expired"
  | "failed"
  | "already_settled"
  | "awaiting_payment"
  | "not_ours"
  | "ignored"
  | "duplicate";

/**
 * `POST /v1/webhooks/stripe`. Verifies the signature on the raw body, then records the event once, in the same
 * transaction as what it causes: a paid session credits its account (the session leaves `pending`, the ledger moves
 * credits from the treasury, `payment.credited.v1` is written), a mismatch flags the session
 * (`payment.reconcile_failed.v1`), an expiry or a failed async payment marks it. Whatever the order, the subset and
 * the number of deliveries (Stripe retries for days and may send both success events for one payment), a session is
 * credited at most once: only one transaction can take it out of `pending`, and an event id is recorded only once.
 */
export async function handleStripeWebhook(
  raw: string,
  header: string | undefined,
): Promise<{ outcome: WebhookOutcome }> {
  const event = verified(raw, header);
  const at = new Date();
  switch (event.type) {
    case "checkout.session.completed": {
      const obj = event.data.object as CheckoutSession;
      return settle(event, obj, obj.payment_status === "paid" ? "credit" : "wait", at);
    }
    case "checkout.session.async_payment_succeeded":
      return settle(event, event.data.object as CheckoutSession, "credit", at);
    case "checkout.session.expired":
      return settle(event, event.data.object as CheckoutSession, "expire", at);
    case "checkout.session.async_payment_failed":
      return settle(event, event.data.object as CheckoutSession, "fail", at);
    case "charge.refunded":
      return refund(event, event.data.object as Stripe.Charge, at);
    default:
      return record(event, "ignored", undefined, at);
  }
}

/** Records an event with nothing else to do; a redelivery is a duplicate. */
async function record(
  event: Stripe.Event,
  outcome: WebhookOutcome,
  sessionId: string | undefined,
  at: Date,
): Promise<{ outcome: WebhookOutcome }> {
  try {
    await transact({ stripeEvent: eventRecord(event, outcome, sessionId, at) });
    return { outcome };
  } catch (err) {
    if (err instanceof TransactionRefused && err.refusedBy("stripeEvent")) return { outcome: "duplicate" };
    throw err;
  }
}

/** A payment event about `session`, filed in its account's history. */
function paymentEvent<
  T extends "payment.credited.v1" | "payment.refunded.v1" | "payment.reconcile_failed.v1",
>(type: T, session: Session, data: Parameters<typeof outboxPut<T>>[0]["data"], at: Date) {
  return outboxPut({
    type,
    subjectPk: keys.account(session.accountId).PK,
    subject: session.id,
    accountId: session.accountId,
    data,
    at,
  });
}

function paymentIntentOf(obj: { payment_intent?: string | { id: string } | null }): string | undefined {
  return typeof obj.payment_intent === "string" ? obj.payment_intent : (obj.payment_intent?.id ?? undefined);
}

/**
 * `charge.refunded`: takes back the credits the refunded part bought, at the session's own rate. Stripe reports the
 * refunded amount cumulatively, so the session keeps what was taken back so far and only the difference moves; a
 * redelivered or reordered event moves nothing twice. The balance may go below zero (the credits may be spent
 * already); submits are then refused with 402 until it is topped up again.
 */
async function refund(
  event: Stripe.Event,
  charge: Stripe.Charge,
  at: Date,
): Promise<{ outcome: WebhookOutcome }> {
  const pi = paymentIntentOf(charge);
  const session = pi ? await sessionOfPaymentIntent(pi) : undefined;
  if (session?.status !== "credited") return record(event, "not_ours", session?.id, at);
  const target = Math.min(
    session.credits,
    Math.floor((charge.amount_refunded * session.credits) / session.amount),
  );
  const already = session.refundedCredits ?? 0;
  if (target <= already) return record(event, "already_settled", session.id, at);
  const delta = target - already;
  const reason = `Stripe refund of ${session.id}`;
  try {
    await transact({
      stripeEvent: eventRecord(event, "refunded", session.id, at),
      session: sessionRefunded(session, target, at),
      money: postingItems(
        [
          {
            accountId: session.accountId,
            kind: "refund",
            deltaAvailable: -delta,
            deltaHeld: 0,
            reason,
            guard: false,
          },
          {
            accountId: TREASURY_ID,
            kind: "refund",
            deltaAvailable: delta,
            deltaHeld: 0,
            reason,
            guard: false,
          },
        ],
        at,
      ),
      event: paymentEvent(
        "payment.refunded.v1",
        session,
        {
          session_id: session.id,
          account_id: session.accountId,
          credits: delta,
          refunded_credits: target,
          stripe_event_id: event.id,
        },
        at,
      ),
    });
    return { outcome: "refunded" };
  } catch (err) {
    if (!(err instanceof TransactionRefused)) throw err;
    if (err.refusedBy("stripeEvent")) return { outcome: "duplicate" };
    // Another refund event moved the session meanwhile: judge this one again against what it recorded.
    if (err.refusedBy("session")) return refund(event, charge, at);
    throw err;
  }
}

function mismatch(session: Session, obj: CheckoutSession): boolean {
  return (
    obj.amount_total !== session.amount ||
    obj.currency?.toLowerCase() !== session.currency ||
    obj.client_reference_id !== session.accountId
  );
}

async function settle(
  event: Stripe.Event,
  obj: CheckoutSession,
  action: "credit" | "wait" | "expire" | "fail",
  at: Date,
): Promise<{ outcome: WebhookOutcome }> {
  const session = await getSession(obj.id);
  // A session the coordinator did not create (another integration on the same Stripe account): recorded, ignored.
  if (!session) return record(event, "not_ours", obj.id, at);
  if (action === "wait") return record(event, "awaiting_payment", session.id, at);
  if (session.status !== "pending") return record(event, "already_settled", session.id, at);
  let outcome: WebhookOutcome;
  let items: Parameters<typeof transact>[0];
  if (action === "expire" || action === "fail") {
    outcome = action === "expire" ? "expired" : "failed";
    items = { session: sessionLeavesPending(session.id, outcome, at) };
  } else if (mismatch(session, obj)) {
    outcome = "flagged";
    items = {
      session: sessionLeavesPending(session.id, "flagged", at, { stripeEventId: event.id }),
      event: paymentEvent(
        "payment.reconcile_failed.v1",
        session,
        {
          session_id: session.id,
          account_id: session.accountId,
          expected: { amount: session.amount, currency: session.currency, account_id: session.accountId },
          received: {
            amount: obj.amount_total ?? null,
            currency: obj.currency ?? null,
            account_id: obj.client_reference_id ?? null,
          },
          stripe_event_id: event.id,
        },
        at,
      ),
    };
  } else {
    outcome = "credited";
    const reason = `Stripe Checkout ${session.id}`;
    const pi = paymentIntentOf(obj);
    items = {
      session: sessionLeavesPending(session.id, "credited", at, {
        creditedAt: at.toISOString(),
        stripeEventId: event.id,
        paymentIntent: paymentIntentOf(obj),
      }),
      // A refund names the charge's payment intent: remember which session it paid.
      ...(pi ? { paymentIntent: paymentIntentPointer(pi, session.id) } : {}),
      money: postingItems(
        [
          {
            accountId: session.accountId,
            kind: "payment",
            deltaAvailable: session.credits,
            deltaHeld: 0,
            reason,
          },
          {
            accountId: TREASURY_ID,
            kind: "payment",
            deltaAvailable: -session.credits,
            deltaHeld: 0,
            reason,
            guard: false,
          },
        ],
        at,
      ),
      event: paymentEvent(
        "payment.credited.v1",
        session,
        {
          session_id: session.id,
          account_id: session.accountId,
          amount: session.amount,
          currency: session.currency,
          credits: session.credits,
          stripe_event_id: event.id,
        },
        at,
      ),
    };
  }
  try {
    await transact({ stripeEvent: eventRecord(event, outcome, session.id, at), ...items });
    return { outcome };
  } catch (err) {
    if (!(err instanceof TransactionRefused)) throw err;
    if (err.refusedBy("stripeEvent")) return { outcome: "duplicate" };
    // Another event took the session out of `pending` meanwhile (both success events at once): record this one.
    if (err.refusedBy("session")) return record(event, "already_settled", session.id, at);
    throw err;
  }
}

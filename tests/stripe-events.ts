import { randomBytes } from "node:crypto";
import Stripe from "stripe";
import { inject } from "vitest";

/** Stripe's side of the tests: events in Stripe's wire format, signed as Stripe signs them, and the stand-in's sessions. */
const stripe = inject("stripe");
type Obj = Record<string, unknown>;

/** The session as the stand-in holds it (Stripe's own shape). */
export async function stripeSession(id: string): Promise<Obj> {
  const res = await fetch(`${stripe.url}/v1/checkout/sessions/${id}`, {
    headers: { authorization: "Bearer sk_test_x" },
  });
  return (await res.json()) as Obj;
}

/** A Stripe event envelope around `object`. */
export function stripeEvent(type: string, object: Obj): Obj {
  return {
    id: `evt_${randomBytes(10).toString("hex")}`,
    object: "event",
    api_version: "2025-06-30.basil",
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    type,
    data: { object },
  };
}

/** A Stripe event about a Checkout session, paid unless `over` says otherwise. */
export function sessionEvent(type: string, session: Obj, over: Obj = {}): Obj {
  return stripeEvent(type, {
    ...session,
    status: "complete",
    payment_status: "paid",
    payment_intent: `pi_${String(session.id)}`,
    ...over,
  });
}

/**
 * The request Stripe would send for `evt`: the body and a `Stripe-Signature` (`t=...,v1=...` over `t.payload`) made
 * with the SDK's `generateTestHeaderString`, or as the options spoil it.
 */
export function signedStripeRequest(
  evt: Obj,
  opts: { secret?: string; timestamp?: number; body?: string } = {},
): { raw: string; headers: Record<string, string> } {
  const payload = JSON.stringify(evt);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? stripe.webhookSecret,
    ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
  });
  return {
    raw: opts.body ?? payload,
    headers: { "stripe-signature": header, "content-type": "application/json" },
  };
}

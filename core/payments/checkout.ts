import * as v from "valibot";
import type { Principal } from "../context.ts";
import { ValidationError } from "../errors.ts";
import { parse } from "../validate.ts";
import { creditRates, stripeClient } from "./config.ts";
import { putSession } from "./store.ts";

/** What a top-up tells Stripe it is for (the webhook credits only sessions it recognises as the coordinator's). */
export const TOP_UP_PURPOSE = "coordinator_top_up";

const ReturnUrl = v.pipe(
  v.string(),
  v.maxLength(2000),
  v.url("must be an absolute URL"),
  v.check(
    (u) => /^https:\/\//.test(u) || /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?\//.test(u),
    "must be https",
  ),
);

export const CheckoutInput = v.object({
  /** In the currency's minor units (cents): Stripe's own unit. */
  amount: v.pipe(
    v.number(),
    v.safeInteger("amount must be an integer number of minor units (cents)"),
    v.minValue(50, "Stripe's smallest charge is 50 minor units"),
    v.maxValue(99_999_999, "at most 99,999,999 minor units in one session"),
  ),
  currency: v.optional(v.pipe(v.string(), v.toLowerCase(), v.regex(/^[a-z]{3}$/, "an ISO 4217 code")), "usd"),
  success_url: ReturnUrl,
  cancel_url: ReturnUrl,
});

/**
 * Starts a top-up: a Stripe Checkout Session for the amount, recorded `pending` with the credits it will buy at
 * today's rate (the rate at checkout is what the payment buys, whatever the rate when it lands).
 */
export async function createCheckout(principal: Principal, raw: unknown) {
  const stripe = stripeClient();
  const body = parse(CheckoutInput, raw, "body");
  const rates = creditRates();
  const rate = rates.get(body.currency);
  if (!rate)
    throw new ValidationError([
      { path: "body.currency", message: `accepted: ${[...rates.keys()].join(", ")}` },
    ]);
  const session = await stripe.checkout.sessions.create({
    mode: "payment",
    client_reference_id: principal.accountId,
    metadata: { purpose: TOP_UP_PURPOSE, account_id: principal.accountId },
    line_items: [
      {
        quantity: 1,
        price_data: {
          currency: body.currency,
          unit_amount: body.amount,
          product_data: { name: "Coordinator credits" },
        },
      },
    ],
    success_url: body.success_url,
    cancel_url: body.cancel_url,
  });
  const now = new Date().toISOString();
  const credits = body.amount * rate;
  await putSession({
    id: session.id,
    accountId: principal.accountId,
    amount: body.amount,
    currency: body.currency,
    credits,
    status: "pending",
    createdAt: now,
    updatedAt: now,
  });
  return {
    id: session.id,
    url: session.url,
    amount: body.amount,
    currency: body.currency,
    credits,
    status: "pending",
  };
}

import { CheckoutInput, createCheckout } from "../../../core/payments/checkout.ts";
import { handleStripeWebhook } from "../../../core/payments/webhook.ts";
import { requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { once } from "../idempotent.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

export const payments = documentedRoutes("/v1/payments", "payments").post(
  "/checkout",
  {
    summary:
      "Top up through Stripe Checkout (Idempotency-Key): a session to pay, credited once Stripe says it is paid",
    auth: "client",
    body: CheckoutInput,
    responses: { "201": "{id, url, amount, currency, credits, status}", "503": "payments not configured" },
  },
  requireAuth({ kinds: ["client"], scope: "payments:write" }),
  rateLimit("write"),
  async (c) => {
    const body = await readJson(c);
    return once(c, body, async () => ({ status: 201, body: await createCheckout(c.var.principal, body) }));
  },
).app;

// Stripe's deliveries carry no key: the signature over the raw body is the authentication.
export const stripeWebhook = documentedRoutes("/v1/webhooks/stripe", "payments").post(
  "/",
  {
    summary: "Stripe's webhook (Stripe-Signature over the raw body): credits a paid top-up exactly once",
    auth: "none",
    responses: { "200": "{received, outcome}", "400": "bad signature, nothing recorded" },
  },
  async (c) =>
    c.json({
      received: true,
      // The exact bytes Stripe signed, as the body gate read them.
      ...(await handleStripeWebhook(
        Buffer.from(c.var.rawBody ?? new Uint8Array()).toString("utf8"),
        c.req.header("stripe-signature"),
      )),
    }),
).app;

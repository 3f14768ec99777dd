import Stripe from "stripe";
import { CoordError } from "../errors.ts";

/**
 * Stripe's configuration, from the environment (DESIGN.md "Money and payments"):
 * - `COORD_STRIPE_SECRET_KEY`: without it, checkout answers 503 `payments_not_configured`;
 * - `COORD_STRIPE_API_BASE`: where the SDK sends its requests (a URL; default Stripe's own), for a stand-in;
 * - `COORD_STRIPE_WEBHOOK_SECRET` and, during a rotation, `COORD_STRIPE_WEBHOOK_SECRET_PREVIOUS`;
 * - `COORD_CREDIT_RATES`: micro-credits per minor unit of each accepted currency, `usd:10000,eur:10800` (default
 *   `usd:10000`: a dollar buys 1,000,000 micro-credits, one credit).
 */
let cached: { key: string; base: string | undefined; client: Stripe } | undefined;

export function stripeClient(): Stripe {
  const key = process.env.COORD_STRIPE_SECRET_KEY;
  if (!key)
    throw new CoordError("payments_not_configured", "payments are not configured here (no Stripe key)");
  const base = process.env.COORD_STRIPE_API_BASE;
  if (cached?.key === key && cached.base === base) return cached.client;
  const url = base ? new URL(base) : undefined;
  const client = new Stripe(key, {
    maxNetworkRetries: 2,
    ...(url
      ? {
          host: url.hostname,
          port: url.port || (url.protocol === "https:" ? 443 : 80),
          protocol: url.protocol === "https:" ? "https" : "http",
        }
      : {}),
  });
  cached = { key, base, client };
  return client;
}

/** The webhook signing secrets to try, current first. */
export function webhookSecrets(): string[] {
  return [process.env.COORD_STRIPE_WEBHOOK_SECRET, process.env.COORD_STRIPE_WEBHOOK_SECRET_PREVIOUS].filter(
    (s): s is string => !!s,
  );
}

/** Micro-credits per minor unit, by lower-case ISO currency. A malformed setting stops the caller, naming it. */
export function creditRates(): Map<string, number> {
  const raw = process.env.COORD_CREDIT_RATES ?? "usd:10000";
  const rates = new Map<string, number>();
  for (const part of raw.split(",")) {
    const [cur, rate] = part.split(":").map((x) => x.trim());
    const n = Number(rate);
    if (!cur || !/^[a-z]{3}$/.test(cur) || !Number.isSafeInteger(n) || n <= 0)
      throw new Error(
        `COORD_CREDIT_RATES: '${part}' is not <currency>:<positive integer micro-credits per minor unit>`,
      );
    rates.set(cur, n);
  }
  return rates;
}

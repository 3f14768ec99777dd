/**
 * Secrets, set per stage with `npx sst secret set <Name> <value> --stage <stage>` (docs/deploy.md). None has a
 * placeholder: a deploy fails until every one is set, so no stage ever runs with a default signing key or an empty
 * webhook secret. They are linked to every function; the handlers read them with `Resource.<Name>.value` from "sst"
 * (SST stores linked values encrypted in the function package and decrypts them with `SST_KEY` at runtime).
 */
export const SECRET_NAMES = [
  /** Ed25519 private key (PKCS#8 PEM) that signs job receipts. */
  "ReceiptSigningKey",
  /** HMAC key for the signatures on outbound webhooks to clients. */
  "WebhookSecret",
  /** Stripe's endpoint signing secret (`whsec_...`) for POST /v1/webhooks/stripe. */
  "StripeWebhookSecret",
  /** Shared secret that authenticates the chain adapter's POST /v1/webhooks/chain. */
  "ChainWebhookSecret",
] as const;

export type SecretName = (typeof SECRET_NAMES)[number];

export function createSecrets(): Record<SecretName, sst.Secret> {
  return Object.fromEntries(SECRET_NAMES.map((name) => [name, new sst.Secret(name)])) as Record<
    SecretName,
    sst.Secret
  >;
}

/**
 * Secrets, set per stage with `npx sst secret set <Name> <value> --stage <stage>` (docs/deploy.md), linked to every
 * function and read with `Resource.<Name>.value` from "sst" (SST stores linked values encrypted in the function
 * package and decrypts them with `SST_KEY` at runtime). None has a placeholder: a deploy fails until every one is
 * set, so no stage ever runs with a default signing key.
 *
 * The list names only secrets that code reads, each with the variable the code reads it from (`SECRET_ENV`): the
 * stack hands each function its value in that variable (sst.config.ts), so core/ reads one kind of configuration
 * offline and on AWS. Client webhook secrets are per account and per endpoint, generated and stored by the
 * coordinator (core/webhooks/secrets.ts), not deploy-time secrets.
 */
export const SECRET_ENV = {
  /** The receipt signing key (core/receipts/signing-key.ts): PEM PKCS#8, or base64url of the 32-byte seed. */
  ReceiptSigningKey: "COORD_RECEIPT_SIGNING_KEY",
  /** Stripe's API key and webhook signing secret (core/payments/config.ts). */
  StripeSecretKey: "COORD_STRIPE_SECRET_KEY",
  StripeWebhookSecret: "COORD_STRIPE_WEBHOOK_SECRET",
  /**
   * Settlement (core/settlement/config.ts): the chain node's JSON-RPC URL (a provider URL often embeds an API key),
   * the anchoring account's private key, and the chain webhook's signing key (Alchemy's).
   */
  ChainRpcUrl: "COORD_CHAIN_RPC_URL",
  AnchorPrivateKey: "COORD_ANCHOR_PRIVATE_KEY",
  ChainWebhookSecret: "COORD_CHAIN_WEBHOOK_SECRET",
} as const;

export const SECRET_NAMES = Object.keys(SECRET_ENV) as (keyof typeof SECRET_ENV)[];

export type SecretName = keyof typeof SECRET_ENV;

/** The secrets' values in the variables the code reads (see sst.config.ts for why an environment variable). */
export function secretEnvironment(
  secrets: Record<SecretName, sst.Secret>,
): Record<string, $util.Input<string>> {
  return Object.fromEntries(SECRET_NAMES.map((name) => [SECRET_ENV[name], secrets[name].value]));
}

export function createSecrets(): Record<SecretName, sst.Secret> {
  return Object.fromEntries(SECRET_NAMES.map((name) => [name, new sst.Secret(name)])) as Record<
    SecretName,
    sst.Secret
  >;
}

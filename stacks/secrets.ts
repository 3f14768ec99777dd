/**
 * Secrets, set per stage with `npx sst secret set <Name> <value> --stage <stage>` (docs/deploy.md), linked to every
 * function and read with `Resource.<Name>.value` from "sst" (SST stores linked values encrypted in the function
 * package and decrypts them with `SST_KEY` at runtime). None has a placeholder: a deploy fails until every one is
 * set, so no stage ever runs with a default signing key.
 *
 * The list names only secrets that code reads: none yet. Receipt signing, Stripe and the chain webhook add theirs
 * (e.g. `ReceiptSigningKey`, `StripeWebhookSecret`) together with the code that reads them, so that a deploy never
 * asks an operator for a value nothing uses. Client webhook secrets are per account and per endpoint, generated and
 * stored by the coordinator (core/webhooks/secrets.ts), not deploy-time secrets.
 */
export const SECRET_NAMES = [] as const satisfies readonly string[];

export type SecretName = (typeof SECRET_NAMES)[number];

export function createSecrets(): Record<SecretName, sst.Secret> {
  return Object.fromEntries(SECRET_NAMES.map((name) => [name, new sst.Secret(name)])) as Record<
    SecretName,
    sst.Secret
  >;
}

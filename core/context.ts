import type { AccountKind } from "./accounts/api-key.ts";

/** Who is calling: the account behind the API key. */
export interface Principal {
  accountId: string;
  kind: AccountKind;
  keyId: string;
  scopes: string[];
}

/** What every core call that writes gets: who asked and the correlation id carried into every event. */
export interface Ctx {
  principal?: Principal;
  correlationId?: string;
}

import type { AccountKind } from "./accounts/api-key.ts";

/** Who is calling: the account behind the API key. */
export interface Principal {
  accountId: string;
  kind: AccountKind;
  keyId: string;
  scopes: string[];
  /**
   * The key lineage: shared by a key, the keys delegated from it and the keys that replaced it by rotation. Rate
   * limits key on it so that minting more keys cannot multiply a key's allowance. Defaults to `keyId`.
   */
  lineageId?: string;
}

/** What every core call that writes gets: who asked and the correlation id carried into every event. */
export interface Ctx {
  principal?: Principal;
  correlationId?: string;
}

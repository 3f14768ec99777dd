import * as v from "valibot";
import type { Ctx } from "../context.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut } from "../db/outbox.ts";
import { transact } from "../db/transaction.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { knownId, newId } from "../ids.ts";
import {
  adjustBalance,
  listLedger,
  PAYOUT_CLEARING_ID,
  PLATFORM_FEE_IDS,
  TREASURY_ID,
} from "../ledger/ledger.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { type AccountKind, hashApiKey } from "./api-key.ts";
import { type IssuedKey, type KeyView, keyRecordExists, listKeys, mintRootKey } from "./keys.ts";
import { cursorWithin, type Page, PageQuery } from "./page.ts";
import { DEFAULT_SCOPES } from "./scopes.ts";
import { accountsPage, newAccountItem, putAccountIfAbsent, readAccount, thresholdUpdate } from "./store.ts";

export { authenticate, CreateKeyInput, type IssuedKey } from "./keys.ts";
export { DEFAULT_SCOPES } from "./scopes.ts";

export const CreateAccountInput = v.object({
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(200)),
  kind: v.picklist(["client", "miner", "admin"] as const),
});

export const AccountItem = v.object({
  id: v.string(),
  name: v.string(),
  kind: v.picklist(["client", "miner", "admin"] as const),
  available: v.number(),
  held: v.number(),
  /** Lifetime earnings after the platform fee, less operator refunds taken back (miner accounts). */
  earned: v.optional(v.number(), 0),
  /** Available micro-credits under which `account.low_balance.v1` fires (else COORD_LOW_BALANCE_THRESHOLD). */
  lowBalanceThreshold: v.optional(v.number()),
  createdAt: v.string(),
  version: v.number(),
});
export type Account = v.InferOutput<typeof AccountItem>;

export function accountView(a: Account) {
  return {
    id: a.id,
    name: a.name,
    kind: a.kind,
    // DESIGN's contract: `available` and `held` (micro-credits) at the top level; `balance` groups them too.
    available: a.available,
    held: a.held,
    balance: { available: a.available, held: a.held },
    earned: a.earned,
    low_balance_threshold: a.lowBalanceThreshold ?? setting("COORD_LOW_BALANCE_THRESHOLD"),
    currency: "micro-credits",
    created_at: a.createdAt,
  };
}
export type AccountView = ReturnType<typeof accountView>;

export async function createAccount(input: unknown, ctx: Ctx): Promise<Account> {
  const { name, kind } = parse(CreateAccountInput, input, "body");
  const now = new Date();
  const account: Account = {
    id: newId("acct", now.getTime()),
    name,
    kind,
    available: 0,
    held: 0,
    earned: 0,
    createdAt: now.toISOString(),
    version: 1,
  };
  await transact({
    account: newAccountItem(account),
    event: outboxPut({
      type: "account.created.v1",
      subjectPk: keys.account(account.id).PK,
      subject: account.id,
      seq: 1,
      accountId: account.id,
      correlationId: ctx.correlationId,
      actor: actorOf(ctx),
      data: { account_id: account.id, name, kind },
      at: now,
    }),
  });
  return account;
}

export async function getAccount(id: string, opts: { consistent?: boolean } = {}): Promise<Account> {
  // A malformed id is a 404 before any read (the treasury's well-known id is the one exception to the shape).
  if (id !== TREASURY_ID) knownId(id, "acct", "account");
  const item = await readAccount(id, opts.consistent);
  if (!item) throw new NotFoundError("account");
  return v.parse(AccountItem, item);
}

/** Every account, newest first, a page at a time (admin): one keys-only index query and one batch read per page. */
export async function listAccounts(query: unknown): Promise<Page<AccountView>> {
  const { cursor, limit } = parse(PageQuery, query, "query");
  const page = await accountsPage(limit ?? 50, cursor);
  return {
    items: page.items.map((i) => accountView(v.parse(AccountItem, i))),
    next_cursor: page.nextCursor,
  };
}

/** Mints a root key for an account (admin). The raw key is returned once and never stored. */
export async function createApiKey(accountId: string, input: unknown, ctx: Ctx): Promise<IssuedKey> {
  const account = await getAccount(accountId);
  return mintRootKey(account, input, ctx);
}

/** An account's keys (admin): 404 if the account does not exist. */
export async function listAccountKeys(accountId: string, query: unknown): Promise<Page<KeyView>> {
  await getAccount(accountId);
  return listKeys(accountId, query);
}

/**
 * Credits (amount > 0) or debits (amount < 0) an account against the treasury through the ledger (two entries that
 * sum to zero) and returns the account with its new balance. 404 for an unknown account, 402 for a debit beyond the
 * available balance.
 */
export async function adjustAccount(accountId: string, input: unknown, ctx: Ctx): Promise<Account> {
  if (accountId === TREASURY_ID) {
    throw new ValidationError([
      { path: "path.id", message: "the treasury is the counter-account of adjustments" },
    ]);
  }
  await getAccount(accountId);
  await adjustBalance(accountId, input, ctx);
  return getAccount(accountId, { consistent: true });
}

export const UpdateAccountInput = v.object({
  /** Available micro-credits under which `account.low_balance.v1` fires; null: back to the default. */
  low_balance_threshold: v.nullable(
    v.pipe(
      v.number(),
      v.safeInteger("low_balance_threshold must be an integer number of micro-credits"),
      v.minValue(0, "low_balance_threshold must not be negative"),
    ),
  ),
});

/** The caller changes its account's settings (today: the low-balance threshold); the change is an audited event. */
export async function updateAccount(accountId: string, input: unknown, ctx: Ctx): Promise<Account> {
  const { low_balance_threshold } = parse(UpdateAccountInput, input, "body");
  await transact({
    account: thresholdUpdate(accountId, low_balance_threshold),
    event: outboxPut({
      type: "account.updated.v1",
      subjectPk: keys.account(accountId).PK,
      subject: accountId,
      accountId,
      correlationId: ctx.correlationId,
      actor: actorOf(ctx),
      data: { account_id: accountId, low_balance_threshold },
    }),
  });
  return getAccount(accountId, { consistent: true });
}

export const LedgerQuery = PageQuery;

/** The caller's ledger, newest first. */
export async function accountLedger(accountId: string, query: unknown) {
  const { cursor, limit } = parse(LedgerQuery, query, "query");
  cursorWithin(cursor, { PK: keys.account(accountId).PK });
  const page = await listLedger(accountId, limit ?? 50, cursor);
  return { items: page.items, next_cursor: page.nextCursor ?? null };
}

export const BOOTSTRAP_ADMIN_ID = "acct_bootstrapadmin000000000000";

/** Creates a well-known account (bootstrap admin, treasury) if it does not exist yet. */
async function ensureAccount(id: string, name: string, kind: AccountKind): Promise<void> {
  const now = new Date().toISOString();
  await putAccountIfAbsent({ id, name, kind, available: 0, held: 0, createdAt: now, version: 1 });
}

/**
 * Makes sure the system accounts exist and that `key` authenticates as the bootstrap admin. Any `ak_` string of 32+
 * more characters is accepted as given (checksum or not), so automation can choose its key. A bootstrap key that an
 * admin revoked stays revoked across restarts.
 */
export async function ensureBootstrapAdmin(key: string): Promise<void> {
  if (!/^ak_.{32,}$/.test(key))
    throw new Error("COORD_BOOTSTRAP_ADMIN_KEY must be 'ak_' followed by 32+ characters");
  await ensureAccount(TREASURY_ID, "treasury", "admin");
  await ensureAccount(PAYOUT_CLEARING_ID, "payout clearing", "admin");
  await Promise.all(PLATFORM_FEE_IDS.map((id, k) => ensureAccount(id, `platform fee (shard ${k})`, "admin")));
  await ensureAccount(BOOTSTRAP_ADMIN_ID, "bootstrap admin", "admin");
  if (await keyRecordExists(hashApiKey(key))) return;
  await mintRootKey(
    { id: BOOTSTRAP_ADMIN_ID, kind: "admin" },
    { name: "bootstrap", scopes: DEFAULT_SCOPES.admin },
    {},
    key,
  );
}

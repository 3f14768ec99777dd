import { accountsPage, readAccount } from "../accounts/store.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";

/** One account's balances beside the sums of its ledger entries. */
export interface AccountCheck {
  account_id: string;
  available: number;
  held: number;
  entries: number;
  entries_available: number;
  entries_held: number;
  /** The account kept changing while it was read (a snapshot could not be taken): not judged. */
  unstable?: boolean;
}

export interface LedgerCheck {
  ok: boolean;
  accounts: number;
  entries: number;
  /**
   * Every entry written before `entries_before` summed, over all accounts: zero when every posting balanced. Later
   * entries are left out of this sum, since the accounts are read one after another and a posting committed
   * meanwhile could be seen on one side only; they are in each account's own check.
   */
  sum_of_entries: number;
  entries_before: string;
  mismatches: AccountCheck[];
  unstable: string[];
  checked_at: string;
}

/** The sums of an account's ledger entries, read strongly consistently page by page. */
async function sumEntries(
  accountId: string,
  before: string,
): Promise<{ count: number; available: number; held: number; settled: number }> {
  const sums = { count: 0, available: 0, held: 0, settled: 0 };
  let cursor: string | undefined;
  do {
    const page = await queryPage({
      partition: keys.account(accountId).PK,
      skPrefix: "LEDGER#",
      limit: 500,
      cursor,
      consistent: true,
    });
    for (const e of page.items) {
      sums.count++;
      const delta = { a: Number(e.deltaAvailable ?? 0), h: Number(e.deltaHeld ?? 0) };
      sums.available += delta.a;
      sums.held += delta.h;
      if (String(e.createdAt) < before) sums.settled += delta.a + delta.h;
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return sums;
}

/**
 * One account against its entries. A balance and its entry are written in one transaction, so the account item's
 * version read before and after the entries tells whether what was summed is one consistent snapshot; a busy
 * account is read again (a few times), then reported unstable rather than judged on a torn read.
 */
async function checkAccount(
  accountId: string,
  entriesBefore: string,
  attempts = 5,
): Promise<AccountCheck & { settled: number }> {
  let last: (AccountCheck & { settled: number }) | undefined;
  for (let i = 0; i < attempts; i++) {
    const before = await readAccount(accountId, true);
    const sums = await sumEntries(accountId, entriesBefore);
    const after = await readAccount(accountId, true);
    last = {
      account_id: accountId,
      available: Number(after?.available ?? 0),
      held: Number(after?.held ?? 0),
      entries: sums.count,
      entries_available: sums.available,
      entries_held: sums.held,
      settled: sums.settled,
    };
    if (before?.version === after?.version) return last;
  }
  return { ...(last as AccountCheck & { settled: number }), unstable: true };
}

/**
 * The ledger's proof (admin): every account's balances equal the sums of its entries, and all entries of all accounts
 * sum to zero (each posting moves money between accounts, the treasury included, and creates none). It reads every
 * account and every entry: an operator's check, not a dashboard poll.
 */
export async function checkLedger(): Promise<LedgerCheck> {
  // A posting's entries carry the writer's clock from before its transaction: anything dated 10 s before this check
  // began is committed on every side (clock skew and a slow commit allowed for), so summing those is consistent.
  const entriesBefore = new Date(Date.now() - 10_000).toISOString();
  const checks: (AccountCheck & { settled: number })[] = [];
  let cursor: string | undefined;
  do {
    const page = await accountsPage(100, cursor);
    const ids = page.items.map((a) => String(a.id));
    // A few accounts at a time: each check is a few reads, and the table serves the job path meanwhile.
    for (let i = 0; i < ids.length; i += 8) {
      checks.push(...(await Promise.all(ids.slice(i, i + 8).map((id) => checkAccount(id, entriesBefore)))));
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  const judged = checks.filter((c) => !c.unstable);
  const mismatches = judged.filter((c) => c.available !== c.entries_available || c.held !== c.entries_held);
  const sum = checks.reduce((s, c) => s + c.settled, 0);
  const unstable = checks.filter((c) => c.unstable).map((c) => c.account_id);
  return {
    ok: mismatches.length === 0 && sum === 0 && unstable.length === 0,
    accounts: checks.length,
    entries: checks.reduce((s, c) => s + c.entries, 0),
    sum_of_entries: sum,
    entries_before: entriesBefore,
    mismatches: mismatches.map(({ settled: _, ...m }) => m),
    unstable,
    checked_at: new Date().toISOString(),
  };
}

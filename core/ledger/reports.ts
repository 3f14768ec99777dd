import * as v from "valibot";
import { readAccount } from "../accounts/store.ts";
import { csvRow } from "../csv.ts";
import { keys } from "../db/keys.ts";
import { queryPage } from "../db/page.ts";
import { ValidationError } from "../errors.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { type EntryKind, PLATFORM_FEE_IDS } from "./ledger.ts";

/**
 * The money reports, read from the ledger entries (an account's partition, `SK = LEDGER#<created_at>#<entry id>`, so a
 * time range is a sort-key range): an account's whole ledger as CSV, oldest first; a miner's earnings by UTC day; the
 * platform fee accounts' fees by UTC day. One day aggregation (`dayTally`) serves both daily reports.
 */

const DAY_MS = 86_400_000;
/** The window of a daily report without `from` (days, `to` included). */
export const DEFAULT_REPORT_DAYS = 30;
/** The widest window of a daily report (days, both ends included). */
export const MAX_REPORT_DAYS = 366;
/** Ledger entries read per query. */
export const REPORT_PAGE_SIZE = 500;
/** No entry is older; the earliest day or instant a report takes. */
const EPOCH_DAY = "1970-01-01";

// ---- dates ----

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:\d{2})?)?$/;

/** A real calendar day `YYYY-MM-DD` from 1970 on (`2030-02-30` is not one). */
export function isDay(s: string): boolean {
  if (!DAY.test(s) || s < EPOCH_DAY) return false;
  const t = Date.parse(`${s}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === s;
}

/**
 * An ISO 8601 date (`2030-01-01`, midnight UTC) or date-time (`2030-01-01T10:00:00Z`, `...+02:00`; without an offset,
 * UTC), as the UTC timestamp the ledger's keys carry (`2030-01-01T10:00:00.000Z`); undefined if it is none.
 */
export function parseInstant(s: string): string | undefined {
  const m = INSTANT.exec(s);
  const [, day, time, zone] = m ?? [];
  if (!day || !isDay(day)) return undefined;
  const t = Date.parse(time ? `${day}T${time}${zone ?? "Z"}` : `${day}T00:00:00Z`);
  if (Number.isNaN(t)) return undefined;
  const iso = new Date(t).toISOString();
  // Four-digit years from 1970 only: the keys compare as text.
  return /^\d{4}-/.test(iso) && iso >= EPOCH_DAY ? iso : undefined;
}

export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

const instant = (name: string) =>
  v.optional(
    v.pipe(
      v.string(),
      v.check(
        (s) => parseInstant(s) !== undefined,
        `${name} must be an ISO 8601 date or date-time, e.g. 2030-01-01 or 2030-01-01T00:00:00Z`,
      ),
      v.transform((s) => parseInstant(s) as string),
    ),
  );

const day = (name: string) =>
  v.optional(v.pipe(v.string(), v.check(isDay, `${name} must be a UTC day, YYYY-MM-DD`)));

/** `GET /v1/account/ledger.csv?from=&to=`: a time range, `to` excluded. */
export const LedgerCsvQuery = v.object({ from: instant("from"), to: instant("to") });

/** The daily reports' `?from=&to=`: UTC days, both included. */
export const DayReportQuery = v.object({ from: day("from"), to: day("to") });

export interface InstantRange {
  from?: string;
  to?: string;
}

/** The CSV's range: either end optional, `from` not after `to`. */
export function ledgerRange(query: unknown): InstantRange {
  const { from, to } = parse(LedgerCsvQuery, query, "query");
  if (from && to && from > to) {
    throw new ValidationError([{ path: "query.from", message: "from must not be after to" }]);
  }
  return { from, to };
}

export interface DayRange {
  /** First UTC day, included. */
  from: string;
  /** Last UTC day, included. */
  to: string;
}

/** A daily report's days: by default the last 30 up to today (UTC) included; at most 366. */
export function dayRange(query: unknown, now = new Date()): DayRange {
  const q = parse(DayReportQuery, query, "query");
  const to = q.to ?? now.toISOString().slice(0, 10);
  const from = q.from ?? maxDay(addDays(to, 1 - DEFAULT_REPORT_DAYS), EPOCH_DAY);
  if (from > to) throw new ValidationError([{ path: "query.from", message: "from must not be after to" }]);
  const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
  if (days > MAX_REPORT_DAYS) {
    throw new ValidationError([
      { path: "query.from", message: `a report spans at most ${MAX_REPORT_DAYS} days, from and to included` },
    ]);
  }
  return { from, to };
}

const maxDay = (a: string, b: string) => (a > b ? a : b);

// ---- reading entries ----

const EntryItem = v.object({
  entryId: v.string(),
  createdAt: v.string(),
  kind: v.string(),
  deltaAvailable: v.number(),
  deltaHeld: v.number(),
  jobId: v.optional(v.string()),
  reason: v.optional(v.string()),
});
export type LedgerEntry = v.InferOutput<typeof EntryItem>;

/** Sort-key bounds (both inclusive) of an account's entries created in [from, to). */
function instantBounds(accountId: string, range: InstantRange) {
  // An entry created exactly at `to` sorts after `LEDGER#<to>` (its key goes on with `#<entry id>`): excluded.
  return {
    from: keys.ledgerEntry(accountId, range.from ?? "").SK,
    to: keys.ledgerEntry(accountId, range.to ?? "~").SK,
  };
}

/** Sort-key bounds of an account's entries created on the days `from` to `to`, both included. */
function dayBounds(accountId: string, range: DayRange) {
  // Every key of day D starts `LEDGER#<D>T`, and `~` sorts after `T`.
  return {
    from: keys.ledgerEntry(accountId, range.from).SK,
    to: keys.ledgerEntry(accountId, `${range.to}~`).SK,
  };
}

export interface ReadOptions {
  /** Entries per query (default REPORT_PAGE_SIZE). */
  pageSize?: number;
}

/** An account's entries between two sort keys, oldest first, a page (one Query) at a time. */
async function* entryPages(
  accountId: string,
  bounds: { from: string; to: string },
  opts: ReadOptions & { kinds?: readonly EntryKind[] } = {},
): AsyncGenerator<LedgerEntry[]> {
  const kinds = opts.kinds ?? [];
  const filter = kinds.length
    ? {
        expression: `#kind IN (${kinds.map((_, i) => `:kind${i}`).join(", ")})`,
        names: { "#kind": "kind" },
        values: Object.fromEntries(kinds.map((k, i) => [`:kind${i}`, k])),
      }
    : undefined;
  let cursor: string | undefined;
  do {
    const page = await queryPage({
      partition: keys.account(accountId).PK,
      skBetween: bounds,
      limit: opts.pageSize ?? REPORT_PAGE_SIZE,
      cursor,
      filter,
    });
    yield page.items.map((i) => v.parse(EntryItem, i));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}

// ---- the ledger as CSV ----

export const LEDGER_CSV_COLUMNS = [
  "id",
  "created_at",
  "kind",
  "delta_available",
  "delta_held",
  "job_id",
  "reason",
] as const;

function ledgerCsvRow(e: LedgerEntry): string {
  return csvRow([e.entryId, e.createdAt, e.kind, e.deltaAvailable, e.deltaHeld, e.jobId, e.reason]);
}

/**
 * An account's ledger entries created in [from, to) (either end optional), oldest first, as CSV: a header record,
 * then one record per entry, produced a page of entries at a time. The first page is read before this returns, so a
 * bad request or a failed read is the request's error rather than a file cut short.
 */
export async function ledgerCsv(
  accountId: string,
  query: unknown,
  opts: ReadOptions = {},
): Promise<AsyncIterable<string>> {
  const pages = entryPages(accountId, instantBounds(accountId, ledgerRange(query)), opts);
  const first = await pages.next();
  return (async function* () {
    yield csvRow(LEDGER_CSV_COLUMNS);
    if (first.done) return;
    yield first.value.map(ledgerCsvRow).join("");
    for await (const page of pages) yield page.map(ledgerCsvRow).join("");
  })();
}

// ---- daily reports ----

/** What the daily aggregation reads of an entry. */
export type TalliedEntry = Pick<LedgerEntry, "kind" | "deltaAvailable" | "createdAt">;

export type DayAmounts<C extends string> = { jobs: number } & { [K in C]: number } & {
  refunded: number;
  net: number;
};
export type DayRow<C extends string> = { day: string } & DayAmounts<C>;

export interface DayReport<C extends string> {
  /** One row per UTC day with entries, ascending. */
  days: DayRow<C>[];
  totals: DayAmounts<C>;
}

export interface DayTally<C extends string> {
  add(entry: TalliedEntry): void;
  result(): DayReport<C>;
}

/**
 * The one day aggregation of the daily reports. Per UTC day of `created_at`: `jobs` is the number of entries of kind
 * `credit` (a job's earning, or its fee), `<column>` their sum; `refunded` what operators' refunds took back on the
 * account that day (minus the sum of its `job_refund` debits: a refund's credit, on the client's account, is money
 * coming back, not earnings taken back); `net = <column> - refunded`.
 */
export function dayTally<C extends string>(credit: "earning" | "fee", column: C): DayTally<C> {
  const days = new Map<string, { jobs: number; credited: number; refunded: number }>();
  const amounts = (r: { jobs: number; credited: number; refunded: number }) =>
    ({
      jobs: r.jobs,
      [column]: r.credited,
      refunded: r.refunded,
      net: r.credited - r.refunded,
    }) as DayAmounts<C>;
  return {
    add(e) {
      const credited = e.kind === credit;
      const takenBack = e.kind === "job_refund" && e.deltaAvailable < 0;
      if (!credited && !takenBack) return;
      const key = e.createdAt.slice(0, 10);
      const row = days.get(key) ?? { jobs: 0, credited: 0, refunded: 0 };
      days.set(key, row);
      if (credited) {
        row.jobs++;
        row.credited += e.deltaAvailable;
      } else row.refunded -= e.deltaAvailable;
    },
    result() {
      const sorted = [...days.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const total = { jobs: 0, credited: 0, refunded: 0 };
      for (const [, r] of sorted) {
        total.jobs += r.jobs;
        total.credited += r.credited;
        total.refunded += r.refunded;
      }
      return {
        days: sorted.map(([key, r]) => ({ day: key, ...amounts(r) }) as DayRow<C>),
        totals: amounts(total),
      };
    },
  };
}

/** `dayTally` over a list of entries. */
export function aggregateDays<C extends string>(
  entries: Iterable<TalliedEntry>,
  credit: "earning" | "fee",
  column: C,
): DayReport<C> {
  const tally = dayTally(credit, column);
  for (const e of entries) tally.add(e);
  return tally.result();
}

/** Feeds an account's entries of `credit` and `job_refund` on the range's days into `tally`. */
async function tallyAccount<C extends string>(
  tally: DayTally<C>,
  credit: "earning" | "fee",
  accountId: string,
  range: DayRange,
  opts: ReadOptions,
): Promise<void> {
  const kinds: EntryKind[] = [credit, "job_refund"];
  for await (const page of entryPages(accountId, dayBounds(accountId, range), { ...opts, kinds })) {
    for (const e of page) tally.add(e);
  }
}

/** `GET /v1/account/earnings`: an account's earnings (after the platform fee) and refunds taken back, by UTC day. */
export async function earningsReport(accountId: string, query: unknown, opts: ReadOptions = {}) {
  const range = dayRange(query);
  const tally = dayTally("earning", "earned");
  await tallyAccount(tally, "earning", accountId, range, opts);
  return { account_id: accountId, ...range, currency: "micro-credits" as const, ...tally.result() };
}

/**
 * `GET /v1/admin/platform/fees`: the platform's fee balance (the sum over its shard accounts) and its fees and refunds
 * taken back, by UTC day, over every shard.
 */
export async function platformFeeReport(query: unknown, opts: ReadOptions = {}) {
  const range = dayRange(query);
  const tally = dayTally("fee", "fees");
  const [balances] = await Promise.all([
    Promise.all(PLATFORM_FEE_IDS.map((id) => readAccount(id))),
    ...PLATFORM_FEE_IDS.map((id) => tallyAccount(tally, "fee", id, range, opts)),
  ]);
  return {
    fee_bps: setting("COORD_PLATFORM_FEE_BPS"),
    accounts: PLATFORM_FEE_IDS,
    available: balances.reduce((sum, a) => sum + Number(a?.available ?? 0), 0),
    ...range,
    currency: "micro-credits" as const,
    ...tally.result(),
  };
}

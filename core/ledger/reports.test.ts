import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { csvField, csvRow } from "../csv.ts";
import { ValidationError } from "../errors.ts";
import {
  addDays,
  aggregateDays,
  dayRange,
  isDay,
  ledgerRange,
  parseInstant,
  type TalliedEntry,
} from "./reports.ts";

const entry = (kind: string, deltaAvailable: number, createdAt: string): TalliedEntry => ({
  kind,
  deltaAvailable,
  createdAt,
});

/** The issues a ValidationError names, or a failure if `fn` does not throw one. */
function issues(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.issues;
    throw err;
  }
  throw new Error("expected a ValidationError");
}

describe("day aggregation", () => {
  it("buckets earnings and refunds taken back by UTC day, ascending, and ignores other kinds", () => {
    const report = aggregateDays(
      [
        entry("earning", 900, "2030-01-02T23:59:59.999Z"),
        entry("hold", -1000, "2030-01-01T10:00:00.000Z"),
        entry("earning", 450, "2030-01-01T00:00:00.000Z"),
        entry("earning", 900, "2030-01-02T00:00:00.000Z"),
        entry("job_refund", -300, "2030-01-02T12:00:00.000Z"),
        entry("fee", 100, "2030-01-02T12:00:00.000Z"),
        entry("job_refund", -50, "2030-01-04T08:00:00.000Z"),
        // A refund's credit (on a client's account) is money back, not earnings taken back.
        entry("job_refund", 700, "2030-01-04T08:00:00.000Z"),
      ],
      "earning",
      "earned",
    );
    expect(report.days).toEqual([
      { day: "2030-01-01", jobs: 1, earned: 450, refunded: 0, net: 450 },
      { day: "2030-01-02", jobs: 2, earned: 1800, refunded: 300, net: 1500 },
      { day: "2030-01-04", jobs: 0, earned: 0, refunded: 50, net: -50 },
    ]);
    expect(report.totals).toEqual({ jobs: 3, earned: 2250, refunded: 350, net: 1900 });
    // The keys come in the documented order.
    expect(Object.keys(report.days[0] ?? {})).toEqual(["day", "jobs", "earned", "refunded", "net"]);
  });

  it("serves the fee report with the same rules under its own column", () => {
    const report = aggregateDays(
      [entry("fee", 123, "2030-01-01T01:00:00.000Z"), entry("earning", 999, "2030-01-01T01:00:00.000Z")],
      "fee",
      "fees",
    );
    expect(report).toEqual({
      days: [{ day: "2030-01-01", jobs: 1, fees: 123, refunded: 0, net: 123 }],
      totals: { jobs: 1, fees: 123, refunded: 0, net: 123 },
    });
    expect(aggregateDays([], "fee", "fees")).toEqual({
      days: [],
      totals: { jobs: 0, fees: 0, refunded: 0, net: 0 },
    });
  });

  it("totals are the sums of the days, each row's net is earned - refunded, days ascend and are distinct", () => {
    const T0 = Date.parse("2029-12-25T00:00:00.000Z");
    const anEntry = fc.record({
      kind: fc.constantFrom("earning", "job_refund", "fee", "charge", "hold", "adjustment"),
      deltaAvailable: fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }),
      createdAt: fc
        .integer({ min: 0, max: 40 * 86_400_000 - 1 })
        .map((ms) => new Date(T0 + ms).toISOString()),
    });
    fc.assert(
      fc.property(fc.array(anEntry, { maxLength: 200 }), (entries) => {
        const { days, totals } = aggregateDays(entries, "earning", "earned");
        const sum = (f: (r: (typeof days)[number]) => number) => days.reduce((s, r) => s + f(r), 0);
        expect(totals).toEqual({
          jobs: sum((r) => r.jobs),
          earned: sum((r) => r.earned),
          refunded: sum((r) => r.refunded),
          net: sum((r) => r.net),
        });
        for (const r of days) expect(r.net).toBe(r.earned - r.refunded);
        expect(days.map((r) => r.day)).toEqual(
          [...new Set(entries.map((e) => e.createdAt.slice(0, 10)))]
            .filter((d) => days.some((r) => r.day === d))
            .sort(),
        );
        // Each day's row is exactly that day's entries.
        for (const r of days) {
          const mine = entries.filter((e) => e.createdAt.startsWith(r.day));
          const earnings = mine.filter((e) => e.kind === "earning");
          expect(r.jobs).toBe(earnings.length);
          expect(r.earned).toBe(earnings.reduce((s, e) => s + e.deltaAvailable, 0));
          expect(r.refunded).toBe(
            0 -
              mine
                .filter((e) => e.kind === "job_refund" && e.deltaAvailable < 0)
                .reduce((s, e) => s + e.deltaAvailable, 0),
          );
        }
        expect(totals.jobs).toBe(entries.filter((e) => e.kind === "earning").length);
      }),
    );
  });
});

describe("dates", () => {
  it("takes real calendar days only", () => {
    expect(isDay("2030-01-31")).toBe(true);
    expect(isDay("2028-02-29")).toBe(true);
    for (const bad of ["2030-02-30", "2029-02-29", "2030-13-01", "2030-1-1", "20300101", "1969-12-31", "x"]) {
      expect(isDay(bad), bad).toBe(false);
    }
    expect(addDays("2030-03-01", -1)).toBe("2030-02-28");
    expect(addDays("2030-12-31", 1)).toBe("2031-01-01");
  });

  it("reads an ISO date or date-time as the UTC timestamp of the ledger's keys", () => {
    expect(parseInstant("2030-01-01")).toBe("2030-01-01T00:00:00.000Z");
    expect(parseInstant("2030-01-01T10:00:00Z")).toBe("2030-01-01T10:00:00.000Z");
    expect(parseInstant("2030-01-01T10:00:00.5Z")).toBe("2030-01-01T10:00:00.500Z");
    expect(parseInstant("2030-01-01T10:00Z")).toBe("2030-01-01T10:00:00.000Z");
    expect(parseInstant("2030-01-01T01:00:00+02:00")).toBe("2029-12-31T23:00:00.000Z");
    // Without an offset: UTC, whatever the server's time zone.
    expect(parseInstant("2030-01-01T10:00:00")).toBe("2030-01-01T10:00:00.000Z");
    for (const bad of [
      "yesterday",
      "2030-02-30",
      "2030-01-01T25:00:00Z",
      "2030-01-01T10:60:00Z",
      "2030-01-01 10:00:00Z",
      "2030-01-01T10:00:00+0200",
      "1969-12-31T23:59:59Z",
      "1970-01-01T00:30:00+01:00",
      "9999-12-31T23:00:00-05:00",
      "x".repeat(3000),
    ]) {
      expect(parseInstant(bad), bad).toBeUndefined();
    }
  });

  it("a CSV range has optional ends, from not after to, and names the field it refuses", () => {
    expect(ledgerRange({})).toEqual({ from: undefined, to: undefined });
    expect(ledgerRange({ from: "2030-01-01", to: "2030-01-01T00:00:00Z" })).toEqual({
      from: "2030-01-01T00:00:00.000Z",
      to: "2030-01-01T00:00:00.000Z",
    });
    expect(issues(() => ledgerRange({ from: "yesterday" }))[0]?.path).toBe("query.from");
    expect(issues(() => ledgerRange({ to: "2030-02-30" }))[0]?.path).toBe("query.to");
    expect(issues(() => ledgerRange({ from: "2030-01-02", to: "2030-01-01" }))[0]?.path).toBe("query.from");
  });

  it("a daily report defaults to the last 30 UTC days up to today and spans at most 366", () => {
    const now = new Date("2030-03-10T23:59:00Z");
    expect(dayRange({}, now)).toEqual({ from: "2030-02-09", to: "2030-03-10" });
    expect(dayRange({ to: "2030-01-30" }, now)).toEqual({ from: "2030-01-01", to: "2030-01-30" });
    expect(dayRange({ from: "2030-03-01" }, now)).toEqual({ from: "2030-03-01", to: "2030-03-10" });
    expect(dayRange({ from: "2030-03-10", to: "2030-03-10" }, now)).toEqual({
      from: "2030-03-10",
      to: "2030-03-10",
    });
    expect(dayRange({ from: "2028-01-01", to: "2028-12-31" }, now)).toEqual({
      from: "2028-01-01",
      to: "2028-12-31",
    });
    expect(dayRange({ to: "1970-01-05" }, now)).toEqual({ from: "1970-01-01", to: "1970-01-05" });
    expect(issues(() => dayRange({ from: "2028-01-01", to: "2029-01-01" }, now))[0]?.path).toBe("query.from");
    expect(issues(() => dayRange({ from: "2030-03-11" }, now))[0]?.path).toBe("query.from");
    expect(issues(() => dayRange({ from: "2030-03-01T00:00:00Z" }, now))[0]?.path).toBe("query.from");
    expect(issues(() => dayRange({ to: "2030-02-30" }, now))[0]?.path).toBe("query.to");
  });

  it("every day range's bounds hold: from <= to, at most 366 days, defaults inside", () => {
    const aDay = fc.integer({ min: 0, max: 20_000 }).map((n) => addDays("2000-01-01", n));
    fc.assert(
      fc.property(fc.option(aDay), fc.option(aDay), aDay, (from, to, today) => {
        const now = new Date(`${today}T12:00:00Z`);
        const query = { ...(from ? { from } : {}), ...(to ? { to } : {}) };
        let range: { from: string; to: string };
        try {
          range = dayRange(query, now);
        } catch (err) {
          expect(err).toBeInstanceOf(ValidationError);
          return;
        }
        expect(range.from <= range.to).toBe(true);
        expect((Date.parse(range.to) - Date.parse(range.from)) / 86_400_000 + 1).toBeLessThanOrEqual(366);
        expect(range.from).toBe(from ?? range.from);
        expect(range.to).toBe(to ?? today);
      }),
    );
  });
});

describe("csv", () => {
  it("escapes text, guards formulas, and writes numbers as numbers", () => {
    expect(csvField('refund, "goodwill"\nline two')).toBe('"refund, ""goodwill""\nline two"');
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvField("-5 off")).toBe("'-5 off");
    expect(csvField(-500)).toBe("-500");
    expect(csvField(undefined)).toBe("");
    expect(csvField({ a: 1 })).toBe('"{""a"":1}"');
    expect(csvRow(["a", -1, undefined, "b,c"])).toBe('a,-1,,"b,c"\r\n');
  });
});

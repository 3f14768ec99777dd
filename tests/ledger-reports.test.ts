import { QueryCommand, type QueryCommandOutput } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import { PLATFORM_FEE_IDS, platformFeeAccountOf } from "../core/ledger/ledger.ts";
import { earningsReport, ledgerCsv } from "../core/ledger/reports.ts";
import { parseCsv } from "./csv.ts";
import {
  api,
  createAccount,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";

type Obj = Record<string, unknown>;
type Row = { day: string; jobs: number; refunded: number; net: number } & Record<string, number | string>;
interface DayReport {
  from: string;
  to: string;
  currency: string;
  days: Row[];
  totals: Record<string, number>;
}
type Earnings = DayReport & { account_id: string };
type Fees = DayReport & { fee_bps: number; accounts: string[]; available: number };

const HEADER = ["id", "created_at", "kind", "delta_available", "delta_held", "job_id", "reason"];
const UNIT_PRICE = 12_345;
const today = () => new Date().toISOString().slice(0, 10);

/** An account's ledger entries straight from the table, in key order (oldest first), `SK` from..to inclusive. */
async function tableEntries(accountId: string, from = "LEDGER#", to = "LEDGER#~") {
  const items: Obj[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out: QueryCommandOutput = await ddb().send(
      new QueryCommand({
        TableName: stack.tableName,
        KeyConditionExpression: "PK = :pk AND SK BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":pk": `ACCOUNT#${accountId}`, ":from": from, ":to": to },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

const csv = (key: string, query = "") => api("GET", `/v1/account/ledger.csv${query}`, { key });

/** Completes `n` echo jobs of `client` on `miner` (priced at UNIT_PRICE a unit; echo meters one unit). */
async function completeJobs(client: { key: string }, miner: TestMiner, constraints: Obj, n: number) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sub = await submitEcho(client, { constraints, max_price: 100_000 });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    expect(job?.job_id).toBe(sub.body.id);
    const done = await minerCall(miner, sub.body.id, "result", { claim_token: job?.claim_token, output: {} });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ status: "completed", price: UNIT_PRICE });
    ids.push(sub.body.id);
  }
  return ids;
}

const feeReport = (query = "") =>
  api<Fees>("GET", `/v1/admin/platform/fees${query}`, { key: stack.adminKey });

describe("the ledger as CSV", () => {
  let client: { id: string; key: string };
  let jobId: string;
  const reason = 'goodwill, "as agreed"\nsecond line';

  beforeAll(async () => {
    const { region, constraints } = isolated();
    client = await fundedClient(10_000_000);
    for (const [amount, why] of [
      [500, reason],
      [-200, '=HYPERLINK("http://evil")'],
    ] as const) {
      const res = await api("POST", `/v1/admin/accounts/${client.id}/adjust`, {
        key: stack.adminKey,
        body: { amount, reason: why },
      });
      expect(res.status, res.text).toBeLessThan(300);
    }
    const miner = await registeredMiner({ region, prices: { echo: UNIT_PRICE } });
    [jobId] = (await completeJobs(client, miner, constraints, 1)) as [string];
  });

  it("holds a header and every entry of the account exactly once, oldest first, with fields escaped", async () => {
    const res = await csv(client.key);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="ledger.csv"');
    const [header, ...rows] = parseCsv(res.text);
    expect(header).toEqual(HEADER);
    expect(rows.every((r) => r.length === HEADER.length)).toBe(true);

    const entries = await tableEntries(client.id);
    // funding, the two adjustments, the job's hold and charge
    expect(entries).toHaveLength(5);
    expect(rows.map((r) => r[0])).toEqual(entries.map((e) => e.entryId));
    expect(rows).toEqual(
      entries.map((e) => [
        e.entryId,
        e.createdAt,
        e.kind,
        String(e.deltaAvailable),
        String(e.deltaHeld),
        e.jobId ?? "",
        e.reason === undefined ? "" : String(e.reason).startsWith("=") ? `'${e.reason}` : e.reason,
      ]),
    );
    const times = rows.map((r) => r[1] as string);
    expect(times).toEqual([...times].sort());
    // The cursor listing (newest first) holds the same entries the other way round.
    const listed = await api<{ items: { id: string }[] }>("GET", "/v1/account/ledger?limit=100", {
      key: client.key,
    });
    expect(listed.body.items.map((e) => e.id)).toEqual(rows.map((r) => r[0]).reverse());

    // A comma, quotes and a line break: one quoted field, quotes doubled; a formula is defused; numbers stay numbers.
    expect(res.text).toContain('"goodwill, ""as agreed""\nsecond line"');
    expect(rows.find((r) => r[3] === "500")?.[6]).toBe(reason);
    expect(rows.find((r) => r[3] === "-200")?.[6]).toBe(`'=HYPERLINK("http://evil")`);
    expect(rows.filter((r) => r[5] === jobId).map((r) => r[2])).toEqual(["hold", "charge"]);
  });

  it("reads entries a page at a time into the same file", async () => {
    const whole = (await csv(client.key)).text;
    let paged = "";
    for await (const chunk of await ledgerCsv(client.id, {}, { pageSize: 2 })) paged += chunk;
    expect(paged).toBe(whole);
  });

  it("filters on from (included) and to (excluded), as dates or date-times", async () => {
    const [, ...all] = parseCsv((await csv(client.key)).text);
    const times = all.map((r) => r[1] as string);
    const from = times[1] as string;
    const to = times[4] as string;
    const window = parseCsv((await csv(client.key, `?from=${from}&to=${to}`)).text).slice(1);
    expect(window).toEqual(all.filter((r) => (r[1] as string) >= from && (r[1] as string) < to));
    expect(window.length).toBeGreaterThanOrEqual(1);
    // An offset is the same instant in UTC.
    const shifted = new Date(Date.parse(from) + 2 * 3_600_000).toISOString().replace("Z", "+02:00");
    expect(parseCsv((await csv(client.key, `?from=${encodeURIComponent(shifted)}`)).text).slice(1)).toEqual(
      all.filter((r) => (r[1] as string) >= from),
    );
    const day = times[0]?.slice(0, 10) as string;
    expect(parseCsv((await csv(client.key, `?from=${day}`)).text).slice(1)).toEqual(all);
    expect(parseCsv((await csv(client.key, `?to=${times[0]}`)).text)).toEqual([HEADER]);
    expect(parseCsv((await csv(client.key, "?from=2000-01-01&to=2000-01-02")).text)).toEqual([HEADER]);
  });

  it("refuses a malformed or reversed range with 422 naming the field", async () => {
    for (const [query, path] of [
      ["?from=yesterday", "query.from"],
      ["?from=2030-02-30", "query.from"],
      ["?to=2030-01-01T25:00:00Z", "query.to"],
      ["?from=2030-01-02&to=2030-01-01", "query.from"],
    ] as const) {
      const res = await csv(client.key, query);
      expect(res.status, query).toBe(422);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(JSON.stringify(res.body), query).toContain(path);
    }
  });

  it("is the caller's own: another account's export holds none of these entries", async () => {
    const other = await createAccount("miner");
    const res = await csv(other.key);
    expect(res.status).toBe(200);
    expect(parseCsv(res.text)).toEqual([HEADER]);
  });
});

describe("earnings and platform fees by day", () => {
  /** Every fee-shard entry the fee report counts on `day`, straight from the table. */
  async function feeEntries(day: string) {
    const shards = await Promise.all(
      PLATFORM_FEE_IDS.map((id) => tableEntries(id, `LEDGER#${day}`, `LEDGER#${day}~`)),
    );
    return shards
      .flat()
      .filter((e) => e.kind === "fee" || (e.kind === "job_refund" && Number(e.deltaAvailable) < 0));
  }

  /**
   * The fee report of `day` read between two identical reads of the shards' entries: other tests complete jobs
   * meanwhile, so a report is judged only against the entries that were there while it was read.
   */
  async function stableFeeReport(day: string) {
    for (let i = 0; i < 20; i++) {
      const before = await feeEntries(day);
      const report = await feeReport(`?from=${day}&to=${day}`);
      expect(report.status, report.text).toBe(200);
      const after = await feeEntries(day);
      const ids = (es: Obj[]) => es.map((e) => `${e.PK}/${e.SK}`).sort();
      if (JSON.stringify(ids(before)) === JSON.stringify(ids(after))) {
        const row = report.body.days.find((r) => r.day === day) ?? { jobs: 0, fees: 0, refunded: 0, net: 0 };
        return { report: report.body, row, entries: after };
      }
    }
    throw new Error("the fee shards kept changing");
  }

  const sum = (es: Obj[]) => es.reduce((s, e) => s + Number(e.deltaAvailable), 0);

  it("a miner's earnings match its completed jobs, and the day's fees grow by exactly its jobs' fees", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, prices: { echo: UNIT_PRICE } });
    const day = today();

    const before = await stableFeeReport(day);
    // The report agrees with the entries it was read among.
    const fees = before.entries.filter((e) => e.kind === "fee");
    expect(before.row).toMatchObject({
      jobs: fees.length,
      fees: sum(fees),
      refunded: 0 - sum(before.entries.filter((e) => e.kind === "job_refund")),
    });

    const jobs = await completeJobs(client, miner, constraints, 3);
    const { fee_bps: bps } = before.report;
    const fee = Math.floor((UNIT_PRICE * bps) / 10_000);
    const earning = UNIT_PRICE - fee;

    const earnings = await api<Earnings>("GET", "/v1/account/earnings", { key: miner.key });
    expect(earnings.status, earnings.text).toBe(200);
    const row = { day, jobs: 3, earned: 3 * earning, refunded: 0, net: 3 * earning };
    expect(earnings.body).toEqual({
      account_id: miner.accountId,
      from: new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10),
      to: day,
      currency: "micro-credits",
      days: [row],
      totals: { jobs: 3, earned: 3 * earning, refunded: 0, net: 3 * earning },
    });
    // The account's lifetime `earned` is the report's net over all its days.
    expect((await api<Obj>("GET", "/v1/account", { key: miner.key })).body.earned).toBe(3 * earning);
    // The same report read an entry at a time, and with an explicit window.
    expect(await earningsReport(miner.accountId, {}, { pageSize: 1 })).toEqual(earnings.body);
    const explicit = await api<Earnings>("GET", `/v1/account/earnings?from=${day}&to=${day}`, {
      key: miner.key,
    });
    expect(explicit.body.days).toEqual([row]);
    const later = await api<Earnings>("GET", `/v1/account/earnings?from=2000-01-01&to=2000-12-31`, {
      key: miner.key,
    });
    expect(later.body).toMatchObject({ days: [], totals: { jobs: 0, earned: 0, refunded: 0, net: 0 } });
    // The client paid; it earned nothing.
    const paid = await api<Earnings>("GET", "/v1/account/earnings", { key: client.key });
    expect(paid.body).toMatchObject({ account_id: client.id, days: [] });

    const after = await stableFeeReport(day);
    const seen = new Set(before.entries.map((e) => `${e.PK}/${e.SK}`));
    const added = after.entries.filter((e) => !seen.has(`${e.PK}/${e.SK}`));
    const ours = added.filter((e) => jobs.includes(String(e.jobId)));
    // Each of our jobs paid its fee once, on its own shard.
    expect(ours.map((e) => [e.jobId, e.accountId, e.kind, e.deltaAvailable]).sort()).toEqual(
      jobs.map((id) => [id, platformFeeAccountOf(id), "fee", fee]).sort(),
    );
    // The day's row grew by exactly our fees, and by what other tests' jobs (identified entry by entry) added.
    const others = added.filter((e) => !jobs.includes(String(e.jobId)));
    const othersFees = others.filter((e) => e.kind === "fee");
    expect(Number(after.row.fees) - Number(before.row.fees)).toBe(3 * fee + sum(othersFees));
    expect(after.row.jobs - before.row.jobs).toBe(3 + othersFees.length);
    expect(after.row.net).toBe(Number(after.row.fees) - after.row.refunded);
    expect(after.report).toMatchObject({
      fee_bps: bps,
      accounts: [...PLATFORM_FEE_IDS],
      from: day,
      to: day,
      currency: "micro-credits",
    });
    expect(Number.isSafeInteger(after.report.available)).toBe(true);
    expect(after.report.totals).toMatchObject({ jobs: after.row.jobs, fees: after.row.fees });
  });

  it("an operator's refund shows as refunded on the miner's and the platform's day", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region, prices: { echo: UNIT_PRICE } });
    const [jobId] = await completeJobs(client, miner, constraints, 1);
    const day = today();
    const before = await stableFeeReport(day);
    const refund = await api<{ from_miner: number; from_fee: number; amount: number }>(
      "POST",
      `/v1/admin/jobs/${jobId}/refund`,
      { key: stack.adminKey, body: { amount: 5_000, reason: "partial refund" } },
    );
    expect(refund.status, refund.text).toBe(201);
    const { from_miner: fromMiner, from_fee: fromFee } = refund.body;
    expect(fromMiner + fromFee).toBe(5_000);

    const earnings = await api<Earnings>("GET", "/v1/account/earnings", { key: miner.key });
    const fee = Math.floor((UNIT_PRICE * before.report.fee_bps) / 10_000);
    expect(earnings.body.days).toEqual([
      { day, jobs: 1, earned: UNIT_PRICE - fee, refunded: fromMiner, net: UNIT_PRICE - fee - fromMiner },
    ]);
    expect((await api<Obj>("GET", "/v1/account", { key: miner.key })).body.earned).toBe(
      earnings.body.totals.net,
    );

    const after = await stableFeeReport(day);
    const seen = new Set(before.entries.map((e) => `${e.PK}/${e.SK}`));
    const added = after.entries.filter((e) => !seen.has(`${e.PK}/${e.SK}`));
    const takenBack = added.filter((e) => e.kind === "job_refund");
    expect(takenBack.filter((e) => e.jobId === jobId).map((e) => [e.accountId, e.deltaAvailable])).toEqual(
      fromFee > 0 ? [[platformFeeAccountOf(String(jobId)), -fromFee]] : [],
    );
    expect(after.row.refunded - before.row.refunded).toBe(0 - sum(takenBack));
  });

  it("refuses a bad window with 422 naming the field, and the fee report to client and miner keys", async () => {
    const miner = await createAccount("miner");
    for (const [query, path] of [
      ["?from=2030-02-30", "query.from"],
      ["?from=2030-01-01T00:00:00Z", "query.from"],
      ["?to=tomorrow", "query.to"],
      ["?from=2030-01-02&to=2030-01-01", "query.from"],
      ["?from=2028-01-01&to=2029-01-01", "query.from"],
    ] as const) {
      for (const res of [
        await api("GET", `/v1/account/earnings${query}`, { key: miner.key }),
        await feeReport(query),
      ]) {
        expect(res.status, query).toBe(422);
        expect(JSON.stringify(res.body), query).toContain(path);
      }
    }
    // 366 days, both ends included, is the widest window.
    expect((await feeReport("?from=2028-01-01&to=2028-12-31")).status).toBe(200);
    const client = await createAccount("client");
    for (const key of [client.key, miner.key]) {
      const res = await api("GET", "/v1/admin/platform/fees", { key });
      expect(res.status).toBe(403);
    }
    expect((await api("GET", "/v1/admin/platform/fees")).status).toBe(401);
  });
});

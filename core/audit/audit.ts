import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { type Envelope, EVENT_TYPES } from "../../events/catalog.ts";
import { pageQuery } from "../accounts/page.ts";
import { config } from "../config.ts";
import { csvField } from "../csv.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { ValidationError } from "../errors.ts";
import { parse } from "../validate.ts";

/**
 * The audit trail is fed from the bus (rule `audit-trail`: account, key and balance actions). Each entry records what
 * happened (type, subject, data), when, who did it (actor account and key id, never a key) and the request id that
 * caused it (correlation id). Entries are partitioned by UTC day (`AUDIT#<yyyy-mm-dd>`, sorted by time), so a time
 * range reads only its days. Writing is idempotent on the event id, so a duplicate delivery leaves one entry.
 */
export async function recordAudit(event: Envelope): Promise<void> {
  const day = event.occurred_at.slice(0, 10);
  await ddb()
    .send(
      new PutCommand({
        TableName: config.tableName,
        Item: {
          ...keys.audit(day, event.occurred_at, event.id),
          entity: "audit",
          eventId: event.id,
          type: event.type,
          accountId: event.account_id,
          subject: event.subject,
          correlationId: event.correlation_id,
          actor: event.actor,
          occurredAt: event.occurred_at,
          data: event.data,
        },
        ConditionExpression: "attribute_not_exists(PK)",
      }),
    )
    .catch((err: Error) => {
      if (err.name !== "ConditionalCheckFailedException") throw err;
    });
}

export async function auditForDay(day: string) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": keys.audit(day, "", "").PK },
    }),
  );
  return out.Items ?? [];
}

const DAY_MS = 86_400_000;
/** Default window when `from` is omitted, and the widest window one listing may span. */
const DEFAULT_WINDOW_DAYS = 7;
const MAX_WINDOW_DAYS = 92;
/** Queries one page may issue before it returns what it has (a sparse `type` filter over a busy window). */
const MAX_QUERIES_PER_PAGE = 50;
export const MAX_CSV_ROWS = 5000;

const timestamp = (name: string) =>
  v.optional(
    v.pipe(
      v.string(),
      v.isoTimestamp(`${name} must be an ISO 8601 timestamp, e.g. 2030-01-01T00:00:00Z`),
      v.check((s) => !Number.isNaN(Date.parse(s)), `${name} must be an ISO 8601 timestamp`),
    ),
  );

const filters = {
  from: timestamp("from"),
  to: timestamp("to"),
  type: v.optional(v.picklist(EVENT_TYPES, `type must be one of ${EVENT_TYPES.join(", ")}`)),
};

export const AuditQuery = v.object({ ...filters, ...pageQuery(1000) });
export const AuditCsvQuery = v.object({ ...filters, ...pageQuery(MAX_CSV_ROWS) });

const AuditEntry = v.object({
  eventId: v.string(),
  type: v.string(),
  occurredAt: v.string(),
  accountId: v.optional(v.string()),
  subject: v.string(),
  correlationId: v.optional(v.string()),
  actor: v.optional(v.object({ account_id: v.string(), key_id: v.string() })),
  data: v.optional(v.record(v.string(), v.unknown()), {}),
});

function auditView(item: Record<string, unknown>) {
  const e = v.parse(AuditEntry, item);
  return {
    id: e.eventId,
    type: e.type,
    occurred_at: e.occurredAt,
    actor: e.actor ?? null,
    account_id: e.accountId ?? null,
    subject: e.subject,
    request_id: e.correlationId ?? null,
    data: e.data,
  };
}
export type AuditView = ReturnType<typeof auditView>;

const CursorSchema = v.object({
  d: v.pipe(v.string(), v.isoDate()),
  k: v.optional(v.record(v.string(), v.string())),
});

function decodeAuditCursor(raw: string | undefined): v.InferOutput<typeof CursorSchema> | undefined {
  if (!raw) return undefined;
  try {
    const parsed = v.safeParse(CursorSchema, JSON.parse(Buffer.from(raw, "base64url").toString("utf8")));
    if (parsed.success) return parsed.output;
  } catch {
    // fall through
  }
  throw new ValidationError([{ path: "query.cursor", message: "not a cursor this API issued" }]);
}

function encodeAuditCursor(d: string, k?: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ d, k })).toString("base64url");
}

/**
 * Audit entries in [from, to) (default: the last 7 days, at most 92), oldest first, optionally of one event type,
 * a page at a time. One Query per day in the window (a filtered page may take a few more).
 */
export async function listAudit(query: unknown) {
  return auditPage(parse(AuditQuery, query, "query"), 100);
}

async function auditPage(q: v.InferOutput<typeof AuditQuery>, defaultLimit: number) {
  const limit = q.limit ?? defaultLimit;
  const to = q.to ? new Date(Date.parse(q.to)) : new Date();
  const from = q.from ? new Date(Date.parse(q.from)) : new Date(to.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS);
  if (from >= to) throw new ValidationError([{ path: "query.from", message: "from must be before to" }]);
  if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
    throw new ValidationError([
      { path: "query.from", message: `a window spans at most ${MAX_WINDOW_DAYS} days` },
    ]);
  }
  const days: string[] = [];
  for (let t = Date.parse(from.toISOString().slice(0, 10)); t < to.getTime(); t += DAY_MS) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  const cursor = decodeAuditCursor(q.cursor);
  let index = cursor ? days.indexOf(cursor.d) : 0;
  if (index < 0)
    throw new ValidationError([{ path: "query.cursor", message: "the cursor is outside this window" }]);
  let start: Record<string, unknown> | undefined = cursor?.k;
  if (start && start.PK !== keys.audit(cursor?.d ?? "", "", "").PK) {
    throw new ValidationError([{ path: "query.cursor", message: "not a cursor this API issued" }]);
  }
  const items: AuditView[] = [];
  for (
    let queries = 0;
    index < days.length && items.length < limit && queries < MAX_QUERIES_PER_PAGE;
    queries++
  ) {
    const day = days[index] as string;
    const out = await ddb().send(
      new QueryCommand({
        TableName: config.tableName,
        KeyConditionExpression: "PK = :pk AND SK BETWEEN :from AND :to",
        ...(q.type
          ? { FilterExpression: "#type = :type", ExpressionAttributeNames: { "#type": "type" } }
          : {}),
        ExpressionAttributeValues: {
          ":pk": keys.audit(day, "", "").PK,
          ":from": from.toISOString(),
          ":to": to.toISOString(),
          ...(q.type ? { ":type": q.type } : {}),
        },
        Limit: limit - items.length,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(out.Items ?? []).map(auditView));
    start = out.LastEvaluatedKey;
    if (!start) index++;
  }
  const next = index < days.length ? encodeAuditCursor(days[index] as string, start) : null;
  return { items, next_cursor: next, from: from.toISOString(), to: to.toISOString() };
}

export const CSV_COLUMNS = [
  "occurred_at",
  "id",
  "type",
  "actor_account_id",
  "actor_key_id",
  "account_id",
  "subject",
  "request_id",
  "data",
] as const;

/** The audit listing as CSV (CRLF line ends, a header row); `next_cursor` continues an export past MAX_CSV_ROWS. */
export async function auditCsv(query: unknown): Promise<{ csv: string; next_cursor: string | null }> {
  const page = await auditPage(parse(AuditCsvQuery, query, "query"), MAX_CSV_ROWS);
  const rows = page.items.map((e) =>
    [
      e.occurred_at,
      e.id,
      e.type,
      e.actor?.account_id,
      e.actor?.key_id,
      e.account_id,
      e.subject,
      e.request_id,
      e.data,
    ].map(csvField),
  );
  const csv = [CSV_COLUMNS.join(","), ...rows.map((r) => r.join(","))].join("\r\n");
  return { csv: `${csv}\r\n`, next_cursor: page.next_cursor };
}

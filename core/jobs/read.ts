import * as v from "valibot";
import { outputDownloads } from "../artifacts/references.ts";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { cursorWithin, encodeCursor } from "../db/cursor.ts";
import { CoordError, NotFoundError } from "../errors.ts";
import { isId } from "../ids.ts";
import { parse } from "../validate.ts";
import { recentJob, watchJob } from "./changes.ts";
import { pendingStart } from "./in-place.ts";
import { type Job, jobView } from "./model.ts";
import { storedPayload } from "./payload.ts";
import { isTerminal, JOB_STATUSES } from "./statuses.ts";
import { accountJobsPage, accountJobsPartition, getJob, getResultItem, historyItems } from "./store.ts";

/** Reads a job by id (strongly consistent). TTL-expired items count as gone: DynamoDB Local never deletes them. */
export async function loadJob(id: string): Promise<Job | undefined> {
  return isId(id, "job") ? getJob(id) : undefined;
}

/** The job if the caller may see it: its own account's (or any, for an admin). Another account's job is 404. */
export async function getOwnJob(principal: Principal, id: string): Promise<Job> {
  const job = await loadJob(id);
  if (!job || (principal.kind !== "admin" && job.accountId !== principal.accountId))
    throw new NotFoundError("job");
  return job;
}

const WaitSeconds = v.optional(
  v.pipe(v.string(), v.toNumber(), v.minValue(0), v.maxValue(60, "wait is at most 60 seconds")),
);

/**
 * Long-poll for a change: returns as soon as the job's version differs from `sinceVersion` (or it is terminal when
 * `untilTerminal`), or when `waitSeconds` pass. A change made in this instance wakes the wait with the new job
 * (changes.ts: no read); a change made elsewhere is found by re-reading on a fallback schedule (1 s, doubling to 5 s).
 */
export async function waitForJob(
  principal: Principal,
  id: string,
  waitSeconds: number,
  opts: { untilTerminal?: boolean; sinceVersion?: number } = {},
): Promise<Job> {
  const watch = watchJob(id);
  try {
    // A job this instance wrote a moment ago starts the wait without a read, unless the client has seen a newer version
    // (written elsewhere); a change made elsewhere meanwhile is found by the fallback re-read.
    const cached = waitSeconds > 0 ? recentJob(id) : undefined;
    const ownCached =
      cached && (principal.kind === "admin" || cached.accountId === principal.accountId) ? cached : undefined;
    let job =
      ownCached && (opts.sinceVersion === undefined || ownCached.version >= opts.sinceVersion)
        ? ownCached
        : await getOwnJob(principal, id);
    const deadline = Date.now() + waitSeconds * 1000;
    const since = opts.sinceVersion ?? job.version;
    let fallback = 1000;
    const done = (j: Job) => isTerminal(j.status) || (!opts.untilTerminal && j.version !== since);
    while (!done(job) && Date.now() < deadline) {
      const changed = await watch.next(job.version, Math.min(fallback, Math.max(0, deadline - Date.now())));
      if (changed) {
        job = changed;
        continue;
      }
      if (Date.now() >= deadline) break;
      fallback = Math.min(fallback * 2, 5000);
      job = await getOwnJob(principal, id);
    }
    return job;
  } finally {
    watch.close();
  }
}

export function parseWait(raw: string | undefined, path: string): number | undefined {
  const wait = parse(WaitSeconds, raw, path);
  return wait === undefined ? undefined : Math.min(wait, config.maxWaitSeconds);
}

/** `Prefer: wait=N` (RFC 7240), up to 60 s. */
export function preferWait(header: string | undefined): number | undefined {
  const m = header ? /(?:^|[,;\s])wait=(\d+)/i.exec(header) : null;
  return m ? Math.min(Number(m[1]), 60, config.maxWaitSeconds) : undefined;
}

export const ListJobsQuery = v.object({
  status: v.optional(v.picklist(JOB_STATUSES)),
  service: v.optional(v.pipe(v.string(), v.maxLength(200))),
  cursor: v.optional(v.string()),
  limit: v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(100)), "50"),
});

/** The caller's jobs, newest first, filtered by status/service, with an opaque cursor. */
export async function listJobs(principal: Principal, query: unknown) {
  const q = parse(ListJobsQuery, query, "query");
  const wanted = (j: Job) => (!q.status || j.status === q.status) && (!q.service || j.service === q.service);
  const limit = Number(q.limit);
  const items: Job[] = [];
  let start = cursorWithin(q.cursor, { GSI2PK: accountJobsPartition(principal.accountId) });
  // The index holds keys only (a job's entry is written once, at submit): page over it, read the jobs, filter.
  do {
    const page = await accountJobsPage(principal.accountId, limit - items.length, start);
    for (const job of page.jobs) if (wanted(job)) items.push(job);
    start = page.next;
  } while (start && items.length < limit);
  return { jobs: items.map(jobView), next_cursor: encodeCursor(start) ?? null };
}

/** The job's result once terminal: output (completed) or error. 425 before. */
export async function getResult(principal: Principal, id: string) {
  const job = await getOwnJob(principal, id);
  if (!isTerminal(job.status)) {
    throw new CoordError("not_ready", `job is ${job.status}; the result exists once it is terminal`, {
      job_status: job.status,
    });
  }
  const result = job.status === "completed" ? await getResultItem(id) : undefined;
  const output = storedPayload(result, "output");
  return {
    job_id: job.id,
    status: job.status,
    output,
    /** The output's artifacts, each with a presigned download (none once they expired). */
    artifacts: await outputDownloads(job.id, output),
    usage: storedPayload(result, "usage"),
    units: job.units ?? null,
    price: job.price ?? null,
    error: job.error ?? null,
    finished_at: job.finishedAt ?? null,
  };
}

/**
 * The job's transition history (its outbox events), oldest first, with an in-place start whose event the job's next
 * transaction has not filed yet (core/jobs/in-place.ts) read from the job item itself.
 */
export async function jobEvents(principal: Principal, id: string, afterSeq = 0) {
  const job = await getOwnJob(principal, id);
  const filed = (await historyItems(id, afterSeq)).map((i) => ({
    seq: Number(String(i.SK).slice(4)),
    id: i.eventId,
    type: i.type,
    occurred_at: i.occurredAt,
    status: i.data?.status,
    attempt: i.data?.attempt,
    /** The request that caused it (its X-Request-Id): the trace id its log lines carry. */
    correlation_id: i.correlationId ?? null,
    data: i.data,
  }));
  const started = pendingStart(job);
  if (!started || started.seq <= afterSeq || filed.some((e) => e.seq === started.seq)) return filed;
  return [
    ...filed,
    {
      seq: started.seq,
      id: started.id,
      type: started.type,
      occurred_at: started.at?.toISOString(),
      status: started.data.status,
      attempt: started.data.attempt,
      correlation_id: started.correlationId ?? null,
      data: started.data,
    },
  ].sort((a, b) => a.seq - b.seq);
}

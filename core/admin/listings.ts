import * as v from "valibot";
import { config } from "../config.ts";
import type { Ctx, Principal } from "../context.ts";
import { hydrate } from "../db/batch.ts";
import { keys } from "../db/keys.ts";
import { actorOf, outboxPut } from "../db/outbox.ts";
import { shardOf } from "../db/shard.ts";
import { pageShards } from "../db/sharded-pages.ts";
import { transact } from "../db/transaction.ts";
import { ValidationError } from "../errors.ts";
import { deadlineShards } from "../jobs/item.ts";
import { JobItem, jobView } from "../jobs/model.ts";
import { listJobs } from "../jobs/read.ts";
import { JOB_STATUSES } from "../jobs/statuses.ts";
import { forgetMiner } from "../miners/cache.ts";
import { getMiner, MINER_STATUSES, MinerItem, minerShards, minerView } from "../miners/miners.ts";
import { parse } from "../validate.ts";

const Limit = v.optional(v.pipe(v.string(), v.toNumber(), v.integer(), v.minValue(1), v.maxValue(100)), "50");

export const AdminJobsQuery = v.object({
  account_id: v.optional(v.pipe(v.string(), v.maxLength(100))),
  status: v.optional(v.picklist(JOB_STATUSES)),
  service: v.optional(v.pipe(v.string(), v.maxLength(200))),
  cursor: v.optional(v.string()),
  limit: Limit,
});

/**
 * Jobs across accounts. With `account_id`: that account's jobs (any status). Without: live jobs (queued, assigned,
 * running) from the deadline index; finished jobs are listed per account, since a global listing of every finished
 * job would need an index that every job write pays for.
 */
export async function adminListJobs(query: unknown) {
  const q = parse(AdminJobsQuery, query, "query");
  if (q.account_id) {
    const as: Principal = { accountId: q.account_id, kind: "client", keyId: "admin", scopes: [] };
    return listJobs(as, { ...(query as object), account_id: undefined });
  }
  if (q.status && !["queued", "assigned", "running"].includes(q.status)) {
    throw new ValidationError([
      {
        path: "query.status",
        message: "without account_id, only queued, assigned or running jobs are listed",
      },
    ]);
  }
  // The deadline index projects service and account, not status (which changes on every transition): the service
  // filters the index, the status the jobs read back, page after page until this one is full or the index ends.
  const limit = Number(q.limit);
  const jobs: Record<string, unknown>[] = [];
  let cursor: string | null | undefined = q.cursor;
  do {
    const page = await pageShards({
      index: "GSI3",
      partition: (s) => `DEADLINE#${s}`,
      shards: deadlineShards(),
      limit: limit - jobs.length,
      cursor: cursor ?? undefined,
      ...(q.service ? { filter: { expression: "service = :svc", values: { ":svc": q.service } } } : {}),
    });
    for (const item of await hydrate(page.items)) {
      const job = v.parse(JobItem, item);
      if (!q.status || job.status === q.status) jobs.push({ ...jobView(job), account_id: item.accountId });
    }
    cursor = page.nextCursor;
  } while (cursor && jobs.length < limit);
  return { jobs, next_cursor: cursor ?? null };
}

export const AdminMinersQuery = v.object({
  status: v.optional(v.picklist(MINER_STATUSES), "online"),
  cursor: v.optional(v.string()),
  limit: Limit,
});

/** Miners by status across accounts: online and draining ones soonest to go silent first, offline ones by last heartbeat. */
export async function adminListMiners(query: unknown) {
  const q = parse(AdminMinersQuery, query, "query");
  const page = await pageShards({
    index: "GSI2",
    partition: (s) => `MINERS#${q.status}#${s}`,
    shards: minerShards(),
    limit: Number(q.limit),
    cursor: q.cursor,
  });
  // The miners-by-status index holds keys only: read the miners it pages over.
  return {
    miners: (await hydrate(page.items)).map((i) => ({
      ...minerView(v.parse(MinerItem, i)),
      account_id: i.accountId,
      banned: i.banned === true,
    })),
    next_cursor: page.nextCursor,
  };
}

const ADMIN: Principal = { accountId: "", kind: "admin", keyId: "admin", scopes: ["admin:*"] };

/**
 * Drain (no new work; held jobs finish) or ban (no work, no re-registration; held jobs lapse and go to other
 * miners) a miner.
 */
export async function adminSetMiner(id: string, action: "drain" | "ban" | "unban", ctx: Ctx = {}) {
  const miner = await getMiner(ADMIN, id);
  const status = action === "drain" ? "draining" : "offline";
  const sk = keys.minersByStatus(status, shardOf(id, minerShards()), `${miner.lastHeartbeatAt}#${id}`);
  // The change and its audit event in one transaction (miner.moderated.v1 -> the audit trail).
  await transact({
    miner: {
      Update: {
        TableName: config.tableName,
        Key: keys.miner(id),
        UpdateExpression: "SET #s = :s, banned = :b, GSI2PK = :pk, GSI2SK = :sk",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: {
          ":s": status,
          ":b": action === "ban",
          ":pk": sk.GSI2PK,
          ":sk": sk.GSI2SK,
        },
      },
    },
    event: outboxPut({
      type: "miner.moderated.v1",
      subjectPk: keys.miner(id).PK,
      subject: id,
      accountId: miner.accountId,
      correlationId: ctx.correlationId,
      actor: actorOf(ctx),
      data: { miner_id: id, account_id: miner.accountId, action },
    }),
  });
  forgetMiner(id);
  return { ...minerView({ ...miner, status }), banned: action === "ban" };
}

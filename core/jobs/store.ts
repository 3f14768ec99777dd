import { GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { type NativeAttributeValue, unmarshall } from "@aws-sdk/util-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { batchGetAll, hydrate } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys, seqKey } from "../db/keys.ts";
import type { TransactItem } from "../db/transaction.ts";
import { jobItem } from "./item.ts";
import { type Job, JobItem } from "./model.ts";
import { storedPayload } from "./payload.ts";

/**
 * The job store: the one module of `core/jobs/` that speaks DynamoDB about jobs, their payloads, history and indexes
 * (the queue summary has its own, `queue-summary.ts`). It owns the item shapes (through `jobItem` and `JobItem`), the
 * reads and pages, the single-item conditional updates, and the job's named transaction items. DynamoDB Local never
 * expires TTL items, so every read of a job filters on expiry itself.
 */

const live = (item: Record<string, unknown> | undefined) =>
  item && !(item.expiresAt && Number(item.expiresAt) < Date.now() / 1000) ? item : undefined;

/** A job by id, strongly consistent; a TTL-expired item counts as gone. */
export async function getJob(id: string): Promise<Job | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.job(id), ConsistentRead: true }),
  );
  const item = live(out.Item);
  return item ? v.parse(JobItem, item) : undefined;
}

/**
 * The job and the input hash its submit recorded (in its first event, `job.submitted.v1`), in one strongly consistent
 * batch read: what a completion needs for the receipt, for the request a plain read of the job costs.
 */
export async function getJobAndInputHash(
  id: string,
): Promise<{ job?: Job; inputSha256?: string; inputArtifacts?: unknown[] }> {
  const jobKey = keys.job(id);
  const eventKey = keys.event(jobKey.PK, seqKey(1));
  const items = await batchGetAll([jobKey, eventKey], { consistent: true });
  const jobItem = live(items.find((i) => i.SK === jobKey.SK));
  const event = items.find((i) => i.SK === eventKey.SK) as
    | { data?: { input_sha256?: unknown; input_artifacts?: unknown } }
    | undefined;
  const hash = event?.data?.input_sha256;
  const artifacts = event?.data?.input_artifacts;
  return {
    job: jobItem ? v.parse(JobItem, jobItem) : undefined,
    inputSha256: typeof hash === "string" ? hash : undefined,
    inputArtifacts: Array.isArray(artifacts) ? artifacts : undefined,
  };
}

/** The job's input as it was submitted (JSON text read back exactly). */
export async function getInput(id: string): Promise<unknown> {
  const out = await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.jobInput(id) }));
  return storedPayload(out.Item, "input");
}

/** Several jobs' inputs at once, by job id. */
export async function getInputs(ids: string[]): Promise<Map<string, unknown>> {
  const inputs = new Map<string, unknown>();
  for (const item of await batchGetAll(ids.map((id) => keys.jobInput(id))))
    inputs.set(String(item.PK).slice(4), storedPayload(item, "input"));
  return inputs;
}

/** The job's result item (output and usage as JSON text), if it has one. */
export async function getResultItem(id: string): Promise<Record<string, unknown> | undefined> {
  return (await ddb().send(new GetCommand({ TableName: config.tableName, Key: keys.jobResult(id) }))).Item;
}

/** The job's filed history (its outbox items) after `afterSeq`, oldest first. */
export async function historyItems(
  id: string,
  afterSeq: number,
): Promise<Record<string, NativeAttributeValue>[]> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      KeyConditionExpression: "PK = :pk AND SK BETWEEN :from AND :to",
      ExpressionAttributeValues: {
        ":pk": keys.job(id).PK,
        ":from": `EVT#${seqKey(afterSeq + 1)}`,
        ":to": "EVT#9999999999",
      },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

/** One page of an account's jobs, newest first (a keys-only index: the jobs are read back). */
export async function accountJobsPage(
  accountId: string,
  limit: number,
  start?: Record<string, unknown>,
): Promise<{ jobs: Job[]; next?: Record<string, unknown> }> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: "GSI2",
      KeyConditionExpression: "GSI2PK = :pk",
      ExpressionAttributeValues: { ":pk": accountJobsPartition(accountId) },
      ScanIndexForward: false,
      Limit: limit,
      ExclusiveStartKey: start,
    }),
  );
  return {
    jobs: (await hydrate(out.Items ?? [])).map((i) => v.parse(JobItem, i)),
    next: out.LastEvaluatedKey,
  };
}

export const accountJobsPartition = (accountId: string) => keys.jobsByAccount(accountId, "", "").GSI2PK;

/** One page of a ready-queue shard, in queue order (priority, then fair-share time); the index holds whole jobs. */
export async function readyQueuePage(
  service: string,
  shard: number,
  limit: number,
  start?: Record<string, unknown>,
): Promise<{ items: Record<string, unknown>[]; next?: Record<string, unknown> }> {
  const out = await ddb().send(
    new QueryCommand({
      TableName: config.tableName,
      IndexName: "GSI1",
      KeyConditionExpression: "GSI1PK = :pk",
      ExpressionAttributeValues: { ":pk": keys.readyQueue(service, shard, 0, "", "").GSI1PK },
      Limit: limit,
      ExclusiveStartKey: start,
    }),
  );
  return { items: out.Items ?? [], next: out.LastEvaluatedKey };
}

/**
 * Sets the job running in place (core/jobs/in-place.ts): one conditional update, conditional on the job being
 * assigned to this miner of this account under this token. Returns the new job, or the job as it was when refused.
 */
export async function startIfHeld(
  jobId: string,
  token: string,
  miner: { id: string; accountId: string },
  at: Date,
): Promise<{ started: Job } | { refused: Job | undefined }> {
  try {
    const out = await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.job(jobId),
        UpdateExpression:
          "SET #s = :running, startedAt = :now, updatedAt = :now, version = version + :one, startSeq = version + :one",
        ConditionExpression:
          "#s = :assigned AND claimToken = :token AND minerId = :miner AND minerAccountId = :acct",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: {
          ":running": "running",
          ":assigned": "assigned",
          ":now": at.toISOString(),
          ":one": 1,
          ":token": token,
          ":miner": miner.id,
          ":acct": miner.accountId,
        },
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { started: v.parse(JobItem, out.Attributes) };
  } catch (err) {
    if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
    const old = (err as { Item?: Parameters<typeof unmarshall>[0] }).Item;
    return { refused: old ? v.parse(JobItem, unmarshall(old)) : undefined };
  }
}

/**
 * Moves a held job's own lease (and its deadline-index entry) up to `until`, while the same claim still holds it.
 * Not a transition: no version bump, no event. False when the job moved on meanwhile.
 */
export async function extendLease(job: Job, until: string): Promise<boolean> {
  const renewed = jobItem({ ...job, leaseExpiresAt: until, sweepAt: undefined });
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.job(job.id),
        UpdateExpression: "SET leaseExpiresAt = :lease, sweepAt = :at, GSI3PK = :g3pk, GSI3SK = :g3sk",
        ConditionExpression: "claimToken = :token AND #s IN (:a, :r)",
        ExpressionAttributeNames: { "#s": "status" },
        ExpressionAttributeValues: {
          ":lease": until,
          ":at": renewed.sweepAt,
          ":g3pk": renewed.GSI3PK,
          ":g3sk": renewed.GSI3SK,
          ":token": job.claimToken,
          ":a": "assigned",
          ":r": "running",
        },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

/**
 * Files a job whose early look found nothing due at its next deadline (see `sweepTime`). Not a transition: no version
 * bump, no event; conditional on the version seen, so a transition meanwhile (which files its own time) wins.
 */
export async function refile(job: Job): Promise<boolean> {
  const filed = jobItem({ ...job, sweepAt: undefined });
  if (!filed.GSI3SK || filed.sweepAt === job.sweepAt) return false;
  try {
    await ddb().send(
      new UpdateCommand({
        TableName: config.tableName,
        Key: keys.job(job.id),
        UpdateExpression: "SET sweepAt = :at, GSI3SK = :g3sk",
        ConditionExpression: "version = :v",
        ExpressionAttributeValues: { ":at": filed.sweepAt, ":g3sk": filed.GSI3SK, ":v": job.version },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

// ---- named transaction items ----

/** The job item written whole (its index keys derived from its state), under a condition. */
export function jobPut(
  job: Job,
  condition: { expression: string; names?: Record<string, string>; values?: Record<string, unknown> },
): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: jobItem(job),
      ConditionExpression: condition.expression,
      ...(condition.names ? { ExpressionAttributeNames: condition.names } : {}),
      ...(condition.values ? { ExpressionAttributeValues: condition.values } : {}),
    },
  };
}

/** The job's input, as JSON text (stored and read back exactly: core/jobs/payload.ts). */
export function inputPut(jobId: string, inputJson: string): TransactItem {
  return {
    Put: { TableName: config.tableName, Item: { ...keys.jobInput(jobId), entity: "jobInput", inputJson } },
  };
}

/**
 * The job's result: output and usage as JSON text, and the signed receipt (which holds what the coordinator
 * observed: start, end, units). Nothing derivable is stored beside them: every byte is paid on the completion's
 * write, and the item sits near DynamoDB's 1 KB billing step.
 */
export function resultPut(
  jobId: string,
  result: {
    outputJson: string;
    usageJson?: string;
    /** The signed receipt document, as JSON text (core/receipts). */
    receiptJson?: string;
  },
  /** Index keys other stores file the result under (settlement's unbatched list: core/settlement/store.ts). */
  listings: Record<string, string> = {},
): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: { ...keys.jobResult(jobId), entity: "jobResult", ...result, ...listings },
    },
  };
}

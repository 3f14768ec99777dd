import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { EventData, EventType } from "../../events/catalog.ts";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import { outboxPut, type TransactItem } from "../db/outbox.ts";
import { ConflictError } from "../errors.ts";
import { publishJob } from "./changes.ts";
import { pendingStart } from "./in-place.ts";
import { jobItem } from "./item.ts";
import { type Job, jobRef } from "./model.ts";
import { canTransition, TRANSITIONS, type TransitionName } from "./statuses.ts";

/** The transaction was refused: `index` says which item's condition failed (0 is the job itself). */
export class TransactionRefused extends Error {
  constructor(
    readonly reasons: (string | undefined)[],
    /** The refusing items as they were, where the item asked for it (ReturnValuesOnConditionCheckFailure). */
    readonly items: (Record<string, unknown> | undefined)[] = [],
  ) {
    super(`transaction refused: ${reasons.join(",")}`);
    this.name = "TransactionRefused";
  }
  failedAt(index: number): boolean {
    return this.reasons[index] === "ConditionalCheckFailed";
  }
  itemAt(index: number): Record<string, unknown> | undefined {
    return this.items[index];
  }
  get jobChanged(): boolean {
    return this.failedAt(0);
  }
}

export async function transact(items: TransactItem[], token?: string): Promise<void> {
  try {
    await ddb().send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token }));
  } catch (err) {
    const reasons = (
      err as { CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] }
    ).CancellationReasons;
    if ((err as Error).name === "TransactionCanceledException" && reasons) {
      throw new TransactionRefused(
        reasons.map((r) => (r.Code === "None" ? undefined : r.Code)),
        // Returned items come back marshalled, even through the document client.
        reasons.map((r) => (r.Item ? unmarshall(r.Item) : undefined)),
      );
    }
    throw err;
  }
}

export interface TransitionPlan<T extends EventType> {
  /** Fields of the job that change (status, version and updatedAt are set here). */
  changes: Partial<Job>;
  /** Other items that must change atomically with the job (miner slots, balances, ledger, result...). */
  with?: TransactItem[];
  /** Extra condition on the job item, e.g. the claim token still being current. */
  condition?: { expression: string; values: Record<string, unknown>; names?: Record<string, string> };
  /** Event fields beyond the job reference (job_id, service, status, attempt), which are filled in here. */
  event: Omit<EventData<T>, "job_id" | "service" | "status" | "attempt">;
  correlationId?: string;
  at?: Date;
}

/**
 * Carries out one transition of the state table as one conditional TransactWriteItems: the job item is replaced
 * only if its status and version are what we read, the companion items change with it, and the outbox event is
 * written beside the job as the next entry of its history. Returns the new job.
 */
export async function applyTransition<N extends TransitionName>(
  job: Job,
  name: N,
  plan: TransitionPlan<(typeof TRANSITIONS)[N]["event"]>,
): Promise<Job> {
  const spec = TRANSITIONS[name];
  // The job is in a state that does not allow this: a 409 naming the state, never a 500.
  if (!canTransition(name, job.status)) {
    throw new ConflictError(`a ${job.status} job cannot ${name.replace("_", " ")}`, {
      job_status: job.status,
      transition: name,
    });
  }
  const at = plan.at ?? new Date();
  const next: Job = {
    ...job,
    ...plan.changes,
    status: spec.to,
    version: job.version + 1,
    updatedAt: at.toISOString(),
    startSeq: undefined,
  };
  // An in-place start's event, published from the item, is filed in the history by this next transaction.
  const started = pendingStart(job);
  const condition = ["#status = :from", "version = :version"];
  const values: Record<string, unknown> = { ":from": job.status, ":version": job.version };
  if (plan.condition) {
    condition.push(plan.condition.expression);
    Object.assign(values, plan.condition.values);
  }
  await transact([
    {
      Put: {
        TableName: config.tableName,
        Item: jobItem(next),
        ConditionExpression: condition.join(" AND "),
        ExpressionAttributeNames: { "#status": "status", ...plan.condition?.names },
        ExpressionAttributeValues: values,
      },
    },
    ...(plan.with ?? []),
    ...(started ? [outboxPut({ ...started, relayed: true })] : []),
    outboxPut({
      type: spec.event,
      subjectPk: keys.job(job.id).PK,
      subject: job.id,
      seq: next.version,
      accountId: job.accountId,
      correlationId: plan.correlationId ?? job.correlationId,
      data: { ...jobRef(next), ...plan.event } as EventData<(typeof TRANSITIONS)[N]["event"]>,
      at,
    }),
  ]);
  publishJob(next);
  return next;
}

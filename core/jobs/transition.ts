import type { EventData, EventType } from "../../events/catalog.ts";
import { keys } from "../db/keys.ts";
import { type Actor, outboxPut } from "../db/outbox.ts";
import { type NamedItems, transact } from "../db/transaction.ts";
import { ConflictError } from "../errors.ts";
import { publishJob } from "./changes.ts";
import { pendingStart } from "./in-place.ts";
import { type Job, jobRef } from "./model.ts";
import { canTransition, TRANSITIONS, type TransitionName } from "./statuses.ts";
import { jobPut } from "./store.ts";

export { TransactionRefused, transact } from "../db/transaction.ts";

export interface TransitionPlan<T extends EventType> {
  /** Fields of the job that change (status, version and updatedAt are set here). */
  changes: Partial<Job>;
  /**
   * Other items that must change atomically with the job (miner slots, balances, ledger, result...), by name: a
   * refusal names the item that refused (`TransactionRefused.refusedBy`). The transition's own names: `job`,
   * `started` (an in-place start's history entry), `event`.
   */
  with?: NamedItems;
  /** Extra condition on the job item, e.g. the claim token still being current. */
  condition?: { expression: string; values: Record<string, unknown>; names?: Record<string, string> };
  /** Event fields beyond the job reference (job_id, service, status, attempt), which are filled in here. */
  event: Omit<EventData<T>, "job_id" | "service" | "status" | "attempt">;
  correlationId?: string;
  /** Who caused it, when an operator acted on another account's job (the audit trail records it). */
  actor?: Actor;
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
  await transact({
    job: jobPut(next, {
      expression: condition.join(" AND "),
      names: { "#status": "status", ...plan.condition?.names },
      values,
    }),
    ...plan.with,
    started: started ? outboxPut({ ...started, relayed: true }) : undefined,
    event: outboxPut({
      type: spec.event,
      subjectPk: keys.job(job.id).PK,
      subject: job.id,
      seq: next.version,
      accountId: job.accountId,
      correlationId: plan.correlationId ?? job.correlationId,
      actor: plan.actor,
      data: { ...jobRef(next), ...plan.event } as EventData<(typeof TRANSITIONS)[N]["event"]>,
      at,
    }),
  });
  publishJob(next);
  return next;
}

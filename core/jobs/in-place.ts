import * as v from "valibot";
import { keys } from "../db/keys.ts";
import type { OutboxEvent } from "../db/outbox.ts";
import { derivedId } from "../ids.ts";
import { publishJob } from "./changes.ts";
import { type Job, JobItem, jobRef } from "./model.ts";
import { startIfHeld } from "./store.ts";

/**
 * `start`, in place: one small conditional UpdateItem of the job item, with no read before it and no outbox item
 * (the hot path's budget: a start must cost one write). The condition decides everything a read would have: the
 * job is assigned, to this miner of this account, under this claim token.
 *
 * Its event (`job.started.v1`) is the item's own: the update records `startSeq` (the version the start made), the
 * stream relay publishes the event from the item's new image (`inPlaceEvents`), and the job's next transaction files
 * it in the job's history under the same id (`derivedId`), removing `startSeq`; until then the history shows it from
 * the item (`pendingHistory`). A relayed stream batch publishes it again under the same id (consumers are idempotent).
 */

/** What the in-place start did: the new job, or the job as it was when the condition refused (undefined: none). */
export type StartOutcome = { started: Job } | { refused: Job | undefined };

export async function startInPlace(
  jobId: string,
  token: string,
  miner: { id: string; accountId: string },
  at: Date,
): Promise<StartOutcome> {
  const outcome = await startIfHeld(jobId, token, miner, at);
  if ("started" in outcome) publishJob(outcome.started);
  return outcome;
}

/** The `job.started.v1` an in-place start recorded on the item and no transaction has filed yet. */
export function pendingStart(
  job: Job,
): (OutboxEvent<"job.started.v1"> & { id: string; seq: number }) | undefined {
  if (job.startSeq === undefined || !job.startedAt || !job.minerId) return undefined;
  const at = new Date(job.startedAt);
  return {
    type: "job.started.v1",
    id: derivedId("evt", at.getTime(), `${job.id}#${job.startSeq}`),
    seq: job.startSeq,
    subjectPk: keys.job(job.id).PK,
    subject: job.id,
    accountId: job.accountId,
    correlationId: job.correlationId,
    data: { ...jobRef({ ...job, status: "running" }), miner_id: job.minerId },
    at,
  };
}

/** From stream images: the events in-place transitions recorded on job items (a `startSeq` newly set). */
export function inPlaceEvents(
  changes: { eventName?: string; oldImage?: Record<string, unknown>; newImage?: Record<string, unknown> }[],
): NonNullable<ReturnType<typeof pendingStart>>[] {
  const events: NonNullable<ReturnType<typeof pendingStart>>[] = [];
  for (const { eventName, oldImage, newImage } of changes) {
    if (eventName !== "MODIFY" || newImage?.entity !== "job") continue;
    if (newImage.startSeq === undefined || newImage.startSeq === oldImage?.startSeq) continue;
    const parsed = v.safeParse(JobItem, newImage);
    const event = parsed.success ? pendingStart(parsed.output) : undefined;
    if (event) events.push(event);
  }
  return events;
}

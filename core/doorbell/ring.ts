import * as v from "valibot";
import type { StopOrder } from "../jobs/lifecycle.ts";
import { type Job, JobItem } from "../jobs/model.ts";
import { mismatch } from "../matching/constraints.ts";
import { capabilities } from "../miners/miners.ts";
import { readMiners } from "../miners/store.ts";
import { setting } from "../settings.ts";
import { type Connections, connections } from "./connections.ts";

/** A table stream record as the stream handler parsed it (functions/stream/image.ts). */
export interface Change {
  eventName?: string;
  oldImage?: Record<string, unknown>;
  newImage?: Record<string, unknown>;
}

const LEASED = new Set(["assigned", "running"]);
/** Ends of a held job the holder did not cause itself, and what its stop order says. */
const PUSHED_STOPS: Record<string, string> = { cancelled: "cancelled", timed_out: "timed_out" };

/** Jobs that became claimable in this batch (they gained a ready-queue entry). */
export function readyJobsOf(changes: Change[]): Job[] {
  const jobs: Job[] = [];
  for (const { oldImage, newImage } of changes) {
    if (newImage?.entity !== "job" || typeof newImage.GSI1PK !== "string") continue;
    if (oldImage?.GSI1PK === newImage.GSI1PK) continue;
    const parsed = v.safeParse(JobItem, newImage);
    if (parsed.success) jobs.push(parsed.output);
  }
  return jobs;
}

/** Stop orders to push: a held job cancelled or timed out under its holder. */
export function pushedStopsOf(changes: Change[]): { minerId: string; order: StopOrder }[] {
  const out: { minerId: string; order: StopOrder }[] = [];
  for (const { eventName, oldImage: old, newImage: now } of changes) {
    if (eventName !== "MODIFY" || old?.entity !== "job" || !LEASED.has(String(old.status))) continue;
    const reason = PUSHED_STOPS[String(now?.status)];
    if (!reason || typeof old.minerId !== "string" || typeof old.claimToken !== "string") continue;
    out.push({
      minerId: old.minerId,
      order: { job_id: String(old.id), claim_token: old.claimToken, reason },
    });
  }
  return out;
}

/**
 * Rings, for each job, at most `COORD_RING_FANOUT` connected miners that can run it now: online, not banned, below
 * their concurrency, and matching its hard constraints. A batch's jobs of one service share one candidate list (the
 * sockets whose registered capabilities match one of them, least recently rung first) and one read of those miners'
 * items (the registry knows sockets, not slots, and a miner may have registered again since); each ring takes one of
 * the rung miner's free slots for the rest of the batch, so a burst of jobs rings as many different miners as it has
 * jobs, not the same few. A rung miner claims through `POST /v1/miners/poll`, where the claim's conditions decide: a
 * ring is only a hint.
 */
export async function ringJobs(registry: Connections, jobs: Job[]): Promise<number> {
  const fanout = setting("COORD_RING_FANOUT");
  const byService = new Map<string, Job[]>();
  for (const j of jobs) byService.set(j.service, [...(byService.get(j.service) ?? []), j]);
  let rings = 0;
  for (const [service, group] of byService) {
    const wanted = group.map((job) => ({
      job,
      want: { service, constraints: job.constraints, max_price: job.maxPrice },
    }));
    // Constraints first, on what each socket registered: a fleet of sockets that cannot run the jobs is never read.
    const candidates = await registry.serving(service, Math.min(400, fanout * 8 * group.length), (c) =>
      wanted.some((w) => !mismatch(w.want, c.caps)),
    );
    if (candidates.length === 0) continue;
    const miners = await readMiners([...new Set(candidates.map((c) => c.minerId))]);
    const free = new Map<string, number>();
    for (const m of miners.values())
      if (m.status === "online" && !m.banned) free.set(m.id, Math.max(0, m.concurrency - m.active));
    for (const { job, want } of wanted) {
      const rungMiners = new Set<string>();
      for (const conn of candidates) {
        if (rungMiners.size >= fanout) break;
        const m = miners.get(conn.minerId);
        if (!m || rungMiners.has(m.id) || (free.get(m.id) ?? 0) <= 0) continue;
        if (mismatch(want, capabilities(m))) continue;
        if (await registry.send(conn.id, { type: "work", service, job_id: job.id })) {
          registry.rung(conn.id);
          rungMiners.add(m.id);
          free.set(m.id, (free.get(m.id) ?? 1) - 1);
        } else await registry.remove(conn.id);
      }
      rings += rungMiners.size;
    }
  }
  return rings;
}

/** Pushes a stop order to every socket of the miner that holds the job (the next heartbeat names it again). */
export async function pushStop(registry: Connections, minerId: string, order: StopOrder): Promise<void> {
  for (const conn of await registry.ofMiner(minerId)) {
    if (!(await registry.send(conn.id, { type: "stop", stop: [order] }))) await registry.remove(conn.id);
  }
}

/** The stream handler's part: ring for the batch's newly ready jobs, push the batch's stop orders. */
export async function ringForChanges(changes: Change[]): Promise<void> {
  const registry = connections();
  if (!registry) return;
  const ready = readyJobsOf(changes);
  const stops = pushedStopsOf(changes);
  await Promise.all([ringJobs(registry, ready), ...stops.map((s) => pushStop(registry, s.minerId, s.order))]);
}

import { EventEmitter } from "node:events";
import { TtlCache } from "../ttl-cache.ts";
import type { Job } from "./model.ts";

/**
 * In-process job changes: every write of a job made in this instance (submit and each transition) announces the new
 * job, so a client long-polling that job here (`GET /v1/jobs/{id}?wait=`, `Prefer: wait`) is woken by the change
 * itself and answered from it, without reading the job again; the last announced version stays for a few seconds, so
 * the client's next long-poll starts from it without a read either. A change made in another instance is not seen
 * here: the waiter re-reads the job on a slow fallback schedule (core/jobs/read.ts).
 */
const bus = new EventEmitter();
bus.setMaxListeners(0);

/** How long the last announced version of a job is kept for a long-poll to start from. */
const RECENT_MS = 10_000;
const recent = new TtlCache<Job>(() => RECENT_MS, 5_000);

export function publishJob(job: Job): void {
  const known = recent.get(job.id);
  if (!known || known.version < job.version) recent.set(job.id, job);
  bus.emit(job.id, job);
}

/** The newest version of the job this instance wrote in the last few seconds, if any. */
export function recentJob(id: string): Job | undefined {
  return recent.get(id);
}

/**
 * Inputs this instance stored a moment ago (their JSON text, small ones only), so that a claim made here soon after
 * the submit answers the miner without reading the input back. A job's input never changes once written.
 */
const INPUT_CACHE_MAX_BYTES = 16 * 1024;
const inputs = new TtlCache<string>(() => 60_000, 2_000);

export function rememberInput(jobId: string, json: string): void {
  if (json.length <= INPUT_CACHE_MAX_BYTES) inputs.set(jobId, json);
}

export function recentInput(jobId: string): string | undefined {
  return inputs.get(jobId);
}

export interface JobWatch {
  /** The newest version of the job announced since the watch began, newer than `version`; or undefined after `ms`. */
  next(version: number, ms: number): Promise<Job | undefined>;
  close(): void;
}

/** Starts listening for changes of one job (before it is read, so that no change falls in between). */
export function watchJob(id: string): JobWatch {
  let latest: Job | undefined;
  let wake: (() => void) | undefined;
  const listener = (job: Job) => {
    if (!latest || job.version > latest.version) latest = job;
    wake?.();
  };
  bus.on(id, listener);
  return {
    async next(version, ms) {
      if (latest && latest.version > version) return latest;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      return latest && latest.version > version ? latest : undefined;
    },
    close: () => bus.off(id, listener),
  };
}

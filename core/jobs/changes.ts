import { EventEmitter } from "node:events";
import type { Job } from "./model.ts";

/**
 * In-process job changes: every transition made in this instance announces the new job, so a client long-polling
 * that job here (`GET /v1/jobs/{id}?wait=`, `Prefer: wait`) is woken by the change itself and answered from it,
 * without reading the job again. A change made in another instance is not seen here: the waiter re-reads the job
 * on a slow fallback schedule (core/jobs/read.ts).
 */
const bus = new EventEmitter();
bus.setMaxListeners(0);

export function publishJob(job: Job): void {
  bus.emit(job.id, job);
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

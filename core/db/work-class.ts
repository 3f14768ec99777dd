import { AsyncLocalStorage } from "node:async_hooks";
import { setting } from "../settings.ts";

/**
 * Which DynamoDB requests go first when a process has more in flight than the table keeps up with.
 *
 * - `finish`: work that moves a job to its end or hands it out (a miner's poll, start, progress, result, failure);
 * - `other`: everything else that moves jobs along or reads them (the stream handler, consumers, timers, reads);
 * - `upkeep`: a miner's heartbeat, registration, drain: liveness, not work (a fleet heartbeating must not hold
 *   submits back);
 * - `admit`: work that adds jobs (submit).
 *
 * Why: when the table is the bottleneck (DynamoDB Local on one machine, or a provisioned table at its limit), clients
 * that submit as fast as submits return add jobs faster than miners can drain them, since a submit costs less than a
 * claim and a result; the ready queue then grows without bound and every job waits behind it. Finishing first keeps
 * the backlog at what the fleet can run and turns the excess into submit latency (backpressure) instead of queueing
 * delay for everyone. A process that is not busy never waits: a submit's request waits only while
 * `COORD_DDB_ADMIT_CONCURRENCY` requests of work are in flight in the process. On Lambda (one request per instance) it never
 * engages.
 */
export type WorkClass = "finish" | "other" | "upkeep" | "admit";

const current = new AsyncLocalStorage<WorkClass>();

/** Runs `fn` with its DynamoDB requests in `cls` (for everything it awaits). */
export function withWorkClass<T>(cls: WorkClass, fn: () => T): T {
  return current.run(cls, fn);
}

export function currentWorkClass(): WorkClass {
  return current.getStore() ?? "other";
}

/**
 * A gate where only admitting work waits: `admit` requests start only while fewer than `limit` requests of work
 * (`finish`, `other` and `admit` itself; `upkeep` does not count) are in flight, in arrival order; every other
 * request starts at once. Finishing work thus takes the table's capacity first and submits get what is left.
 */
export class AdmissionGate {
  private working = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: () => number) {}

  async acquire(cls: WorkClass): Promise<() => void> {
    if (cls === "admit" && (this.working >= this.limit() || this.waiting.length > 0)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    const counts = cls !== "upkeep";
    if (counts) this.working++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (counts) this.working--;
      if (this.working < this.limit()) this.waiting.shift()?.();
    };
  }

  get stats() {
    return { working: this.working, waiting: this.waiting.length };
  }
}

/** The process's gate in front of DynamoDB (core/db/client.ts). */
export const dynamoGate = new AdmissionGate(() => setting("COORD_DDB_ADMIT_CONCURRENCY"));

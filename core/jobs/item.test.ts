import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { config } from "../config.ts";
import { firstSweep, jobItem, nextDeadline, sweepTime } from "./item.ts";
import type { Job } from "./model.ts";
import { JOB_STATUSES, TERMINAL } from "./statuses.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

const base: Job = {
  id: "job_x",
  accountId: "acc_x",
  service: "echo",
  status: "queued",
  version: 1,
  attempt: 0,
  maxAttempts: 3,
  priority: 5,
  maxPrice: 1,
  ttlSeconds: 600,
  timeoutSeconds: 60,
  constraints: {},
  inputBytes: 1,
  createdAt: at(0),
  updatedAt: at(0),
  queueDeadline: at(600),
};

const aJob = fc.record({
  status: fc.constantFrom(...JOB_STATUSES),
  queueDeadline: fc.integer({ min: 0, max: 5000 }).map(at),
  leaseExpiresAt: fc.option(fc.integer({ min: 0, max: 5000 }).map(at), { nil: undefined }),
  timeoutAt: fc.option(fc.integer({ min: 0, max: 5000 }).map(at), { nil: undefined }),
  sweepAt: fc.option(fc.integer({ min: 0, max: 5000 }).map(at), { nil: undefined }),
});

describe("the deadline index entry", () => {
  it("is never later than the job's next deadline, and absent once the job is terminal", () => {
    fc.assert(
      fc.property(aJob, (fields) => {
        const job = { ...base, ...fields };
        const filed = sweepTime(job);
        const due = nextDeadline(job);
        if (TERMINAL.has(job.status)) expect(filed).toBeUndefined();
        else if (due) expect(filed && filed <= due).toBe(true);
        const item = jobItem(job);
        expect(item.GSI3SK === undefined).toBe(filed === undefined);
        if (filed) expect(item.GSI3SK).toBe(`${filed}#${job.id}`);
      }),
    );
  });

  it("filed at submit stays where it is when the job is claimed before its early look", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: 0, max: 3600 }),
        (ttl, timeout, claimedAfter) => {
          const job = { ...base, ttlSeconds: ttl, timeoutSeconds: timeout, queueDeadline: at(ttl) };
          const submitted = { ...job, sweepAt: firstSweep(job) };
          const filed = sweepTime(submitted);
          expect(filed).toBe(submitted.sweepAt);
          if (claimedAfter >= ttl) return;
          // A claim sets the lease and the execution deadline from the claim's own time.
          const claimed: Job = {
            ...submitted,
            status: "assigned",
            leaseExpiresAt: at(claimedAfter + config.leaseSeconds),
            timeoutAt: at(claimedAfter + timeout),
          };
          expect(sweepTime(claimed)).toBe(filed);
        },
      ),
    );
  });
});

import { describe, expect, it } from "vitest";
import { timerFor } from "./timers.ts";

describe("job timers", () => {
  it("a submit or requeue starts a queue-TTL chain and a claim starts a lease chain for that attempt", () => {
    expect(timerFor("job.submitted.v1", { job_id: "j", attempt: 0 })).toEqual({
      job_id: "j",
      phase: "queue",
      attempt: 0,
    });
    expect(timerFor("job.requeued.v1", { job_id: "j", attempt: 1 })).toEqual({
      job_id: "j",
      phase: "queue",
      attempt: 1,
    });
    expect(timerFor("job.assigned.v1", { job_id: "j", attempt: 2 })).toEqual({
      job_id: "j",
      phase: "lease",
      attempt: 2,
    });
  });

  it("other events start nothing", () => {
    for (const t of [
      "job.started.v1",
      "job.progress.v1",
      "job.completed.v1",
      "job.failed.v1",
      "job.cancelled.v1",
    ]) {
      expect(timerFor(t, { job_id: "j", attempt: 1 })).toBeUndefined();
    }
  });
});

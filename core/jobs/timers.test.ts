import { describe, expect, it } from "vitest";
import { timerFor } from "./timers.ts";

describe("job timers", () => {
  it("a submit or requeue starts a queue-TTL chain and a claim starts a lease chain for that attempt", () => {
    const now = new Date("2026-01-01T00:00:00.000Z");
    expect(timerFor("job.submitted.v1", { job_id: "j", attempt: 0 }, now)).toEqual({
      job_id: "j",
      phase: "queue",
      attempt: 0,
      due_at: now.toISOString(),
    });
    expect(timerFor("job.requeued.v1", { job_id: "j", attempt: 1 }, now)).toMatchObject({
      phase: "queue",
      attempt: 1,
    });
    expect(timerFor("job.assigned.v1", { job_id: "j", attempt: 2 }, now)).toMatchObject({
      phase: "lease",
      attempt: 2,
    });
  });

  it("a chain is first due at the deadline the event carries, so it starts without reading the job", () => {
    expect(
      timerFor("job.submitted.v1", { job_id: "j", attempt: 0, queue_deadline: "2026-01-01T01:00:00.000Z" }),
    ).toMatchObject({ due_at: "2026-01-01T01:00:00.000Z" });
    // The lease chain is due at the lease or the execution timeout, whichever comes first.
    const lease = { job_id: "j", attempt: 1, lease_expires_at: "2026-01-01T00:01:00.000Z" };
    expect(timerFor("job.assigned.v1", { ...lease, timeout_at: "2026-01-01T00:00:30.000Z" })).toMatchObject({
      due_at: "2026-01-01T00:00:30.000Z",
    });
    expect(timerFor("job.assigned.v1", { ...lease, timeout_at: "2026-01-01T05:00:00.000Z" })).toMatchObject({
      due_at: "2026-01-01T00:01:00.000Z",
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

import { describe, expect, it } from "vitest";
import { canTransition, JOB_STATUSES, TERMINAL, TRANSITIONS, type TransitionName } from "./statuses.ts";

describe("the job state machine", () => {
  it("terminal states never change, except a client retry of a failure or time-out", () => {
    for (const status of TERMINAL) {
      const allowed = (Object.keys(TRANSITIONS) as TransitionName[]).filter((t) => canTransition(t, status));
      const leaving = allowed.filter((t) => TRANSITIONS[t].to !== status);
      expect(leaving).toEqual(status === "failed" || status === "timed_out" ? ["retry"] : []);
    }
  });

  it("a completed job can only be refunded, which keeps it completed", () => {
    const allowed = (Object.keys(TRANSITIONS) as TransitionName[]).filter((t) =>
      canTransition(t, "completed"),
    );
    expect(allowed).toEqual(["refund"]);
    expect(TRANSITIONS.refund.to).toBe("completed");
  });

  it("every state is reachable and every transition lands on a known state", () => {
    const reached = new Set(Object.values(TRANSITIONS).map((t) => t.to));
    for (const s of JOB_STATUSES) if (s !== "queued") expect(reached.has(s)).toBe(true);
  });

  it("only a queued job can be claimed or expire", () => {
    for (const s of JOB_STATUSES) {
      expect(canTransition("claim", s)).toBe(s === "queued");
      expect(canTransition("expire", s)).toBe(s === "queued");
    }
  });
});

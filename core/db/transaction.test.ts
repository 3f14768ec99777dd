import { describe, expect, it } from "vitest";
import { onlyConflicted, retryingConflicts } from "./transaction.ts";

const cancelled = (...codes: string[]) =>
  Object.assign(new Error("cancelled"), {
    name: "TransactionCanceledException",
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

describe("retrying transactions that lost only to a conflict", () => {
  it("sends again after a conflict and returns the later success", async () => {
    let calls = 0;
    const out = await retryingConflicts(
      async () => {
        calls++;
        if (calls < 3) throw cancelled("None", "TransactionConflict");
        return "ok";
      },
      { baseMs: 1 },
    );
    expect(out).toBe("ok");
    expect(calls).toBe(3);
  });

  it("never retries a refused condition, even beside a conflict", async () => {
    let calls = 0;
    const err = cancelled("ConditionalCheckFailed", "TransactionConflict");
    await expect(
      retryingConflicts(
        async () => {
          calls++;
          throw err;
        },
        { baseMs: 1 },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
    expect(onlyConflicted(err)).toBe(false);
  });

  it("gives up after its attempts and throws the last conflict", async () => {
    let calls = 0;
    await expect(
      retryingConflicts(
        async () => {
          calls++;
          throw cancelled("TransactionConflict");
        },
        { attempts: 4, baseMs: 1 },
      ),
    ).rejects.toThrow("cancelled");
    expect(calls).toBe(4);
  });

  it("passes other errors through untouched", async () => {
    expect(onlyConflicted(new Error("network"))).toBe(false);
    await expect(retryingConflicts(async () => Promise.reject(new Error("network")))).rejects.toThrow(
      "network",
    );
  });
});

import { describe, expect, it } from "vitest";
import { AdmissionGate, currentWorkClass, withWorkClass } from "./work-class.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("the admission gate", () => {
  it("lets finishing work through at once however busy the process is, and holds submits past the limit", async () => {
    const gate = new AdmissionGate(() => 2);
    const a = await gate.acquire("finish");
    const b = await gate.acquire("other");
    let admitted = false;
    const pending = gate.acquire("admit").then((release) => {
      admitted = true;
      return release;
    });
    // Above the limit already: more finishing work still starts.
    const c = await gate.acquire("finish");
    await tick();
    expect(admitted).toBe(false);
    expect(gate.stats).toEqual({ inFlight: 3, waiting: 1 });
    c();
    await tick();
    expect(admitted).toBe(false); // 2 in flight: still at the limit
    a();
    await tick();
    expect(admitted).toBe(true); // below it: the submit goes
    b();
    (await pending)();
    expect(gate.stats).toEqual({ inFlight: 0, waiting: 0 });
  });

  it("serves waiting submits in arrival order, and a release counts once", async () => {
    const gate = new AdmissionGate(() => 1);
    const first = await gate.acquire("admit");
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => gate.acquire("admit").then((release) => (order.push(n), release)));
    first();
    first();
    expect(gate.stats.inFlight).toBeLessThanOrEqual(1);
    for (const w of waits) (await w)();
    expect(order).toEqual([1, 2, 3]);
    expect(gate.stats).toEqual({ inFlight: 0, waiting: 0 });
  });

  it("knows the work class of what is running, through awaits", async () => {
    expect(currentWorkClass()).toBe("other");
    await withWorkClass("admit", async () => {
      await tick();
      expect(currentWorkClass()).toBe("admit");
    });
  });
});

import { describe, expect, it } from "vitest";
import { AdmissionGate, currentWorkClass, withWorkClass } from "./work-class.ts";

const tick = () => new Promise((r) => setImmediate(r));

describe("the admission gate", () => {
  it("lets all but submits through at once, and holds submits while work in flight is at the limit", async () => {
    const gate = new AdmissionGate(() => 2);
    const a = await gate.acquire("finish");
    const b = await gate.acquire("other");
    const beat = await gate.acquire("upkeep"); // heartbeats never wait, nor hold submits back
    let admitted = false;
    const pending = gate.acquire("admit").then((release) => {
      admitted = true;
      return release;
    });
    const c = await gate.acquire("finish"); // above the limit already: finishing work still starts
    await tick();
    expect(admitted).toBe(false);
    expect(gate.stats).toEqual({ working: 3, waiting: 1 });
    c();
    beat();
    await tick();
    expect(admitted).toBe(false); // 2 in flight: still at the limit
    a();
    await tick();
    expect(admitted).toBe(true); // below it: the submit goes
    b();
    (await pending)();
    expect(gate.stats).toEqual({ working: 0, waiting: 0 });
  });

  it("serves waiting submits in arrival order as work drops, and a release counts once", async () => {
    const gate = new AdmissionGate(() => 1);
    const finishing = await gate.acquire("finish");
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) =>
      gate.acquire("admit").then((release) => {
        order.push(n);
        return release;
      }),
    );
    await tick();
    expect(order).toEqual([]);
    finishing();
    finishing();
    // One submit at a time now (each counts while it runs): they go in order as each is released.
    for (const w of waits) (await w)();
    expect(order).toEqual([1, 2, 3]);
    expect(gate.stats).toEqual({ working: 0, waiting: 0 });
  });

  it("knows the work class of what is running, through awaits", async () => {
    expect(currentWorkClass()).toBe("other");
    await withWorkClass("admit", async () => {
      await tick();
      expect(currentWorkClass()).toBe("admit");
    });
  });
});

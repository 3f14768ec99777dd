import { describe, expect, it } from "vitest";
import { spread } from "./claim.ts";

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* numbers(n: number) {
  for (let i = 0; i < n; i++) yield i;
}

describe("spreading claims over the best candidates", () => {
  it("keeps every candidate, and moves none out of its window of k", async () => {
    const out = await collect(spread(numbers(10), 4));
    expect([...out].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [index, value] of out.entries()) expect(Math.floor(value / 4)).toBe(Math.floor(index / 4));
  });

  it("never moves a candidate across a group boundary (priority)", async () => {
    const out = await collect(spread(numbers(10), 8, (n) => (n < 3 ? "high" : "low")));
    expect([...out.slice(0, 3)].sort()).toEqual([0, 1, 2]);
  });

  it("with a window of one it is the original order", async () => {
    expect(await collect(spread(numbers(5), 1))).toEqual([0, 1, 2, 3, 4]);
  });
});

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { EnvelopeSchema, EVENT_SCHEMAS, EVENT_TYPES } from "../events/catalog.ts";
import { QUEUES } from "../events/queues.ts";
import { RULES, WEBHOOK_EVENT_TYPES } from "../events/rules.ts";
import { DOC_PATH, renderCatalog, withCatalog } from "../scripts/gen-event-docs.ts";

describe("the event catalog", () => {
  it("docs/events.md is generated from the schemas and is up to date (npx tsx scripts/gen-event-docs.ts)", () => {
    const current = readFileSync(DOC_PATH, "utf8");
    expect(current).toContain(renderCatalog());
    expect(withCatalog(current)).toBe(current);
  });

  it("every detail-type is versioned, and every rule routes catalog types to a defined queue", () => {
    for (const type of EVENT_TYPES) expect(type).toMatch(/^[a-z_]+\.[a-z_]+\.v\d+$/);
    const queues = new Set(QUEUES.map((q) => q.name));
    for (const rule of RULES) {
      expect(queues.has(rule.target), rule.name).toBe(true);
      for (const t of rule.pattern["detail-type"]) expect(EVENT_TYPES).toContain(t);
    }
    for (const t of WEBHOOK_EVENT_TYPES) expect(EVENT_TYPES).toContain(t);
  });

  it("the catalog lists only event types the code emits, so webhooks offer no type that never comes", () => {
    // The emitters name their type as a string literal (`outboxPut({type: "job.completed.v1", ...})`): every type
    // must be named somewhere in the code outside the catalog itself.
    const root = resolve(import.meta.dirname, "..");
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = join(dir, e.name);
        if (e.isDirectory()) return sources(p);
        return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
      });
    const code = ["core", "functions", "local"]
      .flatMap((d) => sources(join(root, d)))
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    const silent = EVENT_TYPES.filter((t) => !code.includes(`"${t}"`) && !code.includes(`'${t}'`));
    expect(silent, "event types nothing emits").toEqual([]);
  });

  it("job events carry seq on the envelope; a seq that is not a positive integer is refused", () => {
    const env = {
      id: "evt_x",
      type: "job.cancelled.v1",
      occurred_at: new Date().toISOString(),
      subject: "job_x",
      seq: 3,
      data: { job_id: "job_x", service: "echo", status: "cancelled", attempt: 1 },
    };
    expect(v.parse(EnvelopeSchema, env).seq).toBe(3);
    expect(v.safeParse(EnvelopeSchema, { ...env, seq: 0 }).success).toBe(false);
    expect(v.safeParse(EVENT_SCHEMAS["job.cancelled.v1"], env.data).success).toBe(true);
  });
});

/**
 * Generates the event catalog section of docs/events.md from the schemas (events/catalog.ts), the rules
 * (events/rules.ts) and the queues (events/queues.ts). Only the text between the GENERATED markers is rewritten; the
 * rest of the page is written by hand.
 *
 *   npx tsx scripts/gen-event-docs.ts          # rewrite docs/events.md
 *   npx tsx scripts/gen-event-docs.ts --check  # exit 1 if docs/events.md is stale (tests/events-docs.test.ts)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";
import {
  EnvelopeSchema,
  EVENT_DESCRIPTIONS,
  EVENT_SCHEMAS,
  EVENT_SOURCE,
  EVENT_TYPES,
} from "../events/catalog.ts";
import { QUEUES } from "../events/queues.ts";
import { RULES, WEBHOOK_EVENT_TYPES } from "../events/rules.ts";

export const DOC_PATH = fileURLToPath(new URL("../docs/events.md", import.meta.url));
export const BEGIN = "<!-- BEGIN GENERATED: event catalog (scripts/gen-event-docs.ts) -->";
export const END = "<!-- END GENERATED: event catalog -->";

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  maximum?: number;
}

function typeOf(s: JsonSchema): string {
  if (s.enum)
    return s.enum.length > 6
      ? "string (one of the detail-types below)"
      : s.enum.map((e) => `\`${String(e)}\``).join(" \\| ");
  if (s.const !== undefined) return `\`${String(s.const)}\``;
  if (s.anyOf) return s.anyOf.map(typeOf).join(" \\| ");
  if (s.type === "array") return `${s.items ? typeOf(s.items) : "unknown"}[]`;
  if (s.type === "object") {
    if (s.properties) {
      return `{ ${Object.entries(s.properties)
        .map(([k, v]) => `${k}${s.required?.includes(k) ? "" : "?"}: ${typeOf(v)}`)
        .join(", ")} }`;
    }
    return "object";
  }
  if (s.type === "integer" && s.minimum !== undefined) return `integer (>= ${s.minimum})`;
  if (Array.isArray(s.type)) return s.type.join(" \\| ");
  return s.type ?? "any";
}

/** A Markdown table with aligned columns (the layout `biome format` gives Markdown tables). */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

function fieldsTable(schema: GenericSchema): string[] {
  const json = toJsonSchema(schema, { errorMode: "ignore" }) as JsonSchema;
  const rows = Object.entries(json.properties ?? {}).map(([name, s]) => [
    `\`${name}\``,
    typeOf(s),
    json.required?.includes(name) ? "yes" : "no",
  ]);
  return table(["Field", "Type", "Required"], rows);
}

/** The generated block, markers included. */
export function renderCatalog(): string {
  const webhook = new Set<string>(WEBHOOK_EVENT_TYPES);
  const routes = (type: string) =>
    RULES.filter((r) => (r.pattern["detail-type"] as string[]).includes(type)).map(
      (r) => `\`${r.target}\` (rule \`${r.name}\`)`,
    );
  const out: string[] = [BEGIN, "", `Source: \`${EVENT_SOURCE}\`. ${EVENT_TYPES.length} detail-types.`, ""];
  out.push("### Envelope", "", "Every event's `detail` on the bus, and what consumers parse:", "");
  out.push(...fieldsTable(EnvelopeSchema), "");
  out.push("### Detail-types", "");
  out.push(
    ...table(
      ["Detail-type", "What happened", "Queues", "Webhook"],
      EVENT_TYPES.map((type) => {
        const queues = routes(type);
        return [
          `[\`${type}\`](#${type.replace(/[^a-z0-9_-]/g, "")})`,
          EVENT_DESCRIPTIONS[type] ?? "(undocumented)",
          queues.length ? queues.join(", ") : "-",
          webhook.has(type) ? "yes" : "-",
        ];
      }),
    ),
  );
  out.push("");
  for (const type of EVENT_TYPES) {
    out.push(`#### ${type}`, "", EVENT_DESCRIPTIONS[type] ?? "(undocumented)", "", "`data`:", "");
    out.push(...fieldsTable(EVENT_SCHEMAS[type] as GenericSchema), "");
  }
  out.push("### Queues", "");
  out.push(
    ...table(
      ["Queue", "Consumer", "Visibility", "Receives before DLQ", "Batch"],
      QUEUES.map((q) => [
        `\`${q.name}\` (DLQ \`${q.name}-dlq\`)`,
        `\`${q.handler}\``,
        `${q.visibilityTimeoutSeconds} s`,
        String(q.maxReceiveCount),
        String(q.batchSize),
      ]),
    ),
  );
  out.push("", END);
  return out.join("\n");
}

/** `text` with its generated block replaced (appended if the markers are missing). */
export function withCatalog(text: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) return `${text.trimEnd()}\n\n${renderCatalog()}\n`;
  return `${text.slice(0, start)}${renderCatalog()}${text.slice(end + END.length)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const current = readFileSync(DOC_PATH, "utf8");
  const next = withCatalog(current);
  if (process.argv.includes("--check")) {
    if (next !== current) {
      console.error("docs/events.md is stale: run npx tsx scripts/gen-event-docs.ts");
      process.exit(1);
    }
  } else if (next !== current) {
    writeFileSync(DOC_PATH, next);
    console.log("docs/events.md updated");
  } else console.log("docs/events.md is up to date");
}

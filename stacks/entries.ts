/**
 * Every Lambda entry point and how it is bundled, defined once. `stacks/` deploys these (SST bundles them with the
 * settings below) and `scripts/build.ts` bundles the very same entries with esbuild to check and measure them.
 *
 * Plain data only: no SST globals here, so `scripts/build.ts` (outside the SST program) can import it.
 */
import { QUEUES } from "../events/queues.ts";
import { SCHEDULES } from "../functions/cron/schedules.ts";

/** The Lambda runtime every function runs on. */
export const LAMBDA = {
  runtime: "nodejs22.x",
  architecture: "arm64",
  /** esbuild target matching `runtime`. */
  nodeTarget: "node22",
} as const;

/**
 * Prefer the ESM build of dual packages (@aws-sdk/*, Powertools, hono...): smaller, tree-shakes better, and avoids
 * CommonJS `require` of Node built-ins inside an ESM bundle. esbuild's default for platform node is main-first.
 */
export const MAIN_FIELDS = ["module", "main"];

export type EntryKind = "api" | "stream" | "ws" | "queue" | "cron";

export interface FunctionEntry {
  /** Folder under dist/ (`npm run build`), kebab-case and unique. */
  id: string;
  /** SST component name of the function (PascalCase, unique in the app; also its key in `Resource`). */
  component: string;
  kind: EntryKind;
  /** Source module, relative to the repo root; it exports `handler`. */
  source: string;
}

/** "webhook-delivery" -> "WebhookDelivery": SST component names are PascalCase. */
export function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]?.toUpperCase() + part.slice(1))
    .join("");
}

/** "webhook-delivery" -> "WEBHOOK_DELIVERY", as in `COORD_QUEUE_URL_<NAME>` (see functions/sqs.ts). */
export function upperSnake(name: string): string {
  return name.toUpperCase().replace(/-/g, "_");
}

/** SST's handler notation: `functions/api/handler.ts` exporting `handler` -> `functions/api/handler.handler`. */
export function sstHandler(entry: FunctionEntry): string {
  return `${entry.source.replace(/\.[cm]?[jt]s$/, "")}.handler`;
}

export const API_ENTRY: FunctionEntry = {
  id: "api",
  component: "ApiHandler",
  kind: "api",
  source: "functions/api/handler.ts",
};

/** The table's one stream consumer: outbox relay to the bus, and the queue summary. */
export const STREAM_ENTRY: FunctionEntry = {
  id: "stream",
  component: "StreamHandler",
  kind: "stream",
  source: "functions/stream/handler.ts",
};

/** The WebSocket API's one function (the miners' doorbell): `$connect`, `$disconnect` and every frame. */
export const DOORBELL_ENTRY: FunctionEntry = {
  id: "doorbell",
  component: "DoorbellHandler",
  kind: "ws",
  source: "functions/ws/handler.ts",
};

export function queueEntry(queue: { name: string; handler: string }): FunctionEntry {
  return {
    id: `queue-${queue.name}`,
    component: `${pascal(queue.name)}Consumer`,
    kind: "queue",
    source: queue.handler,
  };
}

export function cronEntry(schedule: { name: string; handler: string }): FunctionEntry {
  return {
    id: `cron-${schedule.name}`,
    component: `${pascal(schedule.name)}Cron`,
    kind: "cron",
    source: schedule.handler,
  };
}

/** Every function the stack deploys, in a stable order. */
export function functionEntries(): FunctionEntry[] {
  return [API_ENTRY, STREAM_ENTRY, DOORBELL_ENTRY, ...QUEUES.map(queueEntry), ...SCHEDULES.map(cronEntry)];
}

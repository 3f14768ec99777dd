import { toJsonSchema } from "@valibot/to-json-schema";
import * as v from "valibot";
import { NotFoundError, ValidationError } from "../errors.ts";
import { parse } from "../validate.ts";
import { blenderRender } from "./catalog/blender.ts";
import { echo } from "./catalog/echo.ts";
import { ffmpegTranscode } from "./catalog/ffmpeg.ts";
import { llmInference } from "./catalog/llm.ts";
import { stableDiffusionGenerate } from "./catalog/stable-diffusion.ts";
import { whisperTranscribe, whisperTranslate } from "./catalog/whisper.ts";
import { requirementsFor } from "./common.ts";
import type { Requirements, ServiceDef } from "./types.ts";

export { requirementsFor };

/**
 * The service registry. Services are data: each is a `ServiceDef` in `catalog/`, listed here. Adding a service is
 * adding a file and a line (see docs/services.md); nothing else in the coordinator names services.
 */
export const SERVICES: ServiceDef[] = [
  echo,
  whisperTranscribe,
  whisperTranslate,
  stableDiffusionGenerate,
  llmInference,
  ffmpegTranscode,
  blenderRender,
];

/** Ids are dot-joined `[a-z0-9-]` segments, so they are safe in keys (`QUEUE#<service>#<shard>`) and URLs. */
export const SERVICE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}(?:\.[a-z0-9][a-z0-9-]{0,63}){0,3}$/;

const BY_ID = new Map<string, ServiceDef>();
for (const def of SERVICES) {
  if (!SERVICE_ID_PATTERN.test(def.id)) throw new Error(`service id ${JSON.stringify(def.id)} is malformed`);
  if (BY_ID.has(def.id)) throw new Error(`service id ${def.id} is registered twice`);
  BY_ID.set(def.id, def);
}
const SORTED = [...SERVICES].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

export function findService(id: string): ServiceDef | undefined {
  return BY_ID.get(id);
}

/** The service with this id, or NotFoundError (404). */
export function getService(id: string): ServiceDef {
  const def = BY_ID.get(id);
  if (!def) throw new NotFoundError(`service ${JSON.stringify(id)}`);
  return def;
}

/**
 * The service behind a typed shortcut `POST /v1/services/{service}/{action}`: `whisper/transcribe` is
 * `whisper.transcribe`, and so on for every `service.action` id; a one-word id is reached with the action `run`
 * (`echo/run` is `echo`). NotFoundError otherwise.
 */
export function resolveShortcut(service: string, action: string): ServiceDef {
  const exact = BY_ID.get(`${service}.${action}`);
  if (exact) return exact;
  if (action === "run" && !service.includes(".")) {
    const single = BY_ID.get(service);
    if (single) return single;
  }
  throw new NotFoundError(`service shortcut ${JSON.stringify(`${service}/${action}`)}`);
}

/** The shortcut path of a service, under `/v1/services/`: `whisper/transcribe`, `echo/run`. */
export function shortcutOf(def: ServiceDef): string {
  const dot = def.id.indexOf(".");
  return dot === -1 ? `${def.id}/run` : `${def.id.slice(0, dot)}/${def.id.slice(dot + 1)}`;
}

// ---- listing ----

const CURSOR_PREFIX = "svc:";

function encodeCursor(id: string): string {
  return Buffer.from(`${CURSOR_PREFIX}${id}`, "utf8").toString("base64url");
}

/** The id a cursor continues after, or undefined for a cursor this API did not issue. */
function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  if (!text.startsWith(CURSOR_PREFIX) || encodeCursor(text.slice(CURSOR_PREFIX.length)) !== cursor)
    return undefined;
  const id = text.slice(CURSOR_PREFIX.length);
  return SERVICE_ID_PATTERN.test(id) ? id : undefined;
}

const category = v.pipe(
  v.string("category must be a string"),
  v.toLowerCase(),
  v.regex(/^[a-z0-9-]{1,32}$/, "category must be a category name such as audio, image or text"),
);
const q = v.pipe(
  v.string("q must be a string"),
  v.trim(),
  v.maxLength(200, "q must be at most 200 characters"),
);
const cursor = v.pipe(
  v.string("cursor must be a string"),
  v.description("next_cursor of the previous page"),
  v.check((c) => decodeCursor(c) !== undefined, "cursor is not one this API issued"),
);

export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 100;

/** `listServices` options. */
export const ListServicesOptions = v.object({
  category: v.optional(category),
  q: v.optional(q),
  cursor: v.optional(cursor),
  limit: v.optional(
    v.pipe(
      v.number("limit must be a number"),
      v.integer("limit must be an integer"),
      v.minValue(1, `limit must be from 1 to ${MAX_LIST_LIMIT}`),
      v.maxValue(MAX_LIST_LIMIT, `limit must be from 1 to ${MAX_LIST_LIMIT}`),
    ),
    DEFAULT_LIST_LIMIT,
  ),
});
export type ListServicesOptions = v.InferInput<typeof ListServicesOptions>;

/** The same options as they arrive in a query string (`?category=audio&q=whisper&limit=10&cursor=...`). */
export const ListServicesQuery = v.object({
  category: v.optional(category),
  q: v.optional(q),
  cursor: v.optional(cursor),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,4}$/, `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`),
      v.description(`Page size, an integer from 1 to ${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`),
      v.transform(Number),
      v.minValue(1, `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`),
      v.maxValue(MAX_LIST_LIMIT, `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`),
    ),
  ),
});

export interface ServicePage {
  items: ServiceDef[];
  /** Pass as `cursor` for the next page; null on the last page */
  next_cursor: string | null;
}

/**
 * Services in id order, filtered by category (exact, case-insensitive) and `q` (case-insensitive substring of id
 * or description), a page at a time. Options are validated (ValidationError names e.g. `limit`).
 */
export function listServices(options: ListServicesOptions = {}): ServicePage {
  const o = parse(ListServicesOptions, options);
  const after = o.cursor === undefined ? undefined : decodeCursor(o.cursor);
  const needle = o.q?.toLowerCase();
  const matching = SORTED.filter(
    (def) =>
      (after === undefined || def.id > after) &&
      (o.category === undefined || def.category === o.category) &&
      (!needle || def.id.includes(needle) || def.description.toLowerCase().includes(needle)),
  );
  const items = matching.slice(0, o.limit);
  const last = items.at(-1);
  return { items, next_cursor: matching.length > items.length && last ? encodeCursor(last.id) : null };
}

// ---- views ----

const jsonSchemas = new WeakMap<v.GenericSchema, Record<string, unknown>>();

/** JSON Schema (draft-07) of a valibot schema; cross-field rules (e.g. "prompt or messages") are not expressible. */
export function jsonSchemaOf(schema: v.GenericSchema): Record<string, unknown> {
  let cached = jsonSchemas.get(schema);
  if (!cached) {
    cached = toJsonSchema(schema, { errorMode: "ignore" }) as Record<string, unknown>;
    jsonSchemas.set(schema, cached);
  }
  return cached;
}

/** A service without its schemas, for listings. */
export function serviceSummary(def: ServiceDef) {
  return {
    id: def.id,
    category: def.category,
    description: def.description,
    shortcut: `/v1/services/${shortcutOf(def)}`,
    requirements: requirementsView(def),
    pricing: { ...def.pricing },
    defaults: { ...def.defaults },
  };
}

/** Everything a client or miner needs to know about a service, JSON-ready. */
export function serviceView(def: ServiceDef) {
  return {
    ...serviceSummary(def),
    input_schema: jsonSchemaOf(def.input),
    output_schema: jsonSchemaOf(def.output),
  };
}

/** Service-wide requirements, plus per-model hardware keyed by `input.model` where the model decides it. */
export function requirementsView(def: ServiceDef) {
  const view: Requirements & { by_model?: ServiceDef["model_requirements"] } = { ...def.requirements };
  if (def.model_requirements) view.by_model = structuredClone(def.model_requirements);
  return view;
}

// ---- per-job helpers ----

/** Parses a job's input with the service's schema: the normalized input (defaults filled), or ValidationError at `input.*`. */
export function validateInput(def: ServiceDef, input: unknown): unknown {
  return parse(def.input, input, "input");
}

/** What the matcher requires of a miner for this (validated) input, unless the client asks for more. */
export interface ServiceConstraints {
  /** Per GPU */
  min_vram_mb: number;
  gpu_count: number;
  cuda_min?: string;
  models?: string[];
}

export function defaultConstraints(def: ServiceDef, input: unknown): ServiceConstraints {
  const r = requirementsFor(def, input);
  const c: ServiceConstraints = { min_vram_mb: r.min_vram_mb, gpu_count: r.gpu_count };
  if (r.cuda_min !== undefined) c.cuda_min = r.cuda_min;
  if (r.models && r.models.length > 0) c.models = [...r.models];
  return c;
}

/**
 * The most units one attempt of this (validated) input can bill: the meter at the execution timeout. With a unit
 * price this bounds the hold when a client gives no `max_price`.
 */
export function maxUnits(def: ServiceDef, input: unknown, timeoutSeconds: number): number {
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0)
    throw new ValidationError([{ path: "timeout_seconds", message: "must be a non-negative number" }]);
  return def.meter(input, timeoutSeconds * 1000);
}

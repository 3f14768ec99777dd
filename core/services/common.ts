import * as v from "valibot";
import type { ModelRequirements, Requirements, ServiceDef } from "./types.ts";

/** Helpers the catalog shares: object schemas with readable messages, bounded numbers, metering. */

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function entryMessage(what: string) {
  return (issue: v.BaseIssue<unknown>) => {
    if (issue.expected === "never") return `unknown field ${JSON.stringify(issue.input)}`;
    if (issue.expected?.startsWith('"')) return `${issue.expected.slice(1, -1)} is required`;
    return `${what} must be a JSON object`;
  };
}

/** A JSON object (never an array) with exactly these fields: a typo such as `temprature` is refused, not ignored. */
export function strictInput<const E extends v.ObjectEntries>(entries: E, what: string) {
  return v.pipe(
    v.unknown(),
    v.check(isPlainObject, `${what} must be a JSON object`),
    v.strictObject(entries, entryMessage(what)),
  );
}

/** A JSON object (never an array) with these fields checked and any others kept as they are. */
export function looseInput<const E extends v.ObjectEntries>(entries: E, what: string) {
  return v.pipe(
    v.unknown(),
    v.check(isPlainObject, `${what} must be a JSON object`),
    v.looseObject(entries, entryMessage(what)),
  );
}

/** An integer in [min, max], with messages that name the field. */
export function int(name: string, min: number, max: number) {
  return v.pipe(
    v.number(`${name} must be a number`),
    v.integer(`${name} must be an integer`),
    v.minValue(min, `${name} must be at least ${min}`),
    v.maxValue(max, `${name} must be at most ${max}`),
  );
}

/** A finite number in [min, max]. */
export function num(name: string, min: number, max: number) {
  return v.pipe(
    v.number(`${name} must be a number`),
    v.finite(`${name} must be finite`),
    v.minValue(min, `${name} must be at least ${min}`),
    v.maxValue(max, `${name} must be at most ${max}`),
  );
}

/** A string of length [min, max]. */
export function text(name: string, min: number, max: number) {
  return v.pipe(
    v.string(`${name} must be a string`),
    v.minLength(min, min === 1 ? `${name} must not be empty` : `${name} must be at least ${min} characters`),
    v.maxLength(max, `${name} must be at most ${max} characters`),
  );
}

/** One of `options`, naming them in the message. */
export function oneOf<const T extends readonly string[]>(name: string, options: T) {
  return v.picklist(options, `${name} must be one of ${options.join(", ")}`);
}

/** Reads `input[key]` from an input that validation already accepted, without trusting it further. */
export function field(input: unknown, key: string): unknown {
  return isPlainObject(input) ? input[key] : undefined;
}

/** Reads an integer field, or `fallback` when it is missing or not an integer. */
export function intField(input: unknown, key: string, fallback: number): number {
  const value = field(input, key);
  return typeof value === "number" && Number.isSafeInteger(value) ? value : fallback;
}

/** Reads a string field, or `fallback`. */
export function stringField(input: unknown, key: string, fallback: string): string {
  const value = field(input, key);
  return typeof value === "string" ? value : fallback;
}

/**
 * GPU-seconds from coordinator-observed execution time: whole seconds rounded up (at least one), times the GPUs
 * the input needs. Never decreases as `observedMs` grows; garbage time counts as zero.
 */
export function gpuSeconds(observedMs: number, gpus: number): number {
  const ms = Number.isFinite(observedMs) && observedMs > 0 ? observedMs : 0;
  return Math.max(1, Math.ceil(ms / 1000)) * Math.max(1, Math.floor(gpus));
}

/**
 * The requirements for one input: the service-wide ones, overridden by the profile of `input.model` when the
 * service has per-model hardware, with the models from `modelsFor(input)`.
 */
export function requirementsFor(def: ServiceDef, input: unknown): Requirements {
  const model = field(input, "model");
  const profile: ModelRequirements | undefined =
    typeof model === "string" && def.model_requirements && Object.hasOwn(def.model_requirements, model)
      ? def.model_requirements[model]
      : undefined;
  const models = def.modelsFor ? def.modelsFor(input) : def.requirements.models;
  const merged: Requirements = { ...def.requirements, ...profile };
  if (models && models.length > 0) merged.models = [...models];
  else delete merged.models;
  return merged;
}

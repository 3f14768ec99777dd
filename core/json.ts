import { type Issue, ValidationError } from "./errors.ts";

/**
 * What any JSON we accept must be, whatever the route: numbers that are finite IEEE-754 doubles (RFC 7493 I-JSON;
 * `1e999` parses to Infinity, which no JSON text can carry back) and nesting no deeper than MAX_JSON_DEPTH (a guard
 * for every recursive walk after us: schema validation, canonical hashing, stringify). The body gate checks every
 * request body; job payloads are checked again where they are stored (core/jobs/payload.ts).
 */

/** Objects and arrays nest at most this deep (a guard for every recursive walk of a payload after us). */
export const MAX_JSON_DEPTH = 64;
/** At most this many problems are named per payload. */
const MAX_ISSUES = 10;

/** One path segment as it appears in an issue path (long keys cut short: the path must stay readable). */
function segment(key: string | number): string {
  const s = String(key);
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

/**
 * What keeps `value` from being stored as JSON text and read back the same, as issues rooted at `root` (e.g.
 * `body.input.a.b`). Walks iteratively, so that no nesting depth can exhaust the stack.
 */
export function jsonIssues(value: unknown, root: string): Issue[] {
  const issues: Issue[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0 && issues.length < MAX_ISSUES) {
    const { value: v, path, depth } = stack.pop() as (typeof stack)[number];
    if (typeof v === "number") {
      if (!Number.isFinite(v))
        issues.push({ path, message: "a number JSON cannot represent (it is beyond IEEE-754 double range)" });
      continue;
    }
    if (v === null || typeof v === "string" || typeof v === "boolean") continue;
    if (typeof v !== "object") {
      issues.push({ path, message: "not a JSON value" });
      continue;
    }
    if (depth >= MAX_JSON_DEPTH) {
      issues.push({ path, message: `nested deeper than ${MAX_JSON_DEPTH} levels` });
      continue;
    }
    const entries: [string | number, unknown][] = Array.isArray(v)
      ? v.map((item, i) => [i, item])
      : Object.entries(v as Record<string, unknown>);
    // Pushed in reverse so that issues come out in document order.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i] as [string | number, unknown];
      stack.push({ value: item, path: `${path}.${segment(key)}`, depth: depth + 1 });
    }
  }
  return issues;
}

/** Throws a ValidationError (422) naming every path of `value` that JSON text cannot carry. */
export function assertStorableJson(value: unknown, root: string): void {
  const issues = jsonIssues(value, root);
  if (issues.length > 0) throw new ValidationError(issues);
}

import * as v from "valibot";
import { type Issue, ValidationError } from "./errors.ts";

/** Turns valibot issues into our `{path, message}` list, paths rooted at `root` (e.g. `body`, `query`). */
export function toIssues(issues: readonly v.BaseIssue<unknown>[], root?: string): Issue[] {
  return issues.map((issue) => {
    const dotted = v.getDotPath(issue);
    const path = [root, dotted].filter((p) => p !== undefined && p !== null && p !== "").join(".");
    return { path: path || root || "body", message: issue.message };
  });
}

/** Parses `value` with `schema`, throwing a ValidationError naming every offending path. */
export function parse<S extends v.GenericSchema>(schema: S, value: unknown, root?: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortPipeEarly: true });
  if (!result.success) throw new ValidationError(toIssues(result.issues, root));
  return result.output;
}

/** A reason an operator gives for an action (refunds, cancels, adjustments): kept in the ledger and the audit trail. */
export const ReasonText = v.pipe(v.string(), v.trim(), v.minLength(1, "give a reason"), v.maxLength(500));

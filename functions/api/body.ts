import type { Context } from "hono";
import { CoordError, ValidationError } from "../../core/errors.ts";
import { jsonIssues } from "../../core/json.ts";
import type { AppEnv } from "./env.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The request's JSON object body (parsed once by the body gate, body-limit.ts), or undefined when it had none. */
export async function readJson(c: Context<AppEnv>): Promise<Record<string, unknown> | undefined> {
  return c.var.body;
}

/**
 * Parses a request body: empty is `undefined` (schemas decide whether that is allowed); bytes that are not UTF-8
 * or not JSON are a 400 `malformed_json`; JSON that is not an object (`[]`, `1`, `"x"`, `null`) is a 422 on `body`,
 * and so is a number JSON cannot carry (`1e999`) or nesting too deep anywhere in it (core/json.ts), naming the path.
 */
export function parseJsonBody(bytes: Uint8Array): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new CoordError("malformed_json", "request body is not valid UTF-8");
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Name the position only: the parser's message quotes the body, which may hold a secret sent by mistake.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new CoordError(
      "malformed_json",
      `request body is not valid JSON${at ? ` (at character ${at})` : ""}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError([{ path: "body", message: "the body must be a JSON object" }]);
  }
  // Each field may nest a payload (`input`, `output`) up to the limit.
  const issues = Object.entries(value).flatMap(([name, field]) => jsonIssues(field, `body.${name}`));
  if (issues.length > 0) throw new ValidationError(issues);
  return value as Record<string, unknown>;
}

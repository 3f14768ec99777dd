import { CoordError } from "../errors.ts";

/**
 * Job payloads (a job's `input`, a result's `output` and `usage`) are stored as JSON text, not as DynamoDB maps:
 * any I-JSON value (RFC 7493) survives the round trip exactly, whatever DynamoDB would make of it as a map (empty
 * or 64 KB keys, numbers beyond DynamoDB's 38 digits and 1e125, integers beyond 2^53, nesting beyond 32 levels).
 * Numbers are IEEE-754 doubles, as JSON.parse gives them. What JSON text cannot carry is refused with 422 naming the
 * path: a number that parsed to a non-finite value (`1e999`), and nesting deeper than MAX_JSON_DEPTH.
 */

/** Inline JSON input and output stop at 256 KB (DynamoDB items stop at 400 KB). */
export const MAX_INLINE_BYTES = 256 * 1024;
/**
 * The JSON text to store for a payload (`undefined` is stored as `null`), after `assertStorableJson`. Over
 * MAX_INLINE_BYTES is 413 naming `path`.
 */
export function payloadText(value: unknown, what: string, path: string): { json: string; bytes: number } {
  const json = JSON.stringify(value ?? null);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_INLINE_BYTES) {
    throw new CoordError(
      "payload_too_large",
      `${what} is ${bytes} bytes; inline ${what} stops at ${MAX_INLINE_BYTES}: put large data in an artifact (POST /v1/uploads) and reference it as {"artifact_id": ...}`,
      {
        errors: [
          {
            path,
            message: `at most ${MAX_INLINE_BYTES} bytes inline; larger data goes through POST /v1/uploads`,
          },
        ],
      },
    );
  }
  return { json, bytes };
}

/**
 * A stored payload read back: the JSON text attribute `<name>Json`, or (items written before payloads were text)
 * the map attribute `<name>`. Absent is `null`.
 */
export function storedPayload(item: Record<string, unknown> | undefined, name: string): unknown {
  const text = item?.[`${name}Json`];
  if (typeof text === "string") return JSON.parse(text);
  return item?.[name] ?? null;
}

import { ValidationError } from "../errors.ts";

/** Opaque pagination cursors: the DynamoDB LastEvaluatedKey, base64url-encoded. */
export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString("base64url") : undefined;
}

export function decodeCursor(
  cursor: string | undefined,
  path = "query.cursor",
): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (key && typeof key === "object" && !Array.isArray(key)) return key as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ValidationError([{ path, message: "not a cursor this API issued" }]);
}

/**
 * Decodes a cursor and checks that it points into the partition being listed (a cursor crafted for another
 * account's partition is refused, not followed), so that DynamoDB never sees a start key we did not issue.
 */
export function cursorWithin(
  cursor: string | undefined,
  partition: Record<string, string>,
): Record<string, unknown> | undefined {
  const key = decodeCursor(cursor);
  return key && startKeyWithin(key, partition);
}

/** A decoded start key, refused unless it lies in `partition` and holds only key-sized strings. */
export function startKeyWithin(key: Record<string, unknown>, partition: Record<string, string>) {
  for (const [name, value] of Object.entries(partition)) {
    if (key[name] !== value)
      throw new ValidationError([{ path: "query.cursor", message: "not a cursor for this list" }]);
  }
  for (const value of Object.values(key)) {
    // Our keys are strings well under DynamoDB's key size limits (a longer one would be its 500, not our 422).
    if (typeof value !== "string" || Buffer.byteLength(value) > 1024)
      throw new ValidationError([{ path: "query.cursor", message: "not a cursor this API issued" }]);
  }
  return key;
}

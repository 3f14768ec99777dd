import * as v from "valibot";
import { decodeCursor, encodeCursor } from "../db/cursor.ts";
import { ValidationError } from "../errors.ts";

/** `?cursor=&limit=` as it arrives in a query string. */
export function pageQuery(max = 100) {
  return {
    cursor: v.optional(v.pipe(v.string(), v.maxLength(2000))),
    limit: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d{1,5}$/, `limit must be an integer from 1 to ${max}`),
        v.transform(Number),
        v.minValue(1, `limit must be an integer from 1 to ${max}`),
        v.maxValue(max, `limit must be an integer from 1 to ${max}`),
      ),
    ),
  };
}

export const PageQuery = v.object(pageQuery());

/**
 * Decodes a cursor and checks that it points into the partition being listed (a cursor crafted for another
 * account's partition is refused, not followed), so that DynamoDB never sees a start key we did not issue.
 */
export function cursorWithin(
  cursor: string | undefined,
  partition: Record<string, string>,
): Record<string, unknown> | undefined {
  const key = decodeCursor(cursor);
  if (!key) return undefined;
  for (const [name, value] of Object.entries(partition)) {
    if (key[name] !== value)
      throw new ValidationError([{ path: "query.cursor", message: "not a cursor for this list" }]);
  }
  for (const value of Object.values(key)) {
    if (typeof value !== "string")
      throw new ValidationError([{ path: "query.cursor", message: "not a cursor this API issued" }]);
  }
  return key;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export function nextCursor(key: Record<string, unknown> | undefined): string | null {
  return encodeCursor(key) ?? null;
}

import * as v from "valibot";
import { encodeCursor } from "../db/cursor.ts";

export { cursorWithin } from "../db/cursor.ts";

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

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export function nextCursor(key: Record<string, unknown> | undefined): string | null {
  return encodeCursor(key) ?? null;
}

import type { Context } from "hono";
import { CoordError } from "../../core/errors.ts";

/**
 * Reads a JSON body. An empty body is `undefined` (schemas decide whether that is allowed); anything that is not
 * JSON is a 400 `malformed_json` (whatever the Content-Type says: curl's default form type is forgiven). Size is enforced earlier by the body-limit middleware (413).
 */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    // Name the position only: the parser's message quotes the body, which may hold a secret sent by mistake.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new CoordError(
      "malformed_json",
      `request body is not valid JSON${at ? ` (at character ${at})` : ""}`,
    );
  }
}

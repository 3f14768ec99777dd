import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";

/**
 * The streams client deserializes an empty map attribute (`{"M":{}}`) as `{}`, which `unmarshall` rejects; one
 * such item would block its shard. Restore the type tag before unmarshalling.
 */
function repair(value: unknown): unknown {
  if (!value || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return { M: {} };
  const [tag, inner] = entries[0] as [string, unknown];
  if (tag === "M" && inner && typeof inner === "object") {
    return { M: Object.fromEntries(Object.entries(inner).map(([k, v]) => [k, repair(v)])) };
  }
  if (tag === "L" && Array.isArray(inner)) return { L: inner.map(repair) };
  return value;
}

/** A stream record image as a plain object. */
export function imageOf(image: unknown): Record<string, unknown> | undefined {
  if (!image) return undefined;
  const fixed = Object.fromEntries(
    Object.entries(image as Record<string, unknown>).map(([k, v]) => [k, repair(v)]),
  );
  return unmarshall(fixed as Record<string, AttributeValue>);
}

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { DynamoDBStreamEvent } from "aws-lambda";
import { log } from "../log.ts";

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

/** A stream record, its images parsed once for every part of the stream handler. */
export interface StreamChange {
  /** The record's sequence number: what a batch item failure names. */
  seq: string;
  eventName?: string;
  oldImage?: Record<string, unknown>;
  newImage?: Record<string, unknown>;
}

/**
 * Parses each record's images. A record that does not unmarshall is a bug: it is logged and left out rather than
 * failing (and so blocking) its shard; the item stays in the table.
 */
export function changesOf(event: DynamoDBStreamEvent): StreamChange[] {
  const changes: StreamChange[] = [];
  for (const r of event.Records) {
    try {
      changes.push({
        seq: r.dynamodb?.SequenceNumber ?? "",
        eventName: r.eventName,
        oldImage: imageOf(r.dynamodb?.OldImage),
        newImage: imageOf(r.dynamodb?.NewImage),
      });
    } catch (err) {
      log.error("stream image does not unmarshall; skipped", {
        err: String(err),
        seq: r.dynamodb?.SequenceNumber,
      });
    }
  }
  return changes;
}

import { ATTRIBUTES, type Projection, TABLE } from "../core/db/table.ts";

/** "NEW_AND_OLD_IMAGES" -> "new-and-old-images", SST's spelling of a stream view type. */
type StreamView = "keys-only" | "new-image" | "old-image" | "new-and-old-images";

function streamView(view: string): StreamView {
  return view.toLowerCase().replace(/_/g, "-") as StreamView;
}

/** The index projection in SST's spelling. */
function sstProjection(p: Projection): "all" | "keys-only" | string[] {
  if (p === "ALL") return "all";
  if (p === "KEYS_ONLY") return "keys-only";
  return [...p];
}

/**
 * The single table from its one definition (core/db/table.ts): PK/SK, the overloaded GSIs (each projecting what
 * its readers need), on-demand billing, the `expiresAt` TTL and the stream the outbox relay reads. Point-in-time recovery
 * is on (SST's default). Protected stages (production, see sst.config.ts) also get deletion protection, on top of
 * `removal: "retain"`.
 */
export function createTable() {
  return new sst.aws.Dynamo("Table", {
    fields: Object.fromEntries(ATTRIBUTES.map((name) => [name, "string" as const])),
    primaryIndex: { hashKey: TABLE.partitionKey, rangeKey: TABLE.sortKey },
    globalIndexes: Object.fromEntries(
      Object.entries(TABLE.indexes).map(([name, index]) => [
        name,
        { hashKey: index.partitionKey, rangeKey: index.sortKey, projection: sstProjection(index.projection) },
      ]),
    ),
    ttl: TABLE.ttlAttribute,
    stream: streamView(TABLE.stream),
    deletionProtection: $app.protect,
  });
}

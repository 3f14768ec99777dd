import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { batchGetAll } from "../db/batch.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../db/transaction.ts";
import {
  ARTIFACT_STATUSES,
  ARTIFACT_TRANSITIONS,
  type ArtifactTransition,
  canMoveArtifact,
} from "./statuses.ts";

/**
 * The artifacts store, the one module that speaks DynamoDB about artifacts (core/db/ACCESS_PATTERNS.md): one item
 * per artifact (`ARTIFACT#<id>`/`ARTIFACT`), read by id. Its object's bytes are in the bucket (storage.ts). The
 * table's TTL removes an item a day after the artifact expired; until then a read answers "expired", which the
 * bucket's lifecycle rule cannot say.
 */

export const ArtifactItem = v.object({
  id: v.string(),
  /** The account that owns it: the uploading client, or the client of the job that produced it. */
  accountId: v.string(),
  role: v.picklist(["upload", "output"]),
  status: v.picklist(ARTIFACT_STATUSES),
  version: v.number(),
  contentType: v.optional(v.string()),
  filename: v.optional(v.string()),
  /** What the uploader declared: the exact size (signed into the PUT) and, optionally, the SHA-256. */
  declaredBytes: v.optional(v.number()),
  declaredSha256: v.optional(v.string()),
  /** Measured from the object itself once it arrived. */
  bytes: v.optional(v.number()),
  sha256: v.optional(v.string()),
  refusedReason: v.optional(v.string()),
  /** For an output: the job and attempt that produced it. */
  jobId: v.optional(v.string()),
  attempt: v.optional(v.number()),
  createdAt: v.string(),
  /** ISO time after which it can no longer be read. */
  expires: v.string(),
});
export type Artifact = v.InferOutput<typeof ArtifactItem>;

const table = () => config.tableName;
/** The TTL attribute: a day after expiry, so that reads in between can say "expired". */
const ttlOf = (a: Artifact) => Math.ceil(Date.parse(a.expires) / 1000) + 86_400;

function item(a: Artifact): Record<string, unknown> {
  return { ...keys.artifact(a.id), entity: "artifact", ...a, expiresAt: ttlOf(a) };
}

export async function getArtifact(id: string): Promise<Artifact | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: table(), Key: keys.artifact(id), ConsistentRead: true }),
  );
  return out.Item ? v.parse(ArtifactItem, out.Item) : undefined;
}

/** Several artifacts by id (missing ones absent from the map). */
export async function getArtifacts(ids: readonly string[]): Promise<Map<string, Artifact>> {
  const found = new Map<string, Artifact>();
  if (ids.length === 0) return found;
  const items = await batchGetAll(
    [...new Set(ids)].map((id) => keys.artifact(id)),
    { consistent: true },
  );
  for (const i of items) {
    const a = v.parse(ArtifactItem, i);
    found.set(a.id, a);
  }
  return found;
}

/** A new artifact, written once (a second write of the same id is refused). */
export function artifactPut(a: Artifact): TransactItem {
  return {
    Put: { TableName: table(), Item: item(a), ConditionExpression: "attribute_not_exists(PK)" },
  };
}

export async function putArtifact(a: Artifact): Promise<void> {
  await ddb().send(
    new PutCommand({ TableName: table(), Item: item(a), ConditionExpression: "attribute_not_exists(PK)" }),
  );
}

/**
 * A move of the state table, conditional on the version it was read at. False when another writer moved it first
 * (what it wrote stands).
 */
export async function moveArtifact(
  name: ArtifactTransition,
  from: Artifact,
  next: Artifact,
): Promise<boolean> {
  if (!canMoveArtifact(name, from.status) || ARTIFACT_TRANSITIONS[name].to !== next.status)
    throw new Error(`artifact ${from.id}: ${name} does not go from ${from.status} to ${next.status}`);
  try {
    await ddb().send(
      new PutCommand({
        TableName: table(),
        Item: item({ ...next, version: from.version + 1 }),
        ConditionExpression: "version = :v",
        ExpressionAttributeValues: { ":v": from.version },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

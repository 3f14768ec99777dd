import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { config } from "../config.ts";

/**
 * The artifacts' object storage: one private bucket (S3 on AWS; offline the S3 of fauxqs behind a gate that checks
 * presigned URLs as S3 does, local/s3-gate.ts). Two clients: one for the coordinator's own calls (head, read,
 * delete), one that only signs URLs, for the address clients and miners actually reach (`COORD_S3_PUBLIC_ENDPOINT`;
 * on AWS the bucket's own regional endpoint, so both are the same). Objects are named by artifact id alone, so a
 * link can be signed without reading anything.
 */

export const storageConfig = {
  get bucket() {
    return process.env.COORD_ARTIFACT_BUCKET ?? "coordinator-artifacts";
  },
  /** Offline: the S3 emulator the coordinator calls itself. Unset on AWS. */
  get endpoint() {
    return process.env.COORD_S3_ENDPOINT || undefined;
  },
  /** Offline: where presigned URLs point (the gate). Unset: the same as `endpoint`. */
  get publicEndpoint() {
    return process.env.COORD_S3_PUBLIC_ENDPOINT || process.env.COORD_S3_ENDPOINT || undefined;
  },
};

const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

function client(endpoint: string | undefined): S3Client {
  return new S3Client({
    region: config.region,
    ...(endpoint ? { endpoint, forcePathStyle: true, credentials: LOCAL_CREDENTIALS } : {}),
    // A presigned URL carries no checksum the client would have to compute before sending.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

let clients: { key: string; direct: S3Client; signer: S3Client } | undefined;

function s3() {
  const key = `${storageConfig.endpoint}|${storageConfig.publicEndpoint}|${config.region}`;
  if (clients?.key !== key) {
    const direct = client(storageConfig.endpoint);
    const signer =
      storageConfig.publicEndpoint === storageConfig.endpoint ? direct : client(storageConfig.publicEndpoint);
    clients = { key, direct, signer };
  }
  return clients;
}

/** The object an artifact's bytes live in. */
export const objectKey = (artifactId: string) => `artifacts/${artifactId}`;

/** A presigned GET of the artifact's object, valid `seconds` (at least 1). */
export function downloadUrl(artifactId: string, seconds: number, filename?: string): Promise<string> {
  return getSignedUrl(
    s3().signer,
    new GetObjectCommand({
      Bucket: storageConfig.bucket,
      Key: objectKey(artifactId),
      ...(filename
        ? { ResponseContentDisposition: `attachment; filename="${filename.replace(/["\\]/g, "_")}"` }
        : {}),
    }),
    { expiresIn: Math.max(1, Math.floor(seconds)) },
  );
}

/**
 * A presigned PUT of the artifact's object, valid `seconds`. With `contentType` and `size` they are signed: S3
 * refuses an upload of another type or length.
 */
export function uploadUrl(
  artifactId: string,
  seconds: number,
  signed: { contentType?: string; size?: number } = {},
): Promise<string> {
  return getSignedUrl(
    s3().signer,
    new PutObjectCommand({
      Bucket: storageConfig.bucket,
      Key: objectKey(artifactId),
      ContentType: signed.contentType,
      ContentLength: signed.size,
    }),
    {
      expiresIn: Math.max(1, Math.floor(seconds)),
      ...(signed.contentType || signed.size !== undefined
        ? {
            signableHeaders: new Set([
              ...(signed.contentType ? ["content-type"] : []),
              ...(signed.size !== undefined ? ["content-length"] : []),
            ]),
          }
        : {}),
    },
  );
}

export interface StoredObject {
  bytes: number;
  contentType: string | undefined;
}

const missing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
};

/** The artifact's object as stored, or undefined when nothing was uploaded. */
export async function headObject(artifactId: string): Promise<StoredObject | undefined> {
  try {
    const out = await s3().direct.send(
      new HeadObjectCommand({ Bucket: storageConfig.bucket, Key: objectKey(artifactId) }),
    );
    return { bytes: out.ContentLength ?? 0, contentType: out.ContentType };
  } catch (err) {
    if (missing(err)) return undefined;
    throw err;
  }
}

/**
 * SHA-256 (hex), length and type of the artifact's object, read through once as a stream; undefined when nothing
 * was uploaded.
 */
export async function digestObject(
  artifactId: string,
): Promise<{ sha256: string; bytes: number; contentType: string | undefined } | undefined> {
  let out: GetObjectCommandOutput;
  try {
    out = await s3().direct.send(
      new GetObjectCommand({ Bucket: storageConfig.bucket, Key: objectKey(artifactId) }),
    );
  } catch (err) {
    if (missing(err)) return undefined;
    throw err;
  }
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of out.Body as Readable) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes, contentType: out.ContentType };
}

export async function deleteObject(artifactId: string): Promise<void> {
  await s3().direct.send(
    new DeleteObjectCommand({ Bucket: storageConfig.bucket, Key: objectKey(artifactId) }),
  );
}

import { setting } from "../core/settings.ts";

/**
 * The artifacts' bucket (core/artifacts/storage.ts): private (SST's default blocks public access and plain HTTP),
 * encrypted at rest (S3 encrypts every object with SSE-S3 by default), and its objects expire by lifecycle a day
 * after the retention the coordinator enforces on read (COORD_ARTIFACT_RETENTION_HOURS, from the deploying shell).
 * CORS admits the browser uploads and downloads the presigned URLs are for.
 */
export function createArtifactBucket() {
  const days = Math.ceil(setting("COORD_ARTIFACT_RETENTION_HOURS") / 24) + 1;
  return new sst.aws.Bucket("Artifacts", {
    lifecycle: [{ id: "expire-artifacts", prefix: "artifacts/", expiresIn: `${days} days` }],
    cors: {
      allowHeaders: ["*"],
      allowOrigins: ["*"],
      allowMethods: ["GET", "HEAD", "PUT"],
      exposeHeaders: ["ETag"],
      maxAge: "1 hour",
    },
  });
}

import { createUpload, readArtifact, UploadInput } from "../../../core/artifacts/uploads.ts";
import { requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { once } from "../idempotent.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/** Uploads are part of submitting jobs (same scope); an artifact is read by its owner (and admins). */
export const uploads = documentedRoutes("/v1/uploads", "artifacts").post(
  "/",
  {
    summary:
      "Create an artifact to upload (Idempotency-Key): a presigned PUT for exactly that type and size; reference it in a job's input as {artifact_id}",
    auth: "client",
    body: UploadInput,
    responses: {
      "201": "{artifact_id, upload_url, upload_headers, upload_expires_at, max_size, status, ...}",
    },
  },
  requireAuth({ kinds: ["client"], scope: "jobs:write" }),
  rateLimit("write"),
  async (c) => {
    const body = await readJson(c);
    return once(c, body, async () => ({ status: 201, body: await createUpload(c.var.principal, body) }));
  },
).app;

export const artifacts = documentedRoutes("/v1/artifacts", "artifacts").get(
  "/:id",
  {
    summary:
      "An artifact's metadata (size and SHA-256 once it arrived) and a presigned download while it is ready",
    auth: "client",
    responses: { "200": "{artifact_id, status, bytes, sha256, download_url, ...}" },
  },
  requireAuth({ kinds: ["client", "admin"], scope: "jobs:read" }),
  rateLimit("read"),
  async (c) => c.json(await readArtifact(c.var.principal, c.req.param("id"))),
).app;

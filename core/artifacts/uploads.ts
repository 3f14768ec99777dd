import * as v from "valibot";
import type { Principal } from "../context.ts";
import { NotFoundError } from "../errors.ts";
import { isId, newId } from "../ids.ts";
import { Sha256 } from "../services/refs.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { deleteObject, digestObject, downloadUrl, uploadUrl } from "./storage.ts";
import { type Artifact, getArtifact, moveArtifact, putArtifact } from "./store.ts";

/**
 * Uploads (`POST /v1/uploads`) and reading an artifact (`GET /v1/artifacts/{id}`). An upload is an artifact created
 * `awaiting_upload` with a presigned PUT whose type and length are signed (S3 refuses another); it becomes `ready`
 * once its object is measured (size, SHA-256) and matches what was declared, or `refused` when it does not. That
 * check runs when the artifact is first needed (read, or referenced by a submit): the object is read once, as a
 * stream, and never again.
 */

const MIB = 1024 * 1024;
export const maxUploadBytes = () => Math.floor(setting("COORD_UPLOAD_MAX_MB") * MIB);

const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export const UploadInput = v.strictObject({
  content_type: v.pipe(
    v.string("content_type must be a string"),
    v.toLowerCase(),
    v.regex(CONTENT_TYPE, "content_type must be a MIME type such as audio/wav or video/mp4 (no parameters)"),
  ),
  size: v.pipe(
    v.number("size must be a number of bytes"),
    v.integer("size must be a whole number of bytes"),
    v.minValue(1, "size must be at least 1 byte"),
    v.check(
      (n) => n <= maxUploadBytes(),
      () => `size must be at most ${maxUploadBytes()} bytes (COORD_UPLOAD_MAX_MB)`,
    ),
  ),
  sha256: v.optional(Sha256),
  filename: v.optional(
    v.pipe(
      v.string("filename must be a string"),
      v.minLength(1, "filename must not be empty"),
      v.maxLength(255, "filename must be at most 255 characters"),
      v.check(safeFilename, "filename must not contain slashes, quotes or control characters"),
    ),
  ),
});

/** No path separators, quotes or control characters: it goes into a Content-Disposition header. */
function safeFilename(s: string): boolean {
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f || ch === "/" || ch === "\\" || ch === '"') return false;
  }
  return true;
}

const hours = (n: number) => n * 3_600_000;

export interface ArtifactView {
  artifact_id: string;
  status: Artifact["status"];
  role: Artifact["role"];
  content_type: string | null;
  filename: string | null;
  /** Measured once it arrived (null before). */
  bytes: number | null;
  sha256: string | null;
  job_id: string | null;
  created_at: string;
  expires_at: string;
  refused_reason?: string;
  /** A presigned download while it is ready. */
  download_url?: string;
  download_expires_at?: string;
}

export function artifactView(a: Artifact): ArtifactView {
  return {
    artifact_id: a.id,
    status: a.status,
    role: a.role,
    content_type: a.contentType ?? null,
    filename: a.filename ?? null,
    bytes: a.bytes ?? null,
    sha256: a.sha256 ?? null,
    job_id: a.jobId ?? null,
    created_at: a.createdAt,
    expires_at: a.expires,
    ...(a.refusedReason ? { refused_reason: a.refusedReason } : {}),
  };
}

/** The artifact's view with a download link valid for `seconds` (never past the artifact's own expiry). */
export async function withDownload(a: Artifact, seconds: number, now = Date.now()): Promise<ArtifactView> {
  const view = artifactView(a);
  if (a.status !== "ready") return view;
  const valid = Math.min(seconds, Math.floor((Date.parse(a.expires) - now) / 1000));
  if (valid < 1) return view;
  return {
    ...view,
    download_url: await downloadUrl(a.id, valid, a.filename),
    download_expires_at: new Date(now + valid * 1000).toISOString(),
  };
}

export async function createUpload(principal: Principal, raw: unknown) {
  const body = parse(UploadInput, raw, "body");
  const now = new Date();
  const a: Artifact = {
    id: newId("art", now.getTime()),
    accountId: principal.accountId,
    role: "upload",
    status: "awaiting_upload",
    version: 1,
    contentType: body.content_type,
    filename: body.filename,
    declaredBytes: body.size,
    declaredSha256: body.sha256,
    createdAt: now.toISOString(),
    expires: new Date(now.getTime() + hours(setting("COORD_ARTIFACT_RETENTION_HOURS"))).toISOString(),
  };
  const seconds = setting("COORD_UPLOAD_URL_SECONDS");
  const url = await uploadUrl(a.id, seconds, { contentType: a.contentType, size: body.size });
  await putArtifact(a);
  return {
    ...artifactView(a),
    upload_url: url,
    upload_method: "PUT",
    /** Headers the PUT must carry as signed: S3 refuses the upload otherwise. */
    upload_headers: { "content-type": body.content_type, "content-length": String(body.size) },
    upload_expires_at: new Date(now.getTime() + seconds * 1000).toISOString(),
    max_size: body.size,
  };
}

/**
 * Measures an awaiting upload whose object arrived: `ready` when it is what was declared, else `refused` (its
 * object deleted). Unchanged while nothing arrived. Racing checks agree: the state table's conditional move lets
 * one write, and the others read what it wrote.
 */
export async function settleUpload(a: Artifact): Promise<Artifact> {
  if (a.status !== "awaiting_upload") return a;
  // One streamed read, no HEAD first: the PUT's signed length already bounds what can be there.
  const measured = await digestObject(a.id);
  if (!measured) return a;
  const refusal =
    a.declaredBytes !== undefined && measured.bytes !== a.declaredBytes
      ? `the upload is ${measured.bytes} bytes, not the ${a.declaredBytes} declared`
      : a.declaredSha256 !== undefined && measured.sha256 !== a.declaredSha256
        ? `the upload's SHA-256 is ${measured.sha256}, not the ${a.declaredSha256} declared`
        : undefined;
  const next: Artifact = refusal
    ? { ...a, status: "refused", refusedReason: refusal, bytes: measured.bytes, sha256: measured.sha256 }
    : {
        ...a,
        status: "ready",
        bytes: measured.bytes,
        sha256: measured.sha256,
        contentType: a.contentType ?? measured.contentType,
      };
  if (await moveArtifact(refusal ? "refuse" : "arrive", a, next)) {
    if (refusal) await deleteObject(a.id);
    return { ...next, version: a.version + 1 };
  }
  return (await getArtifact(a.id)) ?? a;
}

/** The caller's artifact, measured if it just arrived; another account's, or one that expired, is 404. */
export async function readArtifact(principal: Principal, id: string) {
  const a = isId(id, "art") ? await getArtifact(id) : undefined;
  if (!a || (a.accountId !== principal.accountId && principal.kind !== "admin"))
    throw new NotFoundError("artifact");
  if (Date.parse(a.expires) <= Date.now()) throw new NotFoundError(`artifact (it expired at ${a.expires})`);
  return withDownload(await settleUpload(a), setting("COORD_ARTIFACT_DOWNLOAD_SECONDS"));
}

/** An issue naming `path` for a referenced artifact that cannot be used, or undefined when it can. */
export function unusable(a: Artifact | undefined, accountId: string, now = Date.now()): string | undefined {
  if (!a || a.accountId !== accountId) return "no such artifact of yours (upload it first: POST /v1/uploads)";
  if (Date.parse(a.expires) <= now) return `the artifact expired at ${a.expires}`;
  if (a.status === "refused")
    return `the artifact was refused: ${a.refusedReason ?? "it did not match its upload"}`;
  if (a.status !== "ready")
    return "the artifact's upload has not arrived yet (PUT it to its upload_url first)";
  return undefined;
}

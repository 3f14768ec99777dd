import * as v from "valibot";
import { type Issue, ValidationError } from "../errors.ts";
import { derivedId } from "../ids.ts";
import type { Job } from "../jobs/model.ts";
import { collectObjectRefs } from "../services/refs.ts";
import { findService } from "../services/registry.ts";
import type { ServiceDef } from "../services/types.ts";
import { setting } from "../settings.ts";
import { digestObject, downloadUrl, headObject, uploadUrl } from "./storage.ts";
import { type Artifact, getArtifacts } from "./store.ts";
import { type ArtifactView, settleUpload, unusable, withDownload } from "./uploads.ts";

/**
 * Jobs and artifacts: the submit checks every artifact its input references; a claim carries presigned links for
 * them and for the outputs the job may produce; a completion measures the outputs its result references. Output
 * artifacts have ids derived from (job, attempt, slot), so a claim hands out upload URLs without writing anything,
 * and a result can only name the slots of the attempt that holds the job.
 */

/** What a receipt and the submit's event record of one artifact. */
export interface ArtifactDigest {
  role: "input" | "output";
  /** Where it is referenced, e.g. `input.source`. */
  path: string;
  artifact_id: string;
  sha256: string;
  bytes: number;
  content_type: string | null;
}

export const ArtifactDigests = v.array(
  v.object({
    role: v.picklist(["input", "output"]),
    path: v.string(),
    artifact_id: v.string(),
    sha256: v.string(),
    bytes: v.number(),
    content_type: v.nullable(v.string()),
  }),
);

interface Limits {
  maxBytes: number;
  /** Accepted types: exact (`audio/wav`) or a family (`audio/`). */
  contentTypes?: readonly string[];
}

const LimitsOverride = v.record(
  v.string(),
  v.object({ max_mb: v.optional(v.number()), content_types: v.optional(v.array(v.string())) }),
);

/** A service's limits on the artifacts its input references: its own, overridden by COORD_SERVICE_ARTIFACT_LIMITS. */
export function artifactLimits(def: ServiceDef): Limits {
  const own = def.artifacts?.input ?? {};
  const text = process.env.COORD_SERVICE_ARTIFACT_LIMITS;
  const override = text ? v.parse(LimitsOverride, JSON.parse(text))[def.id] : undefined;
  const mb = override?.max_mb ?? own.maxMb ?? setting("COORD_UPLOAD_MAX_MB");
  return {
    maxBytes: Math.floor(mb * 1024 * 1024),
    contentTypes: override?.content_types ?? own.contentTypes,
  };
}

const typeAccepted = (type: string | undefined, accepted: readonly string[] | undefined) =>
  !accepted ||
  (type !== undefined && accepted.some((t) => (t.endsWith("/") ? type.startsWith(t) : type === t)));

/**
 * Checks every artifact the (validated) input references: the caller's, arrived and measured, unexpired, within the
 * service's limits. 422 naming each field otherwise. Answers what the submit records for the receipt.
 */
export async function checkInputArtifacts(
  accountId: string,
  def: ServiceDef,
  input: unknown,
): Promise<ArtifactDigest[]> {
  const refs = collectObjectRefs(input, "input");
  if (refs.length === 0) return [];
  const found = await getArtifacts(refs.map((r) => r.ref.artifact_id));
  const limits = artifactLimits(def);
  const issues: Issue[] = [];
  const digests: ArtifactDigest[] = [];
  for (const { path, ref } of refs) {
    let a: Artifact | undefined = found.get(ref.artifact_id);
    if (a?.status === "awaiting_upload" && a.accountId === accountId) {
      a = await settleUpload(a);
      found.set(a.id, a);
    }
    const problem =
      unusable(a, accountId) ??
      (a && (a.bytes ?? 0) > limits.maxBytes
        ? `the artifact is ${a.bytes} bytes; ${def.id} takes at most ${limits.maxBytes}`
        : a && !typeAccepted(a.contentType, limits.contentTypes)
          ? `${def.id} takes ${limits.contentTypes?.join(", ")} here, not ${a.contentType ?? "an untyped artifact"}`
          : undefined);
    if (problem || !a) issues.push({ path: `body.${path}`, message: problem ?? "no such artifact" });
    else
      digests.push({
        role: "input",
        path,
        artifact_id: a.id,
        sha256: a.sha256 as string,
        bytes: a.bytes as number,
        content_type: a.contentType ?? null,
      });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return digests;
}

/** The ids of the output slots of the job's current attempt. */
export function outputSlots(job: Job, count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    derivedId("art", Date.parse(job.createdAt), `${job.id}#output#${job.attempt}#${i}`),
  );
}

export interface ClaimArtifacts {
  /** Presigned downloads of the input's artifacts, by where the input references them. */
  inputs: { path: string; artifact_id: string; url: string }[];
  /** Presigned uploads for the outputs: reference one in the result as `{"artifact_id": ...}`. */
  outputs: { artifact_id: string; upload_url: string; upload_method: "PUT" }[];
  /** The links stop working then: the lease's end (fresh ones: POST /v1/miners/{job_id}/artifacts). */
  expires_at: string;
}

/**
 * The links a holder of the job gets, valid until its lease ends: nothing is read or written (the input is the
 * claim's own copy, the object names derive from the ids).
 */
export async function claimArtifacts(
  job: Job,
  input: unknown,
  now = Date.now(),
): Promise<ClaimArtifacts | undefined> {
  const def = findService(job.service);
  const refs = collectObjectRefs(input, "input");
  const slots = outputSlots(job, def?.artifacts?.outputs?.(input) ?? 0);
  if (refs.length === 0 && slots.length === 0) return undefined;
  const leaseEnd = Date.parse(job.leaseExpiresAt ?? "") || now;
  const seconds = Math.max(1, Math.floor((leaseEnd - now) / 1000));
  return {
    inputs: await Promise.all(
      refs.map(async ({ path, ref }) => ({
        path,
        artifact_id: ref.artifact_id,
        url: await downloadUrl(ref.artifact_id, seconds),
      })),
    ),
    outputs: await Promise.all(
      slots.map(async (id) => ({
        artifact_id: id,
        upload_url: await uploadUrl(id, seconds),
        upload_method: "PUT" as const,
      })),
    ),
    expires_at: new Date(now + seconds * 1000).toISOString(),
  };
}

/**
 * The output artifacts a result references, measured from their objects: each must be a slot of the attempt that
 * holds the job, uploaded, within the service's output limit, and match a `sha256` the result declares for it. 422
 * naming the field otherwise (nothing written: the job stays with the miner). Answers the items the completion
 * writes (the artifacts, `ready`, owned by the job's client) and what the receipt records.
 */
export async function measureOutputs(
  job: Job,
  def: ServiceDef | undefined,
  output: unknown,
  input: () => Promise<unknown>,
  now: Date,
): Promise<{ artifacts: Artifact[]; digests: ArtifactDigest[] }> {
  const refs = collectObjectRefs(output, "output");
  if (refs.length === 0) return { artifacts: [], digests: [] };
  const slots = new Set(outputSlots(job, def?.artifacts?.outputs?.(await input()) ?? 0));
  const maxBytes = Math.floor((def?.artifacts?.outputMaxMb ?? setting("COORD_UPLOAD_MAX_MB")) * 1024 * 1024);
  const issues: Issue[] = [];
  const seen = new Map<string, Artifact>();
  const digests: ArtifactDigest[] = [];
  for (const { path, ref } of refs) {
    const id = ref.artifact_id;
    const at = `body.${path}`;
    if (!slots.has(id)) {
      issues.push({
        path: at,
        message: "is not one of this claim's output artifacts (see the claim's artifacts.outputs)",
      });
      continue;
    }
    let a = seen.get(id);
    if (!a) {
      const head = await headObject(id);
      if (!head) {
        issues.push({ path: at, message: "nothing was uploaded to this artifact's upload_url" });
        continue;
      }
      if (head.bytes > maxBytes) {
        issues.push({
          path: at,
          message: `the upload is ${head.bytes} bytes; ${job.service} outputs are at most ${maxBytes}`,
        });
        continue;
      }
      const measured = await digestObject(id);
      if (!measured) {
        issues.push({ path: at, message: "nothing was uploaded to this artifact's upload_url" });
        continue;
      }
      a = {
        id,
        accountId: job.accountId,
        role: "output",
        status: "ready",
        version: 1,
        contentType: head.contentType,
        bytes: measured.bytes,
        sha256: measured.sha256,
        jobId: job.id,
        attempt: job.attempt,
        createdAt: now.toISOString(),
        expires: new Date(
          now.getTime() + setting("COORD_ARTIFACT_RETENTION_HOURS") * 3_600_000,
        ).toISOString(),
      };
      seen.set(id, a);
    }
    const declared = (pick(output, path) as { sha256?: unknown } | undefined)?.sha256;
    if (typeof declared === "string" && declared !== a.sha256) {
      issues.push({
        path: `${at}.sha256`,
        message: `is not the SHA-256 of the uploaded object: ${a.sha256}`,
      });
      continue;
    }
    digests.push({
      role: "output",
      path,
      artifact_id: id,
      sha256: a.sha256 as string,
      bytes: a.bytes as number,
      content_type: a.contentType ?? null,
    });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return { artifacts: [...seen.values()], digests };
}

/** The output artifacts of a completed job's output, with presigned downloads while they have not expired. */
export async function outputDownloads(
  jobId: string,
  output: unknown,
): Promise<(ArtifactView & { path: string })[]> {
  const refs = collectObjectRefs(output, "output");
  if (refs.length === 0) return [];
  const found = await getArtifacts(refs.map((r) => r.ref.artifact_id));
  const now = Date.now();
  const views = [];
  for (const { path, ref } of refs) {
    const a = found.get(ref.artifact_id);
    if (!a || a.jobId !== jobId || Date.parse(a.expires) <= now) continue;
    views.push({ path, ...(await withDownload(a, setting("COORD_ARTIFACT_DOWNLOAD_SECONDS"), now)) });
  }
  return views;
}

/** The value at a dotted path (`output.a.0.b`) under its root. */
function pick(root: unknown, path: string): unknown {
  let node = root;
  for (const part of path.split(".").slice(1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

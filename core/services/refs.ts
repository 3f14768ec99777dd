import { isIP } from "node:net";
import * as v from "valibot";

/**
 * How service inputs point at media and files (audio, videos, scenes) and how outputs point at artifacts. Large
 * payloads never travel inline: clients upload to object storage with a presigned URL (`POST /v1/uploads`) and
 * reference the artifact here; the coordinator hands miners presigned download URLs for every `ObjectRef` in the
 * input, and presigned upload URLs for the outputs they may produce.
 */

/** Host names and IP literals that reach the machine itself, a private network or a link-local service. */
function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".internal")) return true;
  const family = isIP(host);
  if (family === 4) {
    const [a = 0, b = 0] = host.split(".").map(Number);
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168)
    );
  }
  if (family === 6) {
    if (host === "::" || host === "::1") return true;
    if (host.startsWith("::ffff:")) return true; // IPv4-mapped: judge conservatively
    return /^f[cd]/.test(host) || /^fe[89ab]/.test(host);
  }
  return false;
}

function safeUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/**
 * A public https URL a miner downloads from. Refuses embedded credentials and literal loopback, private and
 * link-local hosts (a miner on a cloud GPU must not be steered at its own metadata service). DNS can still point
 * a public name anywhere: miners must apply the same rule to the address they connect to.
 */
export const HttpsUrl = v.pipe(
  v.string("must be a URL string"),
  v.maxLength(2048, "must be at most 2048 characters"),
  v.url("must be a valid URL"),
  v.startsWith("https://", "must be an https:// URL"),
  v.check((s) => {
    const u = safeUrl(s);
    return u !== undefined && u.username === "" && u.password === "";
  }, "must not embed credentials"),
  v.check((s) => {
    const u = safeUrl(s);
    return u !== undefined && !isPrivateHost(u.hostname);
  }, "must not point at a loopback, private or link-local host"),
  v.description("Public https URL the miner downloads from"),
);

function objectMessage(what: string) {
  return (issue: v.BaseIssue<unknown>) => {
    if (issue.expected === "never") return `unknown field ${JSON.stringify(issue.input)}`;
    if (issue.expected?.startsWith('"')) return `${issue.expected.slice(1, -1)} is required`;
    return `${what} must be an object`;
  };
}

/**
 * An artifact in the coordinator's object storage, by id: an upload of the caller's (`POST /v1/uploads`) or, in an
 * output, one the miner uploaded through its claim's presigned URL. Buckets and keys are the coordinator's and are
 * never named by a caller. At submit the coordinator checks each one exists, is the caller's, arrived and is
 * within the service's limits (core/artifacts/references.ts).
 */
export const ObjectRef = v.pipe(
  v.strictObject(
    {
      artifact_id: v.pipe(
        v.string("artifact_id must be a string"),
        v.regex(/^art_[0-9a-z]{26}$/, "artifact_id must be an artifact id (art_ followed by 26 characters)"),
      ),
    },
    objectMessage("an artifact reference"),
  ),
  v.description("An artifact by id: {artifact_id}, from POST /v1/uploads"),
);
export type ObjectRef = v.InferOutput<typeof ObjectRef>;

/** Why a MediaRef was refused, in one line: the object branch's first complaint when an object was given. */
function mediaRefMessage(issue: v.BaseIssue<unknown>): string {
  const base = "must be an https URL or an artifact reference {artifact_id}";
  if (issue.input === null || typeof issue.input !== "object" || Array.isArray(issue.input)) return base;
  const inner = issue.issues?.find((i) => i.type !== "string");
  if (!inner) return base;
  return `${base}: ${inner.message}`;
}

/** Where a miner fetches an input from: a public https URL or an object in our storage. */
export const MediaRef = v.pipe(
  v.union([HttpsUrl, ObjectRef], mediaRefMessage),
  v.description("An https URL or an artifact reference {artifact_id}"),
);
export type MediaRef = v.InferOutput<typeof MediaRef>;

/** Hex SHA-256 digest, as it goes into receipts. */
export const Sha256 = v.pipe(
  v.string("sha256 must be a string"),
  v.regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lower-case hex characters"),
);

const ArtifactEntries = {
  artifact_id: v.optional(ObjectRef.pipe[0].entries.artifact_id),
  url: v.optional(
    v.pipe(v.string(), v.url("url must be a valid URL"), v.description("Presigned download link")),
  ),
  sha256: v.optional(Sha256),
  bytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  content_type: v.optional(v.pipe(v.string(), v.maxLength(255))),
};

/**
 * An output artifact with `extra` fields: the artifact the miner uploaded (`artifact_id`, one of its claim's output
 * slots: the coordinator measures its size and SHA-256, which the receipt records) or a link. Loose: miners may add
 * fields; the documented ones are checked.
 */
export function artifact<const E extends v.ObjectEntries>(extra: E) {
  return v.pipe(
    v.looseObject({ ...ArtifactEntries, ...extra }),
    v.check(
      (a) => a.url !== undefined || a.artifact_id !== undefined,
      "an artifact needs an artifact_id or a url",
    ),
  );
}

export const Artifact = artifact({});
export type Artifact = v.InferOutput<typeof Artifact>;

/**
 * Every artifact reference inside `value` (validated input, or an output), with its dotted path from `root`: an
 * object of exactly `{artifact_id}`, or an output artifact's `artifact_id` beside its other fields.
 */
export function collectObjectRefs(value: unknown, root = "input"): { path: string; ref: ObjectRef }[] {
  const found: { path: string; ref: ObjectRef }[] = [];
  const walk = (node: unknown, path: string, depth: number) => {
    if (depth > 32 || node === null || typeof node !== "object") return;
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        walk(item, `${path}.${i}`, depth + 1);
      });
      return;
    }
    const result = v.safeParse(ObjectRef, node);
    if (result.success) {
      found.push({ path, ref: result.output });
      return;
    }
    const id = (node as { artifact_id?: unknown }).artifact_id;
    if (typeof id === "string" && /^art_[0-9a-z]{26}$/.test(id))
      found.push({ path, ref: { artifact_id: id } });
    for (const [key, child] of Object.entries(node)) walk(child, `${path}.${key}`, depth + 1);
  };
  walk(value, root, 0);
  return found;
}

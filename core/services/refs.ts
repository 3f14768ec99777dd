import { isIP } from "node:net";
import * as v from "valibot";

/**
 * How service inputs point at media and files (audio, videos, scenes) and how outputs point at artifacts. Large
 * payloads never travel inline: clients upload to object storage with a presigned URL and reference the object
 * here; the coordinator hands miners presigned download URLs for every `ObjectRef` in the input.
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

/** S3 bucket naming rules: 3..63 of [a-z0-9.-], starting and ending with a letter or digit, no `..`. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function objectMessage(what: string) {
  return (issue: v.BaseIssue<unknown>) => {
    if (issue.expected === "never") return `unknown field ${JSON.stringify(issue.input)}`;
    if (issue.expected?.startsWith('"')) return `${issue.expected.slice(1, -1)} is required`;
    return `${what} must be an object`;
  };
}

/**
 * An object in the coordinator's object storage (S3 on AWS, the local S3 emulator offline). The jobs layer must
 * check that the caller may read it (e.g. its account's upload prefix) before presigning it for a miner.
 */
export const ObjectRef = v.pipe(
  v.strictObject(
    {
      bucket: v.pipe(
        v.string("bucket must be a string"),
        v.regex(BUCKET, "bucket must be a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')"),
        v.check((s) => !s.includes(".."), "bucket must not contain '..'"),
      ),
      key: v.pipe(
        v.string("key must be a string"),
        v.minLength(1, "key must not be empty"),
        v.maxLength(1024, "key must be at most 1024 characters"),
        v.check((s) => !hasControlCharacter(s), "key must not contain control characters"),
      ),
    },
    objectMessage("an object reference"),
  ),
  v.description("An object in the coordinator's object storage"),
);
export type ObjectRef = v.InferOutput<typeof ObjectRef>;

/** Why a MediaRef was refused, in one line: the object branch's first complaint when an object was given. */
function mediaRefMessage(issue: v.BaseIssue<unknown>): string {
  const base = "must be an https URL or an object reference {bucket, key}";
  if (issue.input === null || typeof issue.input !== "object" || Array.isArray(issue.input)) return base;
  const inner = issue.issues?.find((i) => i.type !== "string");
  if (!inner) return base;
  return `${base}: ${inner.message}`;
}

/** Where a miner fetches an input from: a public https URL or an object in our storage. */
export const MediaRef = v.pipe(
  v.union([HttpsUrl, ObjectRef], mediaRefMessage),
  v.description("An https URL or an object reference {bucket, key}"),
);
export type MediaRef = v.InferOutput<typeof MediaRef>;

/** Hex SHA-256 digest, as it goes into receipts. */
export const Sha256 = v.pipe(
  v.string("sha256 must be a string"),
  v.regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lower-case hex characters"),
);

const ArtifactEntries = {
  url: v.optional(
    v.pipe(v.string(), v.url("url must be a valid URL"), v.description("Presigned download link")),
  ),
  object: v.optional(ObjectRef),
  sha256: Sha256,
  bytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  content_type: v.optional(v.pipe(v.string(), v.maxLength(255))),
};

/**
 * An output artifact with `extra` fields: where it is (a link, or the object the miner uploaded to with its
 * presigned URL) and its SHA-256, which the receipt records. Loose: miners may add fields; the documented ones
 * are checked.
 */
export function artifact<const E extends v.ObjectEntries>(extra: E) {
  return v.pipe(
    v.looseObject({ ...ArtifactEntries, ...extra }),
    v.check((a) => a.url !== undefined || a.object !== undefined, "an artifact needs a url or an object"),
  );
}

export const Artifact = artifact({});
export type Artifact = v.InferOutput<typeof Artifact>;

/** Every `{bucket, key}` object inside `value` (validated input), with its dotted path from `root`. */
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
    for (const [key, child] of Object.entries(node)) walk(child, `${path}.${key}`, depth + 1);
  };
  walk(value, root, 0);
  return found;
}

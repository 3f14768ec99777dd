import * as v from "valibot";
import type { Principal } from "../context.ts";
import { CoordError, type Issue, ValidationError } from "../errors.ts";
import { SubmitInput, type SubmitResult, submitJob } from "../jobs/submit.ts";
import { jsonSchemaOf, SERVICES, shortcutOf } from "./registry.ts";
import type { ServiceDef } from "./types.ts";

/**
 * Typed shortcuts, `POST /v1/services/{service}/{action}`: the body IS the service's input, and the job options
 * sit beside its fields at the top level:
 *
 *   POST /v1/services/whisper/transcribe {"audio_url": "https://...", "language": "en", "priority": 7}
 *
 * is `POST /v1/jobs {"service": "whisper.transcribe", "input": {"audio_url": ..., "language": "en"}, "priority": 7}`.
 * The job options are exactly the fields of `POST /v1/jobs` other than `service` and `input` (`JOB_OPTION_FIELDS`),
 * so the rule is unambiguous only while no service input declares a field of that name: checked below, when the
 * module loads, like the registry's ids. `input` is refused at the top level (the wrapped form of older clients
 * would otherwise be taken, by echo, as an input field). echo keeps any other field as it is; its free-form input
 * cannot carry a field named like a job option through a shortcut (POST /v1/jobs can).
 */
export const JOB_OPTION_FIELDS: readonly string[] = Object.keys(SubmitInput.entries).filter(
  (k) => k !== "service" && k !== "input",
);
const OPTIONS = new Set(JOB_OPTION_FIELDS);

/** A shortcut body as documented (OpenAPI): the job options, and any other field is the service's input. */
export const ShortcutBody = v.pipe(
  v.looseObject(
    Object.fromEntries(
      JOB_OPTION_FIELDS.map((k) => [k, SubmitInput.entries[k as keyof typeof SubmitInput.entries]]),
    ) as v.ObjectEntries,
  ),
  v.description(
    "The service's input (its fields: GET /v1/registry/services/{id}/schema), with these job options beside them",
  ),
);
const RESERVED = new Set([...JOB_OPTION_FIELDS, "input"]);

interface JsonSchemaLike {
  properties?: Record<string, unknown>;
  anyOf?: JsonSchemaLike[];
  oneOf?: JsonSchemaLike[];
  allOf?: JsonSchemaLike[];
}

/** The top-level fields a service's input declares (every branch of a union included). */
export function declaredInputFields(def: ServiceDef): string[] {
  const walk = (s: JsonSchemaLike): string[] => [
    ...Object.keys(s.properties ?? {}),
    ...[...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])].flatMap(walk),
  ];
  return [...new Set(walk(jsonSchemaOf(def.input) as JsonSchemaLike))];
}

for (const def of SERVICES) {
  const clash = declaredInputFields(def).filter((f) => RESERVED.has(f));
  if (clash.length > 0) {
    throw new Error(
      `service ${def.id} declares input field(s) ${clash.join(", ")}, which a shortcut body reserves for job options`,
    );
  }
}

/** The `POST /v1/jobs` request a shortcut body stands for: its job options, and the rest as `input`. */
export function shortcutRequest(def: ServiceDef, raw: unknown): Record<string, unknown> {
  const body = raw ?? {};
  if (typeof body !== "object" || Array.isArray(body) || body === null) {
    throw new ValidationError([
      { path: "body", message: "the body must be a JSON object (the service's input)" },
    ]);
  }
  if (Object.hasOwn(body, "input")) {
    throw new ValidationError([
      {
        path: "body.input",
        message:
          'a shortcut\'s body is the input itself: send the input\'s fields at the top level (job options beside them), or POST /v1/jobs {"service", "input"}',
      },
    ]);
  }
  // Object.fromEntries defines properties, so a `__proto__` field stays a field.
  const entries = Object.entries(body);
  return {
    ...Object.fromEntries(entries.filter(([k]) => OPTIONS.has(k))),
    service: def.id,
    input: Object.fromEntries(entries.filter(([k]) => !OPTIONS.has(k))),
  };
}

/** `input…` and `body.input…`, as POST /v1/jobs names the job's input, are the shortcut body itself. */
function rebase(path: string): string {
  for (const root of ["body.input", "input"]) {
    if (path === root) return "body";
    if (path.startsWith(`${root}.`)) return `body.${path.slice(root.length + 1)}`;
  }
  return path;
}

function rebased(err: unknown): unknown {
  if (!(err instanceof CoordError) || !Array.isArray(err.details.errors)) return err;
  const issues = (err.details.errors as Issue[]).map((i) => ({ ...i, path: rebase(i.path) }));
  if (err instanceof ValidationError) {
    const first = err.issues[0];
    const generated = first !== undefined && err.message === `${first.path}: ${first.message}`;
    return new ValidationError(issues, generated ? undefined : err.message);
  }
  return new CoordError(err.code, err.message, { ...err.details, errors: issues });
}

/**
 * Submits a shortcut's job. An Idempotency-Key binds to this shortcut's route and the body as sent (the same key
 * on POST /v1/jobs, or on another shortcut, is another request: 422). Problems name the body's own fields
 * (`body.audio_url`, `body.priority`), not `input.*`.
 */
export async function submitShortcut(
  principal: Principal,
  def: ServiceDef,
  raw: unknown,
  opts: { idempotencyKey?: string; correlationId?: string } = {},
): Promise<SubmitResult> {
  const request = shortcutRequest(def, raw);
  try {
    return await submitJob(principal, request, {
      ...opts,
      request: { route: `POST /v1/services/${shortcutOf(def)}`, body: raw ?? null },
    });
  } catch (err) {
    throw rebased(err);
  }
}

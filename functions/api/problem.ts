import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { CoordError, type ErrorCode } from "../../core/errors.ts";

/** The one place error codes become HTTP statuses. Exhaustive: a new code does not compile until mapped. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case "validation_failed":
      return 422;
    case "malformed_json":
    case "bad_signature":
      return 400;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "unauthorized":
      return 401;
    case "forbidden":
      return 403;
    case "not_found":
      return 404;
    case "conflict":
    case "stale_claim":
    case "idempotency_in_progress":
      return 409;
    case "idempotency_mismatch":
      return 422;
    case "insufficient_funds":
      return 402;
    case "not_ready":
      return 425;
    case "upgrade_required":
      return 426;
    case "payments_not_configured":
    case "settlement_not_configured":
      return 503;
    case "rate_limited":
    case "quota_exceeded":
      return 429;
    default: {
      const never: never = code;
      throw new Error(`unmapped error code ${String(never)}`);
    }
  }
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  425: "Too Early",
  426: "Upgrade Required",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** RFC 9457 problem details with our stable `code`. */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  const body = problemBody(
    status,
    code,
    detail,
    { instance: c.req.path, requestId: c.get("requestId" as never) },
    extra,
  );
  return c.body(JSON.stringify(body), status, { "Content-Type": "application/problem+json" });
}

/** The problem document itself, for answers outside a route (a refused WebSocket upgrade). */
export function problemBody(
  status: number,
  code: string,
  detail: string,
  where: { instance: string; requestId?: string },
  extra: Record<string, unknown> = {},
) {
  return {
    type: `https://coordinator.dev/problems/${code}`,
    title: TITLES[status] ?? "Error",
    status,
    code,
    detail,
    instance: where.instance,
    request_id: where.requestId,
    ...extra,
  };
}

export function problemFromError(c: Context, err: CoordError) {
  const status = statusOf(err.code);
  if (typeof err.details.retry_after_seconds === "number") {
    c.header("Retry-After", String(err.details.retry_after_seconds));
  }
  return problem(c, status, err.code, err.message, err.details);
}

export { CoordError };

/**
 * The one error hierarchy of the domain. Core code throws these; the HTTP layer maps each `code` to a status in
 * exactly one place (functions/api/problem.ts). Core knows nothing of HTTP.
 */
export type ErrorCode =
  | "validation_failed"
  | "malformed_json"
  | "unsupported_media_type"
  | "payload_too_large"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "stale_claim"
  | "idempotency_mismatch"
  | "idempotency_in_progress"
  | "insufficient_funds"
  | "not_ready"
  | "rate_limited"
  | "quota_exceeded"
  | "upgrade_required"
  | "bad_signature"
  | "payments_not_configured"
  | "settlement_not_configured";

export interface Issue {
  /** JSON path of the offending field, e.g. `input.prompt` or `body` */
  path: string;
  message: string;
}

export class CoordError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "CoordError";
    this.code = code;
    this.details = details;
  }
}

export class ValidationError extends CoordError {
  readonly issues: Issue[];
  constructor(issues: Issue[], message?: string) {
    const first = issues[0];
    super("validation_failed", message ?? (first ? `${first.path}: ${first.message}` : "invalid request"), {
      errors: issues,
    });
    this.issues = issues;
  }
}

export class NotFoundError extends CoordError {
  constructor(what: string) {
    super("not_found", `${what} not found`);
  }
}

export class ConflictError extends CoordError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super("conflict", message, details);
  }
}

export class UnauthorizedError extends CoordError {
  constructor(message = "missing or invalid API key") {
    super("unauthorized", message);
  }
}

export class ForbiddenError extends CoordError {
  constructor(message = "this key may not do that") {
    super("forbidden", message);
  }
}

export class RateLimitedError extends CoordError {
  constructor(readonly retryAfterSeconds: number) {
    super("rate_limited", "rate limit exceeded", { retry_after_seconds: retryAfterSeconds });
  }
}

/** A standing per-account quota (e.g. queued jobs) is full; retrying after some work drains may succeed. */
export class QuotaExceededError extends CoordError {
  constructor(message: string, details: { limit: number; current: number; retry_after_seconds: number }) {
    super("quota_exceeded", message, details);
  }
}

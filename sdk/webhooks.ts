/**
 * Coordinator webhooks, client side: verify what we send you (Standard Webhooks, https://www.standardwebhooks.com).
 *
 * Every delivery carries three headers:
 * - `webhook-id`: the message id (`msg_...`); the same on every retry of one message, so use it to deduplicate;
 * - `webhook-timestamp`: Unix seconds when this attempt was signed;
 * - `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` signatures (more than one while a rotated secret
 *   is still in its overlap window), each over `${id}.${timestamp}.${body}` with the bytes of the base64 secret after
 *   the `whsec_` prefix.
 *
 * Verify the raw body exactly as received (before any JSON parsing), check the timestamp is recent (replays), and
 * compare in constant time. This file depends on nothing but node:crypto: copy it into your project if you like.
 *
 * ```ts
 * import { verifyWebhook } from "./webhooks.ts";
 * const event = verifyWebhook(process.env.COORD_WEBHOOK_SECRET!, req.headers, rawBody);
 * ```
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
/** Standard Webhooks' recommended tolerance: 5 minutes either way. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

/** What a delivery's body holds (the event, as `docs/webhooks.md` describes). */
export interface WebhookEvent<D = Record<string, unknown>> {
  /** The event type, e.g. `job.completed.v1`. */
  type: string;
  /** When the event happened (ISO 8601). */
  timestamp: string;
  /** The event id (`evt_...`): the same event delivered to several endpoints has one id. */
  id: string;
  /** What the event is about, e.g. the job id. */
  subject: string;
  /** For job events: the job's version after the transition; orders one job's events. */
  seq?: number;
  /** The request id of the API call that caused the event, when one did. */
  correlation_id?: string;
  data: D;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const found = Object.keys(bag).find((k) => k.toLowerCase() === name);
  const value = found === undefined ? undefined : bag[found];
  return Array.isArray(value) ? value[0] : value;
}

function secretBytes(secret: string): Buffer {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = Buffer.from(raw, "base64");
  if (bytes.length === 0) throw new WebhookVerificationError("the webhook secret is empty or not base64");
  return bytes;
}

/** A new secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;
}

/** The `v1,<base64>` signature of one message with one secret. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", secretBytes(secret)).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The `webhook-signature` header value: one signature per secret, space-separated. */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets.map((s) => sign(s, id, timestamp, body)).join(" ");
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface VerifyOptions {
  /** Seconds a timestamp may differ from now (both ways). Default 300. */
  toleranceSeconds?: number;
  /** The current time in Unix seconds (tests). */
  now?: number;
}

/**
 * Verifies a delivery and returns its parsed event; throws WebhookVerificationError when a header is missing, the
 * timestamp is outside the tolerance, or no signature matches any of `secret` (pass several while you roll a
 * secret over). `body` must be the raw request body.
 */
export function verifyWebhook<D = Record<string, unknown>>(
  secret: string | string[],
  headers: HeaderBag,
  body: string | Buffer,
  opts: VerifyOptions = {},
): WebhookEvent<D> {
  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !ts || !signatures) throw new WebhookVerificationError("missing webhook headers");
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerificationError("invalid webhook-timestamp");
  const timestamp = Number(ts);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (timestamp < now - tolerance) throw new WebhookVerificationError("webhook timestamp too old");
  if (timestamp > now + tolerance) throw new WebhookVerificationError("webhook timestamp too new");
  const text = typeof body === "string" ? body : body.toString("utf8");
  const expected = (Array.isArray(secret) ? secret : [secret]).map((s) => sign(s, id, timestamp, text));
  const given = signatures.split(" ").filter((s) => s.startsWith("v1,"));
  // Compare every pair (no early exit on the first match) so timing says nothing about which one matched.
  let ok = false;
  for (const g of given) for (const e of expected) ok = equal(g, e) || ok;
  if (!ok) throw new WebhookVerificationError("no matching signature");
  try {
    return JSON.parse(text) as WebhookEvent<D>;
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
}

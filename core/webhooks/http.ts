import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { AddressRefused, type Resolver, resolveAllowed, urlSyntaxProblems } from "./address.ts";
import { webhookConfig } from "./config.ts";

export interface SendResult {
  ok: boolean;
  /** The response status, when a response came. */
  status?: number;
  error?: string;
  /** Worth another attempt later (everything but a refused or malformed URL). */
  retryable: boolean;
  durationMs: number;
  /** The first bytes of the response body, for the delivery log. */
  response?: string;
  /** The address the request went to. */
  address?: string;
}

const EXCERPT_BYTES = 1024;

/**
 * POSTs one webhook. The host is resolved here, every answer checked against the address policy, and the connection
 * pinned to a checked address (so DNS cannot answer differently between check and connect); redirects are never
 * followed (a 3xx is a failed attempt); the whole attempt, response status and a short body excerpt included, is
 * bounded by `timeoutMs`.
 */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs?: number; allowPrivate?: boolean; resolve?: Resolver } = {},
): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const problems = urlSyntaxProblems(url);
  if (problems.length > 0) {
    return { ok: false, retryable: false, error: `url ${problems.join(", ")}`, durationMs: elapsed() };
  }
  const target = new URL(url);
  let addresses: { address: string; family: number }[];
  try {
    addresses = await resolveAllowed(target.hostname, opts);
  } catch (err) {
    if (err instanceof AddressRefused) {
      return { ok: false, retryable: err.transient, error: err.message, durationMs: elapsed() };
    }
    throw err;
  }
  const pinned = addresses[0] as { address: string; family: number };
  const lookup: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [pinned]);
    } else callback(null, pinned.address, pinned.family);
  };
  const timeoutMs = opts.timeoutMs ?? webhookConfig.timeoutMs;
  const client = target.protocol === "https:" ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, "durationMs" | "address">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, durationMs: elapsed(), address: pinned.address });
    };
    const req = client.request(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup,
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => {
          const response = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString("utf8");
          const ok = status >= 200 && status < 300;
          let error: string | undefined;
          if (status >= 300 && status < 400) {
            error = `redirect not followed${res.headers.location ? ` (Location: ${res.headers.location})` : ""}`;
          } else if (!ok) error = `HTTP ${status}`;
          finish({ ok, status, retryable: !ok, ...(error ? { error } : {}), response });
          res.destroy();
        };
        res.on("data", (chunk: Buffer) => {
          if (size < EXCERPT_BYTES) chunks.push(chunk);
          size += chunk.length;
          if (size >= EXCERPT_BYTES) done();
        });
        res.on("end", done);
        res.on("error", done);
      },
    );
    const timer = setTimeout(() => {
      finish({ ok: false, retryable: true, error: `timed out after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on("error", (err) => {
      const code = (err as { code?: string }).code;
      finish({ ok: false, retryable: true, error: code ? `${code}: ${err.message}` : err.message });
    });
    req.end(body);
  });
}

/**
 * The CLI's HTTP client, on the SDK's transport: every request goes through `retryingFetch` (sdk/client.ts), the
 * same code the typed SDK client sends with, so the CLI and the SDK retry alike (429, 5xx and network errors,
 * honouring `Retry-After`) and give each mutation one `Idempotency-Key` for all its attempts. Errors come back as RFC
 * 9457 problem+json; they surface as `ApiError` carrying the problem (its `detail`, stable `code` and, for
 * validation, the field paths).
 *
 * Idempotency keys: the transport puts one on every POST. Only client mutations read it (functions/api/idempotent.ts
 * `once`, and the creations that keep a replay record: jobs, pools, webhook endpoints); no miner route (register,
 * poll, heartbeat, start/progress/result/fail, drain) and no admin account or key route looks at the header, so on
 * those it changes nothing, and in particular a poll is never answered from a replay. What differs by route is
 * whether a mutation whose answer was lost (network error, 5xx) may be sent again: only where the route replays by
 * key (`idempotent: true`, which the commands set for submit, cancel, retry and uploads). Other mutations are
 * retried on 429 alone, which the server answers before doing anything (so an `admin adjust` never credits twice,
 * and the miner agent's reports keep their own retry policy, as they had before the transport was shared).
 */
import { retryingFetch } from "../sdk/client.ts";

export const DEFAULT_URL = "http://127.0.0.1:3000";

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  request_id?: string;
  errors?: { path: string; message: string }[];
  [k: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
    readonly method: string,
    readonly path: string,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.name = "ApiError";
  }

  get code(): string | undefined {
    return this.problem.code;
  }
}

/** The lines an error prints: the detail, then one line per offending field. */
export function describeProblem(err: ApiError): string[] {
  const p = err.problem;
  const lines = [
    `error: ${p.detail ?? p.title ?? `HTTP ${err.status}`} (${p.code ?? "error"}, HTTP ${err.status})`,
  ];
  for (const issue of p.errors ?? []) {
    const line = `${issue.path}: ${issue.message}`;
    if (line !== p.detail) lines.push(`  ${line}`);
  }
  return lines;
}

export interface Response<T> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** Statuses to hand back instead of throwing (e.g. 204 for a poll is not an error anyway; 425 for a result). */
  accept?: number[];
  /**
   * Retries of this request after the first attempt (default 3): of a 429 (honouring Retry-After) always, of a 5xx
   * or a network error for reads and `idempotent` mutations. 0 sends it once and hands back the first failure at
   * once, for callers that back off themselves (the miner agent's polls). The name is older than the shared transport.
   */
  retries429?: number;
  /**
   * The route replays its first answer for the request's Idempotency-Key (or repeating it changes nothing), so a
   * mutation whose answer was lost to a network error or a 5xx may be sent again with the same key.
   */
  idempotent?: boolean;
}

export interface ApiOptions {
  url?: string;
  key?: string;
  /** Extra headers on every request (e.g. X-Miner-Id). */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  userAgent?: string;
}

/** Retries by default, and the longest wait between attempts (a longer Retry-After is cut to it). */
const DEFAULT_RETRIES = 3;
const MAX_BACKOFF_MS = 30_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export class Api {
  readonly url: string;
  readonly key: string | undefined;
  readonly headers: Record<string, string>;
  private readonly doFetch: typeof fetch;

  constructor(opts: ApiOptions = {}) {
    this.url = (opts.url ?? DEFAULT_URL).replace(/\/+$/, "");
    this.key = opts.key;
    this.headers = { "user-agent": opts.userAgent ?? "coord-cli/0.1", ...opts.headers };
    this.doFetch = opts.fetch ?? fetch;
  }

  /** A client with the same coordinates and more default headers. */
  with(headers: Record<string, string>): Api {
    return new Api({
      url: this.url,
      key: this.key,
      headers: { ...this.headers, ...headers },
      fetch: this.doFetch,
    });
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Response<T>> {
    const url = new URL(`${this.url}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json", ...this.headers };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    for (const [k, v] of Object.entries(opts.headers ?? {}))
      if (v !== undefined) headers[k.toLowerCase()] = v;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
    }
    const transport = retryingFetch(this.doFetch, {
      attempts: Math.max(0, opts.retries429 ?? DEFAULT_RETRIES) + 1,
      maxBackoffMs: MAX_BACKOFF_MS,
      retryLostMutations: opts.idempotent === true,
    });
    const res = await transport(url, { method, headers, body: payload, signal: opts.signal });
    const text = await res.text();
    let body: unknown;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = { detail: text.slice(0, 500) };
      }
    }
    if (res.status >= 400 && !opts.accept?.includes(res.status)) {
      const problem =
        body && typeof body === "object"
          ? (body as Problem)
          : { detail: `HTTP ${res.status}`, status: res.status };
      throw new ApiError(res.status, problem, method, path);
    }
    return { status: res.status, headers: res.headers, body: body as T };
  }

  get<T = Record<string, unknown>>(path: string, opts?: RequestOptions) {
    return this.request<T>("GET", path, opts);
  }

  post<T = Record<string, unknown>>(path: string, body?: unknown, opts: RequestOptions = {}) {
    return this.request<T>("POST", path, { ...opts, body: body ?? {} });
  }
}

export { sleep };

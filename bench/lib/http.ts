import http from "node:http";

export interface Res<T = Record<string, unknown>> {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: T;
  /** Client-observed latency: request written -> whole response read. */
  ms: number;
}

export interface RequestOptions {
  key?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * A small keep-alive HTTP/1.1 JSON client on node:http (lighter than fetch, so that the client's own overhead
 * disturbs the in-process server less). `close()` destroys the pool, failing whatever is still in flight.
 */
export class Http {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private closed = false;

  constructor(baseUrl: string, maxSockets = 512) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Res<T>> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error("client closed");
      try {
        return await this.once<T>(method, path, opts);
      } catch (err) {
        // A keep-alive socket the server closed just as we reused it: the request never reached the server (the
        // retry Node's documentation recommends for `reusedSocket`).
        if (!(err as { reusedSocket?: boolean }).reusedSocket || attempt >= 2) throw err;
      }
    }
  }

  private once<T>(method: string, path: string, opts: RequestOptions): Promise<Res<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: this.host, port: this.port, method, path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown = {};
            if (text) {
              try {
                body = JSON.parse(text);
              } catch {
                body = { raw: text };
              }
            }
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: body as T,
              ms: performance.now() - started,
            });
          });
        },
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        reject(Object.assign(err, { reusedSocket: req.reusedSocket && err.code === "ECONNRESET" }));
      });
      req.end(payload);
    });
  }

  post<T = Record<string, unknown>>(path: string, body: unknown, opts: RequestOptions = {}) {
    return this.request<T>("POST", path, { ...opts, body });
  }

  get<T = Record<string, unknown>>(path: string, opts: RequestOptions = {}) {
    return this.request<T>("GET", path, opts);
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Seconds to wait after a 429 (Retry-After), at least 50 ms. */
export function retryAfterMs(res: Res<unknown>): number {
  return Math.max(50, Number(res.headers["retry-after"] ?? 1) * 1000);
}

/** One request, repeated after each 429 (honouring Retry-After); network errors propagate. */
export async function call<T>(fn: () => Promise<Res<T>>): Promise<Res<T>> {
  for (;;) {
    const res = await fn();
    if (res.status !== 429) return res;
    await sleep(retryAfterMs(res));
  }
}

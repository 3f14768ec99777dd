import { timingSafeEqual } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";

/**
 * A gate in front of an S3 emulator that has no auth of its own (fauxqs): it lets through only SigV4 presigned
 * (query-string auth) requests that S3 itself would accept — signed with our key, unexpired, and matching their
 * signature byte for byte — and streams them to the emulator. So offline, a presigned URL handed to a client or a
 * miner works exactly as long, and for exactly the request, that it would on AWS.
 */

export interface S3Gate {
  url: string;
  stop(): Promise<void>;
}

export interface S3GateOptions {
  /** The emulator's base URL, e.g. `http://127.0.0.1:4566`; requests are forwarded path-style. */
  upstream: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Default 0: any free port. */
  port?: number;
  /** After an object was stored through the gate (a successful object PUT): its bucket and decoded key. */
  onUploaded?: (bucket: string, key: string) => void;
}

const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
const MAX_EXPIRES = 7 * 24 * 3600;
const AUTH_PARAMS = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Date",
  "X-Amz-Expires",
  "X-Amz-SignedHeaders",
  "X-Amz-Signature",
] as const;
// Per-connection headers (RFC 9110 §7.6.1) describe our hop, not the one to or from the emulator; and an
// `expect: 100-continue` was already answered by this server.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "expect",
]);

export async function startS3Gate(opts: S3GateOptions): Promise<S3Gate> {
  const upstream = new URL(opts.upstream);
  if (upstream.protocol !== "http:")
    throw new Error(`s3 gate: upstream must be an http: URL, not ${opts.upstream}`);
  // Our own pool, so that stop() can close the sockets it kept alive to the emulator.
  const agent = new http.Agent({ keepAlive: true });
  // The signer the AWS SDK's presigner itself uses, configured as that presigner configures it for S3.
  const signer = new SignatureV4({
    service: "s3",
    region: opts.region,
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });

  const server = http.createServer(async (req, res) => {
    try {
      const denial = await verify(req, opts, signer);
      if (denial) deny(res, ...denial);
      else forward(req, res, upstream, agent, opts);
    } catch {
      if (res.headersSent) res.destroy();
      else deny(res, 500, "InternalError", "We encountered an internal error. Please try again.");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

type Denial = [status: number, code: string, message: string];

/** Checks the request as S3 checks a presigned one; returns why it is refused, or undefined when it may pass. */
async function verify(
  req: IncomingMessage,
  opts: S3GateOptions,
  signer: SignatureV4,
): Promise<Denial | undefined> {
  const rawUrl = req.url ?? "/";
  const q = rawUrl.indexOf("?");
  // The path exactly as sent: S3 signs the already-encoded path and does not encode it again.
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = parseQuery(q < 0 ? "" : rawUrl.slice(q + 1));
  if (!query) return [400, "InvalidArgument", "Malformed query string."];
  const auth = AUTH_PARAMS.map((name) => single(query, name));
  if (auth.every((v) => v === undefined)) return [403, "AccessDenied", "Access Denied"];
  const [algorithm, credential, amzDate, expires, signedHeaders, signature] = auth;
  if (!algorithm || !credential || !amzDate || !expires || !signedHeaders || !signature) {
    return [
      400,
      "AuthorizationQueryParametersError",
      "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    ];
  }
  if (algorithm !== "AWS4-HMAC-SHA256") {
    return [400, "AuthorizationQueryParametersError", 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'];
  }
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate)
    return [400, "AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 Long Format"];
  if (!/^\d{1,6}$/.test(expires) || Number(expires) > MAX_EXPIRES) {
    return [
      400,
      "AuthorizationQueryParametersError",
      "X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires must be less than 604800 seconds",
    ];
  }
  if (credential.split("/")[0] !== opts.accessKeyId) {
    return [403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."];
  }

  // Rebuild the request as the presigner saw it — the signed headers with the values received, the query without
  // its signature — and presign it again at the same date and for the same lifetime. Same request, same signature.
  const names = signedHeaders.split(";");
  const headers: Record<string, string> = {};
  for (const name of names) {
    const values = req.headersDistinct[name];
    if (!values) return signatureMismatch();
    headers[name] = values.map((v) => v.trim()).join(",");
  }
  // The payload hash the canonical request ends with: the signer reads it from this header. Unless the client
  // signed it as a header, it must stay out of the signed headers (and, unhoisted, out of the query).
  const hashSigned = names.includes("x-amz-content-sha256");
  if (!hashSigned) {
    headers["x-amz-content-sha256"] =
      single(query, "X-Amz-Content-Sha256") ??
      req.headersDistinct["x-amz-content-sha256"]?.[0] ??
      UNSIGNED_PAYLOAD;
  }
  const { "X-Amz-Signature": _given, ...unsignedQuery } = query;
  const resigned = await signer.presign(
    {
      method: req.method ?? "GET",
      protocol: "http:",
      hostname: headers.host ?? "",
      path,
      query: unsignedQuery,
      headers,
    },
    {
      signingDate,
      expiresIn: Number(expires),
      signableHeaders: new Set(names),
      unsignableHeaders: new Set(hashSigned ? [] : ["x-amz-content-sha256"]),
      // Headers stay headers: x-amz-* ones the client sent as headers were signed as headers.
      unhoistableHeaders: new Set(Object.keys(headers)),
    },
  );
  // The presigner writes its own credential, date, expiry and header list: they must be the ones received, byte for
  // byte (a region, scope or list that differs is a different request), and the signature must be the same.
  const same = AUTH_PARAMS.every((name) =>
    name === "X-Amz-Signature"
      ? constantTimeEqual(String(resigned.query?.[name]), signature)
      : resigned.query?.[name] === single(query, name),
  );
  if (!same) return signatureMismatch();

  // Checked after the signature, so that only the holder of a genuine URL learns it has expired.
  if (Date.now() > signingDate.getTime() + Number(expires) * 1000) {
    return [403, "AccessDenied", "Request has expired"];
  }
  return undefined;
}

function signatureMismatch(): Denial {
  return [
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
  ];
}

/** Streams the verified request to the emulator and its answer back, untouched. */
function forward(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: URL,
  agent: http.Agent,
  opts: S3GateOptions,
): void {
  const headers = withoutHopByHop(req.headers);
  delete headers.host;
  let answered = false;
  const upReq = http.request(
    {
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent,
    },
    (upRes) => {
      answered = true;
      const status = upRes.statusCode ?? 502;
      if (req.method === "PUT" && status >= 200 && status < 300) notifyUpload(req.url ?? "/", opts);
      res.writeHead(status, withoutHopByHop(upRes.headers));
      pipeline(upRes, res, () => {});
    },
  );
  // Not pipeline(req, upReq), which would destroy the client's request, and with it the socket the 502 below goes
  // out on. (An emulator that refuses a body before reading it, as fauxqs does past 11 MiB, breaks the upload before
  // Node has read its answer: that also ends in the 502.)
  req.pipe(upReq);
  upReq.on("error", (err: NodeJS.ErrnoException) => {
    if (answered) return;
    const cut = err.code === "EPIPE" || err.code === "ECONNRESET";
    deny(
      res,
      502,
      "BadGateway",
      cut
        ? "The storage emulator closed the connection before answering (fauxqs refuses a body over 11 MiB)."
        : "The storage emulator could not be reached.",
    );
  });
  // A client that went away mid-upload aborts the upstream request: no half-written object is left behind.
  req.on("close", () => {
    if (!req.complete) upReq.destroy();
  });
}

/** Calls onUploaded for a PUT that stored an object, not for a subresource (?acl, ?tagging, a multipart part…). */
function notifyUpload(rawUrl: string, opts: S3GateOptions): void {
  if (!opts.onUploaded) return;
  const q = rawUrl.indexOf("?");
  const params = Object.keys(parseQuery(q < 0 ? "" : rawUrl.slice(q + 1)) ?? {});
  if (params.some((p) => !/^x-amz-/i.test(p) && p !== "x-id")) return;
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const slash = path.indexOf("/", 1);
  if (slash < 0 || slash === path.length - 1) return;
  let bucket: string;
  let key: string;
  try {
    bucket = decodeURIComponent(path.slice(1, slash));
    key = decodeURIComponent(path.slice(slash + 1));
  } catch {
    return; // Malformed %-escapes name no object.
  }
  opts.onUploaded(bucket, key);
}

function deny(res: ServerResponse, status: number, code: string, message: string): void {
  // The refused request's body is never read: the connection closes after the answer instead of carrying on.
  res.writeHead(status, { "content-type": "application/xml", connection: "close" });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  );
}

/** Decoded query parameters (repeated ones as arrays), as the signer expects them; undefined if malformed. */
function parseQuery(raw: string): Record<string, string | string[]> | undefined {
  // No prototype: a parameter named `__proto__` must be a parameter like any other, signed and checked.
  const out: Record<string, string | string[]> = Object.create(null);
  try {
    for (const part of raw.split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      // Not URLSearchParams: in S3's canonical query a "+" is a plus, not a space.
      const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      const value = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
      const prev = out[key];
      out[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
    }
  } catch {
    return undefined;
  }
  return out;
}

/** A parameter given once; a repeated auth parameter counts as absent. */
function single(query: Record<string, string | string[]>, name: string): string | undefined {
  const v = query[name];
  return typeof v === "string" ? v : undefined;
}

/** `YYYYMMDDTHHMMSSZ`, the form SigV4 signs. */
function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  const date = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, se!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !name.startsWith("proxy-")) out[name] = value;
  }
  return out;
}

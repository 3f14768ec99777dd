import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { type Issue, ValidationError } from "../errors.ts";
import { webhookConfig } from "./config.ts";

/**
 * Where an outgoing webhook may go (SSRF defence). Addresses fall in classes:
 * - `public`: allowed;
 * - `private` (RFC 1918, CGNAT, IPv6 ULA) and `loopback`: allowed only with COORD_WEBHOOK_ALLOW_PRIVATE=1;
 * - `link_local`, `metadata` (cloud instance metadata services, whatever their range) and `reserved` (unspecified,
 *   multicast, broadcast, documentation and benchmarking ranges): always refused.
 * The check runs at registration (literal addresses, well-known names, and the host's DNS answers) and again at
 * delivery, on the addresses DNS returns at that moment, which are the ones the connection then uses (so a name
 * that re-binds to an internal address between the two checks is still refused).
 */
export type AddressClass = "public" | "private" | "loopback" | "link_local" | "metadata" | "reserved";

const METADATA_V4 = new Set([
  "169.254.169.254", // AWS, GCP, Azure, OpenStack, DigitalOcean...
  "169.254.170.2", // AWS ECS task metadata
  "169.254.169.253", // AWS DNS resolver
  "100.100.100.200", // Alibaba Cloud
  "192.0.0.192", // Oracle Cloud
]);
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.azure.internal",
]);

function v4Parts(ip: string): number[] {
  return ip.split(".").map(Number);
}

function inV4(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split("/");
  const toInt = (s: string) => v4Parts(s).reduce((acc, p) => acc * 256 + p, 0);
  // Same network when the high `bits` bits agree: compare the quotients by 2^(32 - bits).
  const unit = 2 ** (32 - Number(bitsText));
  return Math.floor(toInt(ip) / unit) === Math.floor(toInt(base as string) / unit);
}

function classifyV4(ip: string): AddressClass {
  if (METADATA_V4.has(ip)) return "metadata";
  if (inV4(ip, "127.0.0.0/8")) return "loopback";
  if (inV4(ip, "169.254.0.0/16")) return "link_local";
  if (inV4(ip, "10.0.0.0/8") || inV4(ip, "172.16.0.0/12") || inV4(ip, "192.168.0.0/16")) return "private";
  if (inV4(ip, "100.64.0.0/10")) return "private";
  if (
    inV4(ip, "0.0.0.0/8") ||
    inV4(ip, "192.0.0.0/24") ||
    inV4(ip, "192.0.2.0/24") ||
    inV4(ip, "198.18.0.0/15") ||
    inV4(ip, "198.51.100.0/24") ||
    inV4(ip, "203.0.113.0/24") ||
    inV4(ip, "224.0.0.0/4") ||
    inV4(ip, "240.0.0.0/4")
  ) {
    return "reserved";
  }
  return "public";
}

/** Expands an IPv6 address to eight 16-bit groups (handles `::` and an embedded dotted IPv4 tail). */
function v6Groups(ip: string): number[] {
  let text = ip.toLowerCase();
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = v4Parts(tail[1] as string) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const r = rest ? rest.split(":") : [];
  const fill = rest === undefined ? [] : new Array(8 - h.length - r.length).fill("0");
  return [...h, ...fill, ...r].map((g) => Number.parseInt(g || "0", 16));
}

function embeddedV4(groups: number[], at: number): string {
  const hi = groups[at] ?? 0;
  const lo = groups[at + 1] ?? 0;
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function classifyV6(ip: string): AddressClass {
  const g = v6Groups(ip);
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(8)) return "reserved"; // ::
  if (zeroTo(7) && g7 === 1) return "loopback"; // ::1
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
  if (zeroTo(5) && g5 === 0xffff) return classifyV4(embeddedV4(g, 6));
  if (zeroTo(6)) return classifyV4(embeddedV4(g, 6));
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return classifyV4(embeddedV4(g, 6));
  }
  if (g0 === 0x2002) return classifyV4(embeddedV4(g, 1)); // 6to4
  // AWS instance metadata over IPv6 (fd00:ec2::254) sits inside the ULA range: refuse it first.
  if (
    g0 === 0xfd00 &&
    g1 === 0x0ec2 &&
    g2 === 0 &&
    g3 === 0 &&
    g4 === 0 &&
    g5 === 0 &&
    g6 === 0 &&
    g7 === 0x254
  ) {
    return "metadata";
  }
  if ((g0 & 0xffc0) === 0xfe80) return "link_local"; // fe80::/10
  if ((g0 & 0xfe00) === 0xfc00) return "private"; // fc00::/7 (ULA)
  if ((g0 & 0xff00) === 0xff00) return "reserved"; // multicast
  if ((g0 & 0xffc0) === 0xfec0) return "reserved"; // deprecated site-local
  if (g0 === 0x2001 && g1 === 0x0db8) return "reserved"; // documentation
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return "reserved"; // discard-only
  return "public";
}

/** The class of an IP address (v4 or v6 text); throws if `ip` is not an address. */
export function classifyAddress(ip: string): AddressClass {
  const bare = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const family = isIP(bare.split("%")[0] ?? "");
  if (family === 4) return classifyV4(bare);
  if (family === 6) return classifyV6(bare);
  throw new Error(`not an IP address: ${ip}`);
}

export function isAllowedClass(cls: AddressClass, allowPrivate = webhookConfig.allowPrivate): boolean {
  if (cls === "public") return true;
  if (cls === "private" || cls === "loopback") return allowPrivate;
  return false;
}

const REASONS: Record<Exclude<AddressClass, "public">, string> = {
  private: "a private network address",
  loopback: "a loopback address",
  link_local: "a link-local address",
  metadata: "a cloud metadata address",
  reserved: "a reserved or non-routable address",
};

/** Why a class is refused (for 422s and delivery logs). */
export function refusal(cls: AddressClass, subject: string): string {
  if (cls === "public") return "";
  const hint =
    cls === "private" || cls === "loopback" ? " (allowed only with COORD_WEBHOOK_ALLOW_PRIVATE=1)" : "";
  return `${subject} is ${REASONS[cls]}${hint}`;
}

export class AddressRefused extends Error {
  constructor(
    message: string,
    readonly addressClass: AddressClass,
    /** DNS failed rather than answering with a refused address: worth retrying later. */
    readonly transient = false,
  ) {
    super(message);
    this.name = "AddressRefused";
  }
}

/** The class of a host name before any DNS: literal addresses, `localhost` and metadata names; else undefined. */
export function classifyHostName(hostname: string): AddressClass | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(bare)) return classifyAddress(bare);
  if (METADATA_NAMES.has(bare)) return "metadata";
  if (bare === "localhost" || bare.endsWith(".localhost")) return "loopback";
  return undefined;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/**
 * Resolves `hostname` and checks every address it resolves to (one bad answer refuses the host: an attacker who
 * controls DNS chooses which answer a client uses). Returns the allowed addresses, in DNS order.
 */
export async function resolveAllowed(
  hostname: string,
  opts: { allowPrivate?: boolean; resolve?: Resolver } = {},
): Promise<{ address: string; family: number }[]> {
  const allowPrivate = opts.allowPrivate ?? webhookConfig.allowPrivate;
  const named = classifyHostName(hostname);
  const bare = hostname.replace(/^\[|\]$/g, "");
  if (named !== undefined) {
    if (!isAllowedClass(named, allowPrivate)) throw new AddressRefused(refusal(named, hostname), named);
    if (isIP(bare)) return [{ address: bare, family: isIP(bare) }];
  }
  let answers: { address: string; family: number }[];
  try {
    answers = await (opts.resolve ?? systemResolver)(bare);
  } catch (err) {
    const code = (err as { code?: string }).code ?? "error";
    throw new AddressRefused(`${hostname} does not resolve (${code})`, "reserved", true);
  }
  if (answers.length === 0) throw new AddressRefused(`${hostname} does not resolve`, "reserved", true);
  for (const a of answers) {
    const cls = classifyAddress(a.address);
    if (!isAllowedClass(cls, allowPrivate)) {
      throw new AddressRefused(refusal(cls, `${hostname} (${a.address})`), cls);
    }
  }
  return answers;
}

/**
 * Syntax rules for a webhook URL (scheme, no credentials, a host, a port a connection can use); returns the
 * problems, empty when fine. Port 0 (also written `:00`...) is refused: no server listens there, and a connect to
 * it fails or, on some stacks, picks an arbitrary port.
 */
export function urlSyntaxProblems(raw: string): string[] {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return ["must be an absolute http(s) URL"];
  }
  const problems: string[] = [];
  if (url.protocol !== "https:" && url.protocol !== "http:") problems.push("must use http or https");
  if (url.username || url.password) problems.push("must not carry credentials");
  if (!url.hostname) problems.push("must name a host");
  if (url.port === "0") problems.push("must not use port 0");
  return problems;
}

/**
 * Synchronous check (no DNS) for schemas: syntax, plus a host that is a refused literal address or well-known name
 * (`localhost`, metadata names). For a job's `webhook_url`, e.g. in SubmitInput:
 * `v.check((u) => webhookUrlProblems(u).length === 0, (i) => webhookUrlProblems(String(i.input)).join("; "))`.
 * Delivery checks the resolved addresses again in any case.
 */
export function webhookUrlProblems(raw: string, allowPrivate = webhookConfig.allowPrivate): string[] {
  const problems = urlSyntaxProblems(raw);
  if (problems.length > 0) return problems;
  const host = new URL(raw).hostname;
  const cls = classifyHostName(host);
  return cls !== undefined && !isAllowedClass(cls, allowPrivate) ? [`is refused: ${refusal(cls, host)}`] : [];
}

/**
 * Checks a webhook URL at registration: syntax, then the host (literal address, well-known names, DNS answers).
 * Throws a ValidationError naming `path` (422).
 */
export async function assertWebhookUrl(
  raw: string,
  path: string,
  opts: { allowPrivate?: boolean; resolve?: Resolver } = {},
): Promise<void> {
  const problems = urlSyntaxProblems(raw);
  if (problems.length > 0) {
    throw new ValidationError(problems.map((message): Issue => ({ path, message: `${path} ${message}` })));
  }
  try {
    await resolveAllowed(new URL(raw).hostname, opts);
  } catch (err) {
    if (err instanceof AddressRefused) {
      throw new ValidationError([{ path, message: `${path} is refused: ${err.message}` }]);
    }
    throw err;
  }
}

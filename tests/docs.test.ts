import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "../events/catalog.ts";
import { createApp } from "../functions/api/app.ts";
import { openApiDocument } from "../functions/api/openapi.ts";

/*
 * The docs promise only what exists. Every markdown page under docs/ and the README is read, and each HTTP route it
 * names (`GET /v1/jobs/{id}`, or a bare `/v1/...` path) must be one the app routes (the Hono router itself, so that
 * a route missing from the OpenAPI document still counts), each event type it names (`job.completed.v1`) must be in
 * the event catalog, and each repository path it cites (`stacks/stream.ts`, `core/idempotency`) or links to must
 * exist. Pure: reads files and the router, needs no stack.
 */

const ROOT = resolve(import.meta.dirname, "..");

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return markdownFiles(p);
    return e.name.endsWith(".md") ? [p] : [];
  });
}

const PAGES = [join(ROOT, "README.md"), ...markdownFiles(join(ROOT, "docs"))].map((file) => ({
  file,
  name: relative(ROOT, file),
  text: readFileSync(file, "utf8"),
}));

/** Where in a page: `docs/x.md:12`. */
function at(page: { name: string; text: string }, index: number): string {
  return `${page.name}:${page.text.slice(0, index).split("\n").length}`;
}

// ---- routes ----

type Segment = { kind: "literal"; text: string } | { kind: "param"; pattern?: RegExp } | { kind: "rest" };

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** A router path (`/v1/miners/:job_id/:action{start|fail}`, `/v1/registry/*`) as segments. */
function routerSegments(path: string): Segment[] {
  return path
    .split("/")
    .filter(Boolean)
    .map((s): Segment => {
      if (s === "*") return { kind: "rest" };
      const param = /^:\w+(?:\{(.+)\})?$/.exec(s);
      if (param) return { kind: "param", pattern: param[1] ? new RegExp(`^(?:${param[1]})$`) : undefined };
      return { kind: "literal", text: s };
    });
}

const ROUTES = createApp()
  .routes.filter((r) => r.method !== "ALL") // `app.use` middleware, not routes
  .map((r) => ({ method: r.method, path: r.path, segments: routerSegments(r.path) }));

/** A documented path, normalised: `{id}`, `:id` and `<id>` are parameters; a trailing `*` is "anything under". */
interface DocPath {
  segments: ({ kind: "literal"; text: string } | { kind: "param" })[];
  prefix: boolean;
}

function docPath(path: string): DocPath {
  const prefix = path.endsWith("*");
  const parts = path.replace(/\*$/, "").split("/").filter(Boolean);
  return {
    prefix,
    segments: parts.map((s) =>
      /^(\{[^}]*\}|<[^>]*>|:\w+)$/.test(s) ? { kind: "param" } : { kind: "literal", text: s },
    ),
  };
}

function segmentFits(doc: DocPath["segments"][number], route: Segment): boolean {
  if (route.kind === "rest") return true;
  if (doc.kind === "param") return route.kind === "param";
  if (route.kind === "literal") return route.text === doc.text;
  // A concrete value where the router has a parameter (`/v1/miners/{job_id}/start`).
  return route.pattern === undefined || route.pattern.test(doc.text);
}

function routeExists(method: string | undefined, path: string): boolean {
  const doc = docPath(path);
  return ROUTES.some((r) => {
    if (method !== undefined && r.method !== method) return false;
    const rest = r.segments.at(-1)?.kind === "rest";
    const fixed = rest ? r.segments.slice(0, -1) : r.segments;
    if (doc.prefix) {
      // `/v1/admin/*`: some route lives under the prefix.
      return doc.segments.every((s, i) => fixed[i] !== undefined && segmentFits(s, fixed[i] as Segment));
    }
    if (rest ? doc.segments.length < fixed.length : doc.segments.length !== fixed.length) return false;
    return doc.segments.every((s, i) => i >= fixed.length || segmentFits(s, fixed[i] as Segment));
  });
}

/**
 * The concrete paths a documented form stands for: `[...]` optional parts (with `|` alternatives inside) both
 * with and without, `a|b` segment alternatives each, the query string and sentence punctuation dropped.
 */
function expandPath(raw: string): string[] {
  const open = raw.indexOf("[");
  if (open >= 0) {
    let depth = 0;
    let close = -1;
    for (let i = open; i < raw.length; i++) {
      if (raw[i] === "[") depth++;
      if (raw[i] === "]" && --depth === 0) {
        close = i;
        break;
      }
    }
    if (close < 0) return expandPath(raw.slice(0, open));
    const before = raw.slice(0, open);
    const after = raw.slice(close + 1);
    const inner = raw.slice(open + 1, close);
    const alternatives: string[] = [];
    depth = 0;
    let start = 0;
    for (let i = 0; i <= inner.length; i++) {
      if (inner[i] === "[") depth++;
      if (inner[i] === "]") depth--;
      if (i === inner.length || (inner[i] === "|" && depth === 0)) {
        alternatives.push(inner.slice(start, i));
        start = i + 1;
      }
    }
    return [before + after, ...alternatives.map((alt) => before + alt + after)].flatMap(expandPath);
  }
  const path = raw.replace(/\?.*$/, "").replace(/[.:,;]+$/, "");
  let paths = [""];
  for (const segment of path.split("/").filter(Boolean)) {
    const options = segment.split("|").filter((s) => s !== "" && s !== "...");
    paths = paths.flatMap((p) => options.map((o) => `${p}/${o}`));
  }
  return paths;
}

/** `/v1...` up to the first character a path does not contain; `<client id>`-style placeholders may hold spaces. */
const PATH = String.raw`/v1(?:<[^>\n]*>|[A-Za-z0-9_{}:.\-\[\]|*?=&/])*`;

interface Named {
  where: string;
  method?: string;
  path: string;
}

function namedRoutes(): Named[] {
  const found: Named[] = [];
  for (const page of PAGES) {
    const withMethod = new RegExp(String.raw`\b(${METHODS.join("|")})\s+(?:<api>|\$\w+)?(${PATH})`, "g");
    for (const m of page.text.matchAll(withMethod)) {
      for (const path of expandPath(m[2] as string))
        found.push({ where: at(page, m.index), method: m[1], path });
    }
    for (const m of page.text.matchAll(new RegExp(PATH, "g"))) {
      for (const path of expandPath(m[0])) found.push({ where: at(page, m.index), path });
    }
  }
  return found;
}

// ---- events ----

/** Statement types the system signs (core/receipts/statements.ts) look like event types but are not events. */
const SIGNED_STATEMENT = /^coordinator\./;

function namedEventTypes(): Named[] {
  return PAGES.flatMap((page) =>
    [...page.text.matchAll(/(?<![\w.])[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v\d+\b/g)]
      .filter((m) => !SIGNED_STATEMENT.test(m[0]))
      .map((m) => ({ where: at(page, m.index), path: m[0] })),
  );
}

// ---- files ----

const TOP = [
  "core",
  "stacks",
  "functions",
  "events",
  "local",
  "cli",
  "sdk",
  "bench",
  "scripts",
  "tests",
  "docs",
];

/** Repository paths cited in the text (templates such as `core/services/catalog/<family>.ts` are skipped). */
function citedPaths(): Named[] {
  const found: Named[] = [];
  const cite = new RegExp(String.raw`(?<![\w./-])(?:\./)?((?:${TOP.join("|")})/[A-Za-z0-9_./-]*)(.?)`, "g");
  for (const page of PAGES) {
    for (const m of page.text.matchAll(cite)) {
      if (/[<{*$[]/.test(m[2] ?? "")) continue;
      const path = (m[1] as string).replace(/[.:,;]+$/, "");
      found.push({ where: at(page, m.index), path });
    }
    // Relative Markdown links: [events.md](events.md#catalog), [code](../core/x.ts).
    for (const m of page.text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = m[1] as string;
      if (/^[a-z]+:/i.test(target)) continue;
      found.push({ where: at(page, m.index), path: relative(ROOT, resolve(dirname(page.file), target)) });
    }
  }
  return found;
}

// ---- deploy-time secrets ----

function sourceText(dir: string): string {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return [sourceText(p)];
      return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [readFileSync(p, "utf8")] : [];
    })
    .join("\n");
}

/**
 * The SST secrets stacks/secrets.ts declares, with the variable each reaches the code in (`SECRET_ENV`), read as
 * text: the module uses SST's globals, which the app's type-check does not know, so it cannot be imported here.
 */
function declaredSecrets(): { name: string; env: string }[] {
  const text = readFileSync(join(ROOT, "stacks/secrets.ts"), "utf8");
  const body = /export const SECRET_ENV = \{([\s\S]*?)\} as const/.exec(text)?.[1];
  if (body === undefined) throw new Error("stacks/secrets.ts: SECRET_ENV not found");
  return [...body.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "").matchAll(/(\w+): "(\w+)"/g)].map((m) => ({
    name: m[1] as string,
    env: m[2] as string,
  }));
}

describe("the docs name only what exists", () => {
  it("reads every page", () => {
    expect(PAGES.map((p) => p.name)).toEqual(expect.arrayContaining(["README.md", "docs/webhooks.md"]));
    expect(ROUTES.length).toBeGreaterThan(50);
  });

  it("the route matcher understands the forms the docs use", () => {
    expect(expandPath("/v1/registry/services[/{id}[/schema|/requirements]]")).toEqual([
      "/v1/registry/services",
      "/v1/registry/services/{id}",
      "/v1/registry/services/{id}/schema",
      "/v1/registry/services/{id}/requirements",
    ]);
    expect(expandPath("/v1/jobs/{id}/cancel|retry.")).toEqual([
      "/v1/jobs/{id}/cancel",
      "/v1/jobs/{id}/retry",
    ]);
    expect(expandPath("/v1/jobs/{id}?wait=20&version=")).toEqual(["/v1/jobs/{id}"]);
    expect(routeExists("GET", "/v1/jobs/{id}")).toBe(true);
    expect(routeExists("GET", "/v1/jobs/:id")).toBe(true);
    expect(routeExists("POST", "/v1/admin/accounts/<client id>/keys")).toBe(true);
    expect(routeExists("POST", "/v1/miners/{job_id}/result")).toBe(true);
    expect(routeExists(undefined, "/v1/admin/*")).toBe(true);
    expect(routeExists("GET", "/v1/jobs/{id}/events")).toBe(true);
    // What must not pass: a method the route lacks, a parameter where the router has a word, an unknown route.
    expect(routeExists("DELETE", "/v1/jobs/{id}")).toBe(false);
    expect(routeExists("GET", "/v1/jobs/{id}/{part}")).toBe(false);
    expect(routeExists("POST", "/v1/miners/{job_id}/dance")).toBe(false);
    expect(routeExists("POST", "/v1/webhooks/nowhere")).toBe(false);
    expect(routeExists(undefined, "/v1/webhooks/ether")).toBe(false);
  });

  it("every HTTP route the docs name is one the app serves", () => {
    const named = namedRoutes();
    expect(named.length).toBeGreaterThan(50);
    const missing = named
      .filter((r) => !routeExists(r.method, r.path))
      .map((r) => `${r.where}: ${r.method ?? "(any method)"} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it("every route in the OpenAPI document is one the app serves", () => {
    const doc = openApiDocument();
    const missing = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => !routeExists(m.toUpperCase(), path))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(missing).toEqual([]);
  });

  it("every event type the docs name is in the event catalog", () => {
    const named = namedEventTypes();
    expect(named.length).toBeGreaterThan(10);
    const known = new Set<string>(EVENT_TYPES);
    expect(named.filter((e) => !known.has(e.path)).map((e) => `${e.where}: ${e.path}`)).toEqual([]);
  });

  it("every deploy-time secret is read by the code, and the docs ask only for those", () => {
    const declared = declaredSecrets();
    const code = ["core", "functions"].map((d) => sourceText(join(ROOT, d))).join("\n");
    expect(declared.length).toBeGreaterThan(0);
    expect(declared.filter((d) => !code.includes(`process.env.${d.env}`)).map((d) => d.name)).toEqual([]);
    const asked = PAGES.flatMap((page) =>
      [...page.text.matchAll(/sst secret set ([A-Za-z]\w*)/g)].map((m) => ({
        where: at(page, m.index),
        path: m[1] as string,
      })),
    );
    const names = declared.map((d) => d.name);
    expect(asked.filter((a) => !names.includes(a.path)).map((a) => `${a.where}: ${a.path}`)).toEqual([]);
  });

  it("every repository path the docs cite or link exists", () => {
    const cited = citedPaths();
    expect(cited.length).toBeGreaterThan(20);
    expect(cited.filter((c) => !existsSync(join(ROOT, c.path))).map((c) => `${c.where}: ${c.path}`)).toEqual(
      [],
    );
  });
});

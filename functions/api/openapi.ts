import { toJsonSchema } from "@valibot/to-json-schema";
import { Hono, type MiddlewareHandler } from "hono";
import type { H } from "hono/types";
import type { GenericSchema } from "valibot";
import { type WorkClass, withWorkClass } from "../../core/db/work-class.ts";
import type { AppEnv } from "./env.ts";

export interface RouteDoc {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** OpenAPI path, e.g. `/v1/jobs/{id}` */
  path: string;
  summary: string;
  tag: string;
  auth?: "client" | "miner" | "admin" | "any" | "none";
  body?: GenericSchema;
  query?: GenericSchema;
  responses?: Record<string, string>;
}

const routes: RouteDoc[] = [];

function documented(doc: RouteDoc): RouteDoc {
  routes.push(doc);
  return doc;
}

/**
 * What a route says about itself beside its handlers: its OpenAPI entry (the path comes from the route), and the
 * work class of its DynamoDB requests (core/db/work-class.ts; default `other`).
 */
export type RouteSpec = Omit<RouteDoc, "method" | "path" | "tag"> & { tag?: string; work?: WorkClass };

type Method = RouteDoc["method"];

/** `/v1/jobs` + `/:id/events` -> `/v1/jobs/{id}/events` (`/` is the base itself). */
function openApiPath(base: string, path: string): string {
  const joined = path === "/" ? base : `${base}${path}`;
  return joined.replace(/:(\w+)/g, "{$1}");
}

/**
 * A sub-app whose every route is defined once: one call mounts the handlers and records the OpenAPI entry from the
 * same path and the same valibot schemas the handlers validate with, so the document cannot drift from the routes.
 * `base` is where the app is mounted (`app.route(base, ...)`).
 */
export function documentedRoutes(base: string, tag: string) {
  const app = new Hono<AppEnv>();
  const define =
    (method: Method) =>
    <P extends string>(path: P, spec: RouteSpec, ...handlers: H<AppEnv, NoInfer<P>>[]) => {
      const { work, ...doc } = spec;
      documented({ ...doc, method, path: openApiPath(base, path), tag: spec.tag ?? tag });
      const cls: WorkClass = work ?? "other";
      const classed: H<AppEnv, P> = (_c, next) => withWorkClass(cls, next);
      (app.on as (m: string, p: string, ...h: H<AppEnv, P>[]) => unknown)(
        method.toUpperCase(),
        path,
        classed,
        ...handlers,
      );
      return routes;
    };
  const routes = {
    app,
    /** Middleware for every route defined after it. */
    use: (...handlers: MiddlewareHandler<AppEnv>[]) => {
      app.use(...handlers);
      return routes;
    },
    get: define("get"),
    post: define("post"),
    put: define("put"),
    patch: define("patch"),
    delete: define("delete"),
  };
  return routes;
}

function schema(s: GenericSchema) {
  return toJsonSchema(s, { errorMode: "ignore" }) as Record<string, unknown>;
}

export function openApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const query = r.query ? schema(r.query) : undefined;
    const queryParams = Object.entries((query?.properties as Record<string, unknown>) ?? {}).map(
      ([name, s]) => ({
        name,
        in: "query",
        required: ((query?.required as string[]) ?? []).includes(name),
        schema: s,
      }),
    );
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      parameters: [...params, ...queryParams],
      // A JSON answer on every 2xx but 204 (its shape in the description; not yet a schema), and problem+json on
      // every error: what a generated client (sdk/schema.d.ts) types its answers by.
      responses: Object.fromEntries(
        Object.entries(r.responses ?? { "200": "OK" }).map(([code, description]) => [
          code,
          {
            description,
            ...(code === "204"
              ? {}
              : {
                  content: {
                    [code.startsWith("2") ? "application/json" : "application/problem+json"]: { schema: {} },
                  },
                }),
          },
        ]),
      ),
    };
    if (r.auth && r.auth !== "none") op.security = [{ bearer: [] }, { apiKey: [] }];
    // Which kind of key the route takes (client, miner, admin, any): tools and the route fuzz test read it.
    op["x-coord-auth"] = r.auth ?? "none";
    if (r.body)
      op.requestBody = { required: true, content: { "application/json": { schema: schema(r.body) } } };
    const path = paths[r.path] ?? {};
    path[r.method] = op;
    paths[r.path] = path;
  }
  return {
    openapi: "3.1.0",
    info: { title: "Coordinator API", version: "1.0.0", description: "Serverless coordinator for GPU jobs" },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        apiKey: { type: "apiKey", in: "header", name: "X-Api-Key" },
      },
    },
    paths,
  };
}

import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";

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

/** Each sub-app documents its routes here with the same valibot schemas it validates with. */
export function documented(doc: RouteDoc): RouteDoc {
  routes.push(doc);
  return doc;
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
      responses: Object.fromEntries(
        Object.entries(r.responses ?? { "200": "OK" }).map(([code, description]) => [code, { description }]),
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

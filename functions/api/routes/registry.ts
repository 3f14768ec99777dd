import { Hono } from "hono";
import {
  getService,
  jsonSchemaOf,
  ListServicesQuery,
  listServices,
  requirementsView,
  serviceSummary,
  serviceView,
} from "../../../core/services/registry.ts";
import { parse } from "../../../core/validate.ts";
import type { AppEnv } from "../env.ts";
import { documented } from "../openapi.ts";

documented({
  method: "get",
  path: "/v1/registry/services",
  summary: "List services (without schemas), filtered by category or a search string, a page at a time",
  tag: "registry",
  auth: "none",
  query: ListServicesQuery,
  responses: { "200": "{items, next_cursor}", "422": "a query parameter is invalid" },
});
documented({
  method: "get",
  path: "/v1/registry/services/{id}",
  summary: "A service: requirements, pricing, defaults, input and output JSON Schema",
  tag: "registry",
  auth: "none",
  responses: { "200": "the service", "404": "no such service" },
});
documented({
  method: "get",
  path: "/v1/registry/services/{id}/schema",
  summary: "A service's input and output JSON Schema",
  tag: "registry",
  auth: "none",
  responses: { "200": "{id, input_schema, output_schema}", "404": "no such service" },
});
documented({
  method: "get",
  path: "/v1/registry/services/{id}/requirements",
  summary: "What a miner needs to run a service (VRAM per GPU, GPU count, CUDA, per-model hardware)",
  tag: "registry",
  auth: "none",
  responses: { "200": "{id, requirements}", "404": "no such service" },
});
documented({
  method: "get",
  path: "/v1/registry/services/{id}/pricing",
  summary: "A service's billing unit and default unit price (micro-credits)",
  tag: "registry",
  auth: "none",
  responses: { "200": "{id, pricing}", "404": "no such service" },
});

/** The catalog changes only with a deploy: let clients and CDNs keep it for a few minutes. */
const CACHE_CONTROL = "public, max-age=300";

/** Public, read-only service registry. Mounted at `/v1/registry`. */
export const registry = new Hono<AppEnv>()
  .use(async (c, next) => {
    await next();
    if (c.res.status === 200) c.header("Cache-Control", CACHE_CONTROL);
  })
  .get("/services", (c) => {
    const page = listServices(parse(ListServicesQuery, c.req.query(), "query"));
    return c.json({ items: page.items.map(serviceSummary), next_cursor: page.next_cursor });
  })
  .get("/services/:id", (c) => c.json(serviceView(getService(c.req.param("id")))))
  .get("/services/:id/schema", (c) => {
    const def = getService(c.req.param("id"));
    return c.json({
      id: def.id,
      input_schema: jsonSchemaOf(def.input),
      output_schema: jsonSchemaOf(def.output),
    });
  })
  .get("/services/:id/requirements", (c) => {
    const def = getService(c.req.param("id"));
    return c.json({ id: def.id, requirements: requirementsView(def) });
  })
  .get("/services/:id/pricing", (c) => {
    const def = getService(c.req.param("id"));
    return c.json({ id: def.id, pricing: { ...def.pricing } });
  });

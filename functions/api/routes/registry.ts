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
import { documentedRoutes } from "../openapi.ts";

/** The catalog changes only with a deploy: let clients and CDNs keep it for a few minutes. */
const CACHE_CONTROL = "public, max-age=300";

/** Public, read-only service registry. */
export const registry = documentedRoutes("/v1/registry", "registry")
  .use(async (c, next) => {
    await next();
    if (c.res.status === 200) c.header("Cache-Control", CACHE_CONTROL);
  })
  .get(
    "/services",
    {
      summary: "List services (without schemas), filtered by category or a search string, a page at a time",
      auth: "none",
      query: ListServicesQuery,
      responses: { "200": "{items, next_cursor}", "422": "a query parameter is invalid" },
    },
    (c) => {
      const page = listServices(parse(ListServicesQuery, c.req.query(), "query"));
      return c.json({ items: page.items.map(serviceSummary), next_cursor: page.next_cursor });
    },
  )
  .get(
    "/services/:id",
    {
      summary: "A service: requirements, pricing, defaults, input and output JSON Schema",
      auth: "none",
      responses: { "200": "the service", "404": "no such service" },
    },
    (c) => c.json(serviceView(getService(c.req.param("id")))),
  )
  .get(
    "/services/:id/schema",
    {
      summary: "A service's input and output JSON Schema",
      auth: "none",
      responses: { "200": "{id, input_schema, output_schema}", "404": "no such service" },
    },
    (c) => {
      const def = getService(c.req.param("id"));
      return c.json({
        id: def.id,
        input_schema: jsonSchemaOf(def.input),
        output_schema: jsonSchemaOf(def.output),
      });
    },
  )
  .get(
    "/services/:id/requirements",
    {
      summary: "What a miner needs to run a service (VRAM per GPU, GPU count, CUDA, per-model hardware)",
      auth: "none",
      responses: { "200": "{id, requirements}", "404": "no such service" },
    },
    (c) => {
      const def = getService(c.req.param("id"));
      return c.json({ id: def.id, requirements: requirementsView(def) });
    },
  )
  .get(
    "/services/:id/pricing",
    {
      summary: "A service's billing unit and default unit price (micro-credits)",
      auth: "none",
      responses: { "200": "{id, pricing}", "404": "no such service" },
    },
    (c) => {
      const def = getService(c.req.param("id"));
      return c.json({ id: def.id, pricing: { ...def.pricing } });
    },
  ).app;

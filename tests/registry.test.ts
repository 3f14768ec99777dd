import { describe, expect, it } from "vitest";
import { api } from "./fixture.ts";

interface Summary {
  id: string;
  category: string;
  pricing: { unit: string; default_unit_price: number };
}

describe("the service registry over HTTP", () => {
  it("lists services without a key, echo among them", async () => {
    const res = await api<{ items: Summary[]; next_cursor: string | null }>("GET", "/v1/registry/services");
    expect(res.status).toBe(200);
    expect(res.body.items.map((s) => s.id)).toContain("echo");
    expect(res.body.next_cursor).toBeNull();
  });

  it("filters by category and pages with the cursor", async () => {
    const audio = await api<{ items: Summary[] }>("GET", "/v1/registry/services?category=audio");
    expect(audio.body.items.map((s) => s.id)).toEqual(["whisper.transcribe", "whisper.translate"]);

    const first = await api<{ items: Summary[]; next_cursor: string }>(
      "GET",
      "/v1/registry/services?limit=1",
    );
    expect(first.body.items).toHaveLength(1);
    const second = await api<{ items: Summary[] }>(
      "GET",
      `/v1/registry/services?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`,
    );
    expect(second.body.items[0]?.id).not.toBe(first.body.items[0]?.id);
  });

  it("a limit outside 1..100 is a 422 naming query.limit", async () => {
    const res = await api("GET", "/v1/registry/services?limit=500");
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ code: "validation_failed", errors: [{ path: "query.limit" }] });
  });

  it("a service shows its schemas, requirements and pricing", async () => {
    const view = await api("GET", "/v1/registry/services/llm.inference");
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({
      id: "llm.inference",
      category: "text",
      pricing: { unit: "gpu_second" },
      input_schema: { type: "object" },
      output_schema: { type: "object" },
    });

    const schema = await api("GET", "/v1/registry/services/blender.render/schema");
    expect(schema.body).toMatchObject({
      id: "blender.render",
      input_schema: { required: expect.any(Array) },
    });

    const req = await api("GET", "/v1/registry/services/llm.inference/requirements");
    expect(req.body).toMatchObject({
      requirements: { by_model: { "llama-3.1-70b-instruct": { gpu_count: 2 } } },
    });

    const pricing = await api("GET", "/v1/registry/services/blender.render/pricing");
    expect(pricing.body).toMatchObject({ pricing: { unit: "frame" } });
  });

  it("an unknown service is a 404 problem", async () => {
    const res = await api("GET", "/v1/registry/services/teleport");
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: "not_found" });
  });

  it("the registry routes are in the OpenAPI document", async () => {
    const res = await api<{ paths: Record<string, unknown> }>("GET", "/v1/openapi.json");
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(["/v1/registry/services", "/v1/registry/services/{id}/schema"]),
    );
  });
});

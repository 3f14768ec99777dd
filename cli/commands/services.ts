import { type Command, clip, printFields, printJson, printTable, str } from "../command.ts";

type Page = { items: Record<string, unknown>[]; next_cursor: string | null };

const list: Command = {
  name: "services list",
  summary: "The services the registry offers (public; no key needed)",
  options: {
    category: { type: "string", value: "C", description: "Only this category (e.g. audio, image, test)" },
    q: { type: "string", value: "TEXT", description: "Search ids and descriptions" },
  },
  examples: ["coord services list", "coord services list --category audio --json"],
  async run(ctx) {
    const items: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    do {
      const res = await ctx.api.get<Page>("/v1/registry/services", {
        query: { category: str(ctx.opts, "category"), q: str(ctx.opts, "q"), cursor },
      });
      items.push(...res.body.items);
      cursor = res.body.next_cursor ?? undefined;
    } while (cursor);
    if (ctx.json) return printJson(ctx.io, { items });
    printTable(
      ctx.io,
      items.map((s) => {
        const pricing = (s.pricing ?? {}) as Record<string, unknown>;
        return {
          ...s,
          price: `${pricing.default_unit_price ?? "-"}/${pricing.unit ?? "unit"}`,
          description: clip(s.description),
        };
      }),
      ["id", "category", "price", "description"],
    );
  },
};

const show: Command = {
  name: "services show",
  summary: "A service: requirements, pricing, defaults, input and output JSON Schema",
  args: ["<service_id>"],
  examples: ["coord services show echo", "coord services show whisper --json"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const res = await ctx.api.get(`/v1/registry/services/${encodeURIComponent(id)}`);
    if (ctx.json) return printJson(ctx.io, res.body);
    const { input_schema, output_schema, ...rest } = res.body;
    printFields(ctx.io, rest);
    ctx.io.stdout(`input_schema\n${JSON.stringify(input_schema, null, 2)}\n`);
    ctx.io.stdout(`output_schema\n${JSON.stringify(output_schema, null, 2)}\n`);
  },
};

export const serviceCommands: Command[] = [list, show];

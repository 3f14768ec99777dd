import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { pingTable } from "../../../core/db/ping.ts";
import { QUEUES } from "../../../events/queues.ts";
import { queueUrl, sqs } from "../../sqs.ts";
import { documentedRoutes, openApiDocument } from "../openapi.ts";

async function check(
  fn: () => Promise<unknown>,
): Promise<{ status: "ok" | "error"; latency_ms: number; error?: string }> {
  const started = performance.now();
  try {
    await fn();
    return { status: "ok", latency_ms: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      status: "error",
      latency_ms: Math.round(performance.now() - started),
      error: (err as Error).name,
    };
  }
}

export const health = documentedRoutes("/v1", "meta")
  .get(
    "/health",
    {
      summary: "Health of the API, table and queues",
      auth: "none",
      responses: { "200": "healthy", "503": "a dependency is down" },
    },
    async (c) => {
      const [database, queues] = await Promise.all([
        check(pingTable),
        check(async () => {
          const first = QUEUES[0];
          if (first)
            await sqs().send(
              new GetQueueAttributesCommand({
                QueueUrl: await queueUrl(first.name),
                AttributeNames: ["QueueArn"],
              }),
            );
        }),
      ]);
      const ok = database.status === "ok" && queues.status === "ok";
      return c.json(
        { status: ok ? "ok" : "degraded", database, queues, time: new Date().toISOString() },
        ok ? 200 : 503,
      );
    },
  )
  .get("/openapi.json", { summary: "This document", auth: "none" }, (c) => c.json(openApiDocument())).app;

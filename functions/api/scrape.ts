import { connections, LocalConnections } from "../../core/doorbell/connections.ts";
import { refreshGauges } from "../../core/observability/gauges.ts";
import { exposition, gauges } from "../../core/observability/metrics.ts";
import { QUEUES } from "../../events/queues.ts";
import { depth, dlqUrl } from "./routes/dlq.ts";

/**
 * A scrape: the gauges are read now (the table-backed ones, each DLQ's depth, this process's sockets), then the
 * whole registry is rendered. Reads happen only when scraped, never per job; a scrape costs what an admin stats
 * call costs, so scrape every 15-60 s, not faster.
 */
export async function scrape(): Promise<string> {
  await Promise.all([refreshGauges(), dlqDepths()]);
  const registry = connections();
  gauges.connectedMiners.set({ transport: "ws" }, registry instanceof LocalConnections ? registry.size : 0);
  return exposition();
}

/** Each dead-letter queue's waiting messages, read as `GET /v1/admin/dlq` reads them. */
async function dlqDepths(): Promise<void> {
  await Promise.all(
    QUEUES.map(async (q) =>
      gauges.dlqDepth.set({ queue: q.name }, (await depth(await dlqUrl(q.name))).messages),
    ),
  );
}

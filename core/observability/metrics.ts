import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * The coordinator's metrics, one table of series. Counted in memory by the code that sees each fact (the stream
 * handler for job transitions and money, the rate limiter for refusals, the webhook sender for deliveries), never
 * by a write of their own: a job costs no DynamoDB request for being counted. Offline every function of the stack
 * runs in one process, so one registry sees all of it and `GET /metrics` serves it in Prometheus' text format; the
 * gauges (queue depth, oldest ready job, DLQ depth, miners...) are read when scraped (functions/api/scrape.ts).
 *
 * Names follow Prometheus' conventions: `coord_` prefix, `_total` counters, base units (seconds, micro-credits).
 */
export const registry = new Registry();

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export const series = {
  jobEvents: new Counter({
    name: "coord_job_events_total",
    help: "Job transitions seen, by event type and service",
    labelNames: ["type", "service"] as const,
    registers: [registry],
  }),
  submitToClaim: new Histogram({
    name: "coord_job_submit_to_claim_seconds",
    help: "From submit to a miner's claim (each attempt's claim), by service",
    labelNames: ["service"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  endToEnd: new Histogram({
    name: "coord_job_end_to_end_seconds",
    help: "From submit to completion, by service",
    labelNames: ["service"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  }),
  leaseLapses: new Counter({
    name: "coord_lease_lapses_total",
    help: "Leases that lapsed (the job went back to the queue or failed for it), by service",
    labelNames: ["service"] as const,
    registers: [registry],
  }),
  retries: new Counter({
    name: "coord_job_retries_total",
    help: "Jobs sent back to the queue for another attempt, by service and reason",
    labelNames: ["service", "reason"] as const,
    registers: [registry],
  }),
  webhookDeliveries: new Counter({
    name: "coord_webhook_deliveries_total",
    help: "Webhook delivery attempts, by outcome (ok, failed)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  }),
  webhookLatency: new Histogram({
    name: "coord_webhook_delivery_seconds",
    help: "How long a webhook receiver took to answer an attempt",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  rateLimited: new Counter({
    name: "coord_rate_limited_total",
    help: "Requests refused with 429 by the rate limiter, by route class",
    labelNames: ["class"] as const,
    registers: [registry],
  }),
  money: new Counter({
    name: "coord_money_micro_total",
    help: "Money that moved, micro-credits, by flow (credit: top-ups, charge: jobs, payout: approved payouts)",
    labelNames: ["flow"] as const,
    registers: [registry],
  }),
  receipts: new Counter({
    name: "coord_receipts_issued_total",
    help: "Signed receipts issued",
    registers: [registry],
  }),
  batches: new Counter({
    name: "coord_settlement_batches_total",
    help: "Settlement batches, by what happened to them (anchored, confirmed, replaced...)",
    labelNames: ["event"] as const,
    registers: [registry],
  }),
};

/** Gauges read when scraped; `set` by the scrape (see functions/api/scrape.ts). */
export const gauges = {
  jobs: new Gauge({
    name: "coord_jobs",
    help: "Live jobs by status and service",
    labelNames: ["status", "service"] as const,
    registers: [registry],
  }),
  queueDepth: new Gauge({
    name: "coord_queue_depth",
    help: "Jobs ready to claim, by service",
    labelNames: ["service"] as const,
    registers: [registry],
  }),
  oldestReady: new Gauge({
    name: "coord_oldest_ready_seconds",
    help: "How long the job waiting longest to be claimed has been ready, by service (0: none waits)",
    labelNames: ["service"] as const,
    registers: [registry],
  }),
  settlementBatches: new Gauge({
    name: "coord_settlement_batches",
    help: "Settlement batches with work left, by state (sealing, pending: to anchor, watching: anchored, not final)",
    labelNames: ["state"] as const,
    registers: [registry],
  }),
  settlementOldest: new Gauge({
    name: "coord_settlement_oldest_pending_seconds",
    help: "How long the oldest settlement work has waited, by stage (unbatched receipt, anchoring, finality)",
    labelNames: ["stage"] as const,
    registers: [registry],
  }),
  miners: new Gauge({
    name: "coord_miners",
    help: "Miners by status",
    labelNames: ["status"] as const,
    registers: [registry],
  }),
  connectedMiners: new Gauge({
    name: "coord_connected_miners",
    help: "Miners connected, by transport (ws: the doorbell socket, on this instance)",
    labelNames: ["transport"] as const,
    registers: [registry],
  }),
  dlqDepth: new Gauge({
    name: "coord_dlq_depth",
    help: "Messages in each dead-letter queue",
    labelNames: ["queue"] as const,
    registers: [registry],
  }),
};

/** The text `GET /metrics` serves. */
export function exposition(): Promise<string> {
  return registry.metrics();
}

export const EXPOSITION_TYPE = registry.contentType;

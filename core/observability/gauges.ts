import { liveJobs, minerCounts, readyQueues } from "../admin/stats.ts";
import { SERVICES } from "../services/registry.ts";
import { settlementBacklog } from "../settlement/backlog.ts";
import { gauges } from "./metrics.ts";

/**
 * Reads what the table holds now and sets the table-backed gauges: live jobs by status and service, each service's
 * queue depth and longest wait, miners by status, the settlement backlog. Called by a scrape (`GET /metrics`) and,
 * on AWS, by the minute's sweep cron so the same gauges reach CloudWatch (and its alarms) without a scraper. Never
 * per job: it costs what an admin stats call costs.
 */
export async function refreshGauges(now = Date.now()): Promise<void> {
  const [queues, live, miners, settlement] = await Promise.all([
    readyQueues(),
    liveJobs(),
    minerCounts(),
    settlementBacklog(now),
  ]);
  gauges.jobs.reset();
  for (const s of SERVICES) {
    for (const status of ["queued", "assigned", "running"])
      gauges.jobs.set({ status, service: s.id }, live.byService[s.id]?.[status] ?? 0);
  }
  for (const [service, counts] of Object.entries(live.byService)) {
    // A job of a service since removed from the registry still counts.
    for (const [status, n] of Object.entries(counts)) gauges.jobs.set({ status, service }, n);
  }
  gauges.queueDepth.reset();
  gauges.oldestReady.reset();
  for (const [service, q] of Object.entries(queues)) {
    gauges.queueDepth.set({ service }, q.depth);
    const ready = q.oldest_ready_at ? Date.parse(q.oldest_ready_at) : now;
    gauges.oldestReady.set({ service }, Math.max(0, Math.round((now - ready) / 1000)));
  }
  gauges.miners.reset();
  for (const [status, n] of Object.entries(miners)) gauges.miners.set({ status }, n);
  for (const [state, n] of Object.entries(settlement.batches)) gauges.settlementBatches.set({ state }, n);
  for (const [stage, s] of Object.entries(settlement.oldestSeconds))
    gauges.settlementOldest.set({ stage }, s);
}

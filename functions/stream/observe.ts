import { series } from "../../core/observability/metrics.ts";
import type { Envelope } from "../../events/catalog.ts";

/**
 * Counts what the stream's events say happened (core/observability/metrics.ts): job transitions by service, the
 * submit->claim and end-to-end latencies, lease lapses and retries, money flows, receipts and settlement batches.
 * In memory only: no request of its own. A retried stream batch counts twice, as the per-minute counters do
 * (approximate by design).
 *
 * The latencies need the submit's time, which later events do not carry (adding it to every job event would grow
 * every outbox item on the hot path): it is remembered here from `job.submitted.v1`, for at most `REMEMBERED` jobs
 * at once. A job's events share its partition key, so they reach the same stream shard and, on Lambda, mostly the
 * same instance; a job whose submit this instance did not see is counted but not timed.
 */
const REMEMBERED = 100_000;
const submittedAt = new Map<string, number>();
const TERMINAL = new Set([
  "job.completed.v1",
  "job.failed.v1",
  "job.cancelled.v1",
  "job.expired.v1",
  "job.timed_out.v1",
]);

export function observeEvents(events: { env: Envelope }[]): void {
  for (const { env } of events) {
    const data = (env.data ?? {}) as Record<string, unknown>;
    const type = env.type;
    if (type.startsWith("job.")) {
      const service = String(data.service ?? "unknown");
      series.jobEvents.inc({ type, service });
      const jobId = String(data.job_id);
      const at = Date.parse(env.occurred_at);
      if (type === "job.submitted.v1") {
        if (submittedAt.size >= REMEMBERED) submittedAt.delete(submittedAt.keys().next().value as string);
        submittedAt.set(jobId, at);
      }
      const seconds = (at - (submittedAt.get(jobId) ?? Number.NaN)) / 1000;
      const timed = Number.isFinite(seconds) && seconds >= 0;
      if (TERMINAL.has(type)) submittedAt.delete(jobId);
      if (type === "job.assigned.v1" && timed) series.submitToClaim.observe({ service }, seconds);
      if (type === "job.completed.v1") {
        if (timed) series.endToEnd.observe({ service }, seconds);
        series.money.inc({ flow: "charge" }, Number(data.price ?? 0));
      }
      if (type === "job.requeued.v1") {
        const reason = String(data.reason ?? "unknown");
        series.retries.inc({ service, reason });
        if (reason === "lease_expired") series.leaseLapses.inc({ service });
      }
      if (type === "job.failed.v1" && data.error_code === "attempts_exhausted")
        series.leaseLapses.inc({ service });
      continue;
    }
    if (type === "payment.credited.v1") series.money.inc({ flow: "credit" }, Number(data.credits ?? 0));
    else if (type === "payout.approved.v1") series.money.inc({ flow: "payout" }, Number(data.amount ?? 0));
    else if (type === "receipt.issued.v1") series.receipts.inc();
    else if (type.startsWith("settlement."))
      series.batches.inc({ event: type.slice("settlement.".length, type.lastIndexOf(".v")) });
  }
}

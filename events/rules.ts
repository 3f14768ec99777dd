import type { EventType } from "./catalog.ts";
import { EVENT_SOURCE } from "./catalog.ts";
import type { QueueName } from "./queues.ts";

/**
 * The bus rules, defined once: EventBridge rules on AWS (stacks/bus.ts) and the local bus (local/bus.ts) both route
 * by this table. Patterns use the EventBridge subset we need: `source` and an explicit `detail-type` list.
 */
export interface Rule {
  name: string;
  target: QueueName;
  pattern: { source: string[]; "detail-type": EventType[]; detail?: DetailPattern };
}

/** EventBridge's `exists` matching on fields of the detail (the envelope), nested as the detail is. */
export interface DetailPattern {
  [field: string]: DetailPattern | [{ exists: boolean }];
}

/**
 * The events clients can receive as webhooks (account endpoints filter among these; a job's `webhook_url` gets its
 * job's `job.*` events). Every one carries `account_id`, the account whose endpoints receive it.
 */
export const WEBHOOK_EVENT_TYPES = [
  "job.submitted.v1",
  "job.assigned.v1",
  "job.started.v1",
  "job.progress.v1",
  "job.requeued.v1",
  "job.completed.v1",
  "job.failed.v1",
  "job.cancelled.v1",
  "job.expired.v1",
  "job.timed_out.v1",
  "webhook_endpoint.disabled.v1",
  "account.low_balance.v1",
  "receipt.issued.v1",
] as const satisfies readonly EventType[];
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const RULES: Rule[] = [
  {
    name: "audit-trail",
    target: "audit",
    pattern: {
      source: [EVENT_SOURCE],
      "detail-type": [
        "account.created.v1",
        "api_key.created.v1",
        "api_key.revoked.v1",
        "api_key.delegated.v1",
        "api_key.rotated.v1",
        "balance.adjusted.v1",
        "pool.created.v1",
        "pool.updated.v1",
        "miner.moderated.v1",
        "pool.member_added.v1",
        "pool.member_removed.v1",
        "payment.credited.v1",
        "payment.refunded.v1",
        "payment.reconcile_failed.v1",
        "payout.requested.v1",
        "payout.approved.v1",
        "payout.rejected.v1",
        "job.refunded.v1",
        "account.updated.v1",
      ],
    },
  },
  {
    // A client's own cancel is not audited; an operator's is (its event names the operator as actor).
    name: "audit-operator-cancels",
    target: "audit",
    pattern: {
      source: [EVENT_SOURCE],
      "detail-type": ["job.cancelled.v1"],
      detail: { actor: { account_id: [{ exists: true }] } },
    },
  },
  {
    name: "client-webhooks",
    target: "webhooks",
    pattern: { source: [EVENT_SOURCE], "detail-type": [...WEBHOOK_EVENT_TYPES] },
  },
  {
    // Events that open a deadline: a job waiting in the queue, or a new lease (core/jobs/timers.ts).
    name: "job-timers",
    target: "job-timers",
    pattern: {
      source: [EVENT_SOURCE],
      "detail-type": ["job.submitted.v1", "job.requeued.v1", "job.assigned.v1"],
    },
  },
];

/** Same matching semantics as EventBridge for the fields we use (every listed field must match one value). */
export function matches(
  rule: Rule,
  event: { source: string; "detail-type": string; detail?: unknown },
): boolean {
  return (
    rule.pattern.source.includes(event.source) &&
    (rule.pattern["detail-type"] as string[]).includes(event["detail-type"]) &&
    (rule.pattern.detail === undefined || detailMatches(rule.pattern.detail, event.detail))
  );
}

function detailMatches(pattern: DetailPattern, value: unknown): boolean {
  return Object.entries(pattern).every(([field, want]) => {
    const got =
      value !== null && typeof value === "object" ? (value as Record<string, unknown>)[field] : undefined;
    if (Array.isArray(want)) return (got !== undefined) === want[0].exists;
    return detailMatches(want, got);
  });
}

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
  pattern: { source: string[]; "detail-type": EventType[] };
}

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
      ],
    },
  },
];

/** Same matching semantics as EventBridge for the fields we use (every listed field must match one value). */
export function matches(rule: Rule, event: { source: string; "detail-type": string }): boolean {
  return (
    rule.pattern.source.includes(event.source) &&
    (rule.pattern["detail-type"] as string[]).includes(event["detail-type"])
  );
}

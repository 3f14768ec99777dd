import { setting } from "../../core/settings.ts";

/**
 * Cron handlers and their schedules, defined once: `stacks/cron.ts` creates an EventBridge schedule for each and
 * `local/cron.ts` runs each on the same period. `handler` is a module under functions/cron exporting `handler`.
 */
export interface Schedule {
  name: string;
  handler: string;
  everySeconds: number;
}

export const SCHEDULES: Schedule[] = [
  /** On AWS the shortest cron is one minute; locally (and in tests) it runs every COORD_SWEEP_SECONDS (default 1). */
  {
    name: "deadline-sweep",
    handler: "functions/cron/sweep.ts",
    everySeconds: setting("COORD_SWEEP_SECONDS"),
  },
  /**
   * Settlement (core/settlement/anchoring.ts): seals due batches, anchors pending ones, re-checks anchored ones
   * against the chain. Same period as the sweep (a minute on AWS), so a batch's age is checked that often.
   */
  {
    name: "settlement",
    handler: "functions/cron/settlement.ts",
    everySeconds: setting("COORD_SWEEP_SECONDS"),
  },
];

/**
 * Cron handlers and their schedules, defined once: `stacks/cron.ts` creates an EventBridge schedule for each and
 * `local/cron.ts` runs each on the same period. `handler` is a module under functions/cron exporting `handler`.
 */
export interface Schedule {
  name: string;
  handler: string;
  everySeconds: number;
}

export const SCHEDULES: Schedule[] = [];

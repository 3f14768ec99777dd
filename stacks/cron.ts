import { SCHEDULES, type Schedule } from "../functions/cron/schedules.ts";
import { cronEntry, pascal } from "./entries.ts";
import { createFunction, type FunctionContext } from "./functions.ts";

/** EventBridge Scheduler's finest rate is one minute: shorter periods are rounded up to it. */
export function rateExpression(everySeconds: number): `rate(${string})` {
  const minutes = Math.max(1, Math.ceil(everySeconds / 60));
  return `rate(${minutes} ${minutes === 1 ? "minute" : "minutes"})`;
}

/** A run should end before the next one starts; Lambda's ceiling is 15 minutes. */
function timeoutSeconds(schedule: Schedule): number {
  const periodSeconds = Math.max(1, Math.ceil(schedule.everySeconds / 60)) * 60;
  return Math.min(900, Math.max(10, periodSeconds - 5));
}

/**
 * One scheduled function per entry of functions/cron/schedules.ts (the local stack runs the same table). Sweeps are
 * idempotent backstops: a failed run is not retried (neither by the scheduler nor by Lambda's async retries), the
 * next tick is the retry.
 */
export function createCrons(context: FunctionContext): sst.aws.Function[] {
  return SCHEDULES.map((schedule) => {
    const rate = rateExpression(schedule.everySeconds);
    const fn = createFunction(cronEntry(schedule), context, {
      description: `Cron ${schedule.name}, ${rate}`,
      memory: "512 MB",
      timeout: `${timeoutSeconds(schedule)} seconds`,
      retries: 0,
    });
    new sst.aws.CronV2(`${pascal(schedule.name)}Schedule`, {
      function: fn,
      schedule: rate,
      retries: 0,
    });
    return fn;
  });
}

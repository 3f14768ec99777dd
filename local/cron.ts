import type { Schedule } from "../functions/cron/schedules.ts";

type CronHandler = () => Promise<unknown>;

/** Runs each cron handler on its period, never two runs of one schedule at once (like a reserved-concurrency 1 Lambda). */
export function startCron(
  entries: { schedule: Schedule; handler: CronHandler }[],
  onError: (name: string, err: unknown) => void,
): () => Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  const inflight = new Set<Promise<unknown>>();
  for (const { schedule, handler } of entries) {
    let busy = false;
    timers.push(
      setInterval(() => {
        if (busy) return;
        busy = true;
        const run = handler()
          .catch((err) => onError(schedule.name, err))
          .finally(() => {
            busy = false;
            inflight.delete(run);
          });
        inflight.add(run);
      }, schedule.everySeconds * 1000),
    );
  }
  return async () => {
    for (const t of timers) clearInterval(t);
    await Promise.allSettled([...inflight]);
  };
}

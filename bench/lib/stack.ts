import { cpus, loadavg } from "node:os";
import { type LocalStack, startLocalStack } from "../../local/stack.ts";
import * as instrument from "./instrument.ts";
import { progress } from "./stats.ts";

/** The local stack in this process (ephemeral, random port): the handlers run here, so they can be measured. */
export async function startStack(): Promise<LocalStack> {
  progress("starting the local stack (DynamoDB Local, fauxqs, pollers, API)...");
  const started = performance.now();
  instrument.install();
  // The cron timers start here, so the sweep's work is attributed to it (the pollers name their own).
  const stack = await instrument.asBackground("sweep (cron)", () =>
    startLocalStack({
      ephemeral: true,
      port: 0,
      onError: (where, err) => process.stderr.write(`[stack:${where}] ${String(err)}\n`),
    }),
  );
  instrument.setApiPort(stack.port);
  progress(`stack up at ${stack.url} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return stack;
}

/** What ran where: results on a shared or busy machine are not comparable with a quiet one. */
export function machineLine(): string {
  const cpu = cpus();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  return `Node ${process.version}, ${cpu.length} CPU(s) (${cpu[0]?.model ?? "?"}), load average ${load}, ${new Date().toISOString()}`;
}

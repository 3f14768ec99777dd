import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { type LocalStack, startLocalStack } from "../../local/stack.ts";
import { readArgs } from "./args.ts";
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

/**
 * Runs one benchmark as a command (when `moduleUrl` is the entry point): a local stack, the benchmark, its printout,
 * optional `--json` output, and the stack stopped whatever happens.
 */
export function benchMain<R>(
  moduleUrl: string,
  name: string,
  run: (stack: Awaited<ReturnType<typeof startStack>>, args: ReturnType<typeof readArgs>) => Promise<R>,
  print: (result: R) => void,
): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? "").href) return;
  const main = async () => {
    const args = readArgs();
    console.log(machineLine());
    const stack = await startStack();
    try {
      const result = await run(stack, args);
      print(result);
      if (args.json) writeFileSync(args.json, JSON.stringify({ [name]: result }, null, 2));
    } finally {
      instrument.uninstall();
      await stack.stop();
    }
  };
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

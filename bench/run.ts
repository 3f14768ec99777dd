import "./env.ts";
import { writeFileSync } from "node:fs";
import { type BaselineOptions, printBaseline, runBaseline } from "./http-baseline.ts";
import { numArg, readArgs } from "./lib/args.ts";
import * as instrument from "./lib/instrument.ts";
import { machineLine, startStack } from "./lib/stack.ts";
import { progress } from "./lib/stats.ts";
import { lifecycleOptions, printLifecycle, runLifecycle } from "./lifecycle.ts";

/**
 * `npm run bench`: the HTTP baseline, then the job lifecycle and idle fleet, on one in-process local stack. The
 * defaults are small (about a minute and a half on 2 cores); the flags scale them up (`--help`).
 */
async function main() {
  const args = readArgs();
  const only = args.only;
  if (only && only !== "baseline" && only !== "lifecycle") throw new Error("--only is baseline or lifecycle");
  const baseline: BaselineOptions = {
    concurrency: numArg(args.concurrency, 32, "concurrency"),
    seconds: numArg(args.seconds, 3, "seconds"),
    requests: args.requests === undefined ? undefined : numArg(args.requests, 0, "requests"),
  };
  // Small defaults, so that the whole run takes about a minute and a half on 2 cores; flags scale it up.
  const lifecycle = lifecycleOptions(args, {
    jobs: 150,
    miners: 10,
    maxSeconds: 30,
    serialJobs: 10,
    idleSeconds: 6,
    idleWaitSeconds: 3,
  });

  console.log(`Coordinator benchmarks: ${machineLine()}`);
  const started = performance.now();
  const stack = await startStack();
  const out: Record<string, unknown> = {};
  try {
    if (only !== "lifecycle") {
      const result = await runBaseline(stack, baseline);
      printBaseline(result);
      out.baseline = result;
    }
    if (only !== "baseline") {
      const result = await runLifecycle(stack, lifecycle);
      printLifecycle(result);
      out.lifecycle = result;
    }
  } finally {
    instrument.uninstall();
    await stack.stop();
  }
  console.log(`\nFinished: ${machineLine()}`);
  if (args.json) writeFileSync(args.json, JSON.stringify(out, null, 2));
  progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

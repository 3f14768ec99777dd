import { parseArgs } from "node:util";

/** Every benchmark flag (bench/run.ts passes them all to both benchmarks). */
export const FLAGS = {
  concurrency: { type: "string", short: "c" },
  seconds: { type: "string", short: "t" },
  requests: { type: "string", short: "n" },
  jobs: { type: "string" },
  miners: { type: "string" },
  "miner-slots": { type: "string" },
  clients: { type: "string" },
  inflight: { type: "string" },
  "wait-seconds": { type: "string" },
  "max-seconds": { type: "string" },
  "serial-jobs": { type: "string" },
  "idle-seconds": { type: "string" },
  "idle-wait-seconds": { type: "string" },
  only: { type: "string" },
  json: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const USAGE = `Benchmarks against the in-process local stack (DynamoDB Local + fauxqs); figures go to stdout, progress to stderr.

  npx tsx bench/run.ts [flags]             both benchmarks (npm run bench)
  npx tsx bench/http-baseline.ts [flags]   HTTP baseline only
  npx tsx bench/lifecycle.ts [flags]       job lifecycle + idle fleet only

HTTP baseline
  -c, --concurrency N      requests in flight (default 32)
  -t, --seconds S          seconds per route (default 5; bench/run.ts: 3)
  -n, --requests N         requests per route instead of a duration
Lifecycle
  --jobs K                 echo jobs to drive (default 500; bench/run.ts: 150)
  --miners N               simulated miners (default 20; bench/run.ts: 10)
  --miner-slots S          concurrency of each miner (default 2)
  --clients M              clients submitting (default 4)
  --inflight I             jobs each client keeps in flight (default 8)
  --wait-seconds W         miners' poll wait_seconds while jobs flow (default 2)
  --max-seconds S          stop submitting after S seconds (default: no limit; bench/run.ts: 30)
  --serial-jobs J          jobs of the one-at-a-time pass (default 20; bench/run.ts: 10)
  --idle-seconds S         length of each idle-fleet measurement (default 10; bench/run.ts: 6)
  --idle-wait-seconds W    wait_seconds of the idle long-poll measurement (default 5; bench/run.ts: 3)
Both
  --only baseline|lifecycle  (bench/run.ts) run one of them
  --json FILE              also write the raw results as JSON
`;

export type Args = ReturnType<typeof readArgs>;

export function readArgs(argv = process.argv.slice(2)) {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  return values;
}

/** A positive number flag, or the fallback. */
export function numArg(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${raw}`);
  return n;
}

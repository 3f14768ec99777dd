import { assertPortFree } from "./ports.ts";
import { type LocalStack, startLocalStack } from "./stack.ts";

export interface RunOptions {
  port: number;
  host: string;
  ephemeral: boolean;
  dataDir?: string;
  adminKey?: string;
  /** Print one JSON line instead of the human banner. */
  json?: boolean;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

/**
 * What `npm start` and `coord start` do: refuse a taken port, start the stack, print the URL and the bootstrap admin
 * key, and stop every child process on Ctrl-C/SIGTERM before exiting.
 */
export async function runLocalStack(opts: RunOptions): Promise<LocalStack> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = opts.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const started = performance.now();
  await assertPortFree(opts.port);
  // `npm start` and `coord start`: a Prometheus on this machine scrapes GET /metrics without a key (docs/observability.md).
  process.env.COORD_METRICS_LOOPBACK ??= "1";
  const stack = await startLocalStack(opts);
  const data = opts.ephemeral ? "in memory (COORD_EPHEMERAL=1)" : (opts.dataDir ?? ".coord/");
  if (opts.json) {
    out(
      JSON.stringify({
        url: stack.url,
        api: `${stack.url}/v1`,
        admin_key: stack.adminKey,
        data,
        chain_rpc_url: stack.chain.rpcUrl ?? null,
      }),
    );
  } else {
    out(`Coordinator is up in ${((performance.now() - started) / 1000).toFixed(1)}s`);
    out(`  API:        ${stack.url}/v1  (health: ${stack.url}/v1/health)`);
    out(`  Admin key:  ${stack.adminKey}`);
    out(`  Data:       ${data}`);
    out(`  Chain:      ${stack.chain.rpcUrl ?? "none (settlement seals batches, anchors nothing)"}`);
    out("Press Ctrl-C to stop.");
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    err(`\n${signal}: stopping...`);
    void stack.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  return stack;
}

/** The options from the environment (README: Configuration). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): RunOptions {
  return {
    port: Number(env.PORT ?? 3000),
    host: env.HOST ?? "127.0.0.1",
    ephemeral: env.COORD_EPHEMERAL === "1",
    dataDir: env.COORD_DATA_DIR,
    adminKey: env.COORD_BOOTSTRAP_ADMIN_KEY,
  };
}

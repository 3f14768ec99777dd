import { type Command, num, printJson } from "../command.ts";

/**
 * `coord start`: the local stack in this process, exactly as `npm start` (local/main.ts) brings it up: same
 * environment variables, same defaults, Ctrl-C stops every child process.
 */
const start: Command = {
  name: "start",
  summary: "Run the whole coordinator locally (same as npm start)",
  details: [
    "Starts DynamoDB Local, the SQS emulator, the local bus, the pollers and the API on PORT (default 3000) and",
    "prints the URL and a bootstrap admin key. Environment: PORT, HOST, COORD_EPHEMERAL=1 (keep data in memory),",
    "COORD_DATA_DIR (default .coord/), COORD_BOOTSTRAP_ADMIN_KEY, COORD_LEASE_SECONDS, COORD_HEARTBEAT_SECONDS...",
    "With --json one line {url, admin_key, ...} is printed once the stack is up.",
  ].join("\n"),
  options: {
    port: { type: "string", value: "N", description: "Port (default: PORT or 3000)" },
    host: { type: "string", value: "H", description: "Interface to listen on (default: HOST or 127.0.0.1)" },
    ephemeral: { type: "boolean", description: "Keep data in memory only (COORD_EPHEMERAL=1)" },
  },
  examples: ["coord start", "coord start --port 3100 --ephemeral"],
  async run(ctx) {
    const started = performance.now();
    const env = ctx.io.env;
    const port = num(ctx.opts, "port") ?? Number(env.PORT ?? 3000);
    const ephemeral = ctx.opts.ephemeral === true || env.COORD_EPHEMERAL === "1";
    const { assertPortFree } = await import("../../local/ports.ts");
    const { startLocalStack } = await import("../../local/stack.ts");
    await assertPortFree(port);
    const stack = await startLocalStack({
      port,
      host: typeof ctx.opts.host === "string" ? ctx.opts.host : (env.HOST ?? "127.0.0.1"),
      ephemeral,
      dataDir: env.COORD_DATA_DIR,
      adminKey: env.COORD_BOOTSTRAP_ADMIN_KEY,
    });
    const data = ephemeral ? "memory" : (env.COORD_DATA_DIR ?? ".coord/");
    if (ctx.json) {
      printJson(ctx.io, { url: stack.url, api: `${stack.url}/v1`, admin_key: stack.adminKey, data });
    } else {
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      ctx.io.stdout(`Coordinator is up in ${secs}s\n`);
      ctx.io.stdout(`  API:        ${stack.url}/v1  (health: ${stack.url}/v1/health)\n`);
      ctx.io.stdout(`  Admin key:  ${stack.adminKey}\n`);
      ctx.io.stdout(`  Data:       ${ephemeral ? "in memory (COORD_EPHEMERAL=1)" : data}\n`);
      ctx.io.stdout("Press Ctrl-C to stop.\n");
    }
    await new Promise<never>(() => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        ctx.io.stderr(`\n${signal}: stopping...\n`);
        // Like npm start: once every child process is stopped, exit (nothing else should keep us alive).
        void stack.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", () => shutdown("SIGINT"));
      process.once("SIGTERM", () => shutdown("SIGTERM"));
    });
  },
};

export const startCommands: Command[] = [start];

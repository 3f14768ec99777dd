import { type Command, num } from "../command.ts";

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
    const { optionsFromEnv, runLocalStack } = await import("../../local/run.ts");
    const env = optionsFromEnv(ctx.io.env);
    await runLocalStack({
      ...env,
      port: num(ctx.opts, "port") ?? env.port,
      host: typeof ctx.opts.host === "string" ? ctx.opts.host : env.host,
      ephemeral: ctx.opts.ephemeral === true || env.ephemeral,
      json: ctx.json,
      out: (line) => ctx.io.stdout(`${line}\n`),
      err: (line) => ctx.io.stderr(`${line}\n`),
    });
    // Runs until a signal stops the stack (runLocalStack exits the process then).
    await new Promise<never>(() => {});
  },
};

export const startCommands: Command[] = [start];

import { assertPortFree } from "./ports.ts";
import { startLocalStack } from "./stack.ts";

/** `npm start`: the whole stack on PORT (default 3000). Ctrl-C / SIGTERM stops every child process. */
async function main() {
  const started = performance.now();
  const port = Number(process.env.PORT ?? 3000);
  const ephemeral = process.env.COORD_EPHEMERAL === "1";
  await assertPortFree(port);
  const stack = await startLocalStack({
    port,
    host: process.env.HOST ?? "127.0.0.1",
    ephemeral,
    dataDir: process.env.COORD_DATA_DIR,
    adminKey: process.env.COORD_BOOTSTRAP_ADMIN_KEY,
  });
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`Coordinator is up in ${secs}s`);
  console.log(`  API:        ${stack.url}/v1  (health: ${stack.url}/v1/health)`);
  console.log(`  Admin key:  ${stack.adminKey}`);
  console.log(
    `  Data:       ${ephemeral ? "in memory (COORD_EPHEMERAL=1)" : (process.env.COORD_DATA_DIR ?? ".coord/")}`,
  );
  console.log("Press Ctrl-C to stop.");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping...`);
    await stack.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((err: Error) => {
  console.error(`coordinator failed to start: ${err.message}`);
  process.exit(1);
});

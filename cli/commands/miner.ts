import { existsSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  type Command,
  csv,
  list,
  num,
  printFields,
  printJson,
  type RunContext,
  str,
  UsageError,
} from "../command.ts";
import { type Gpu, jsonLogger, runMiner, type Transport } from "../miner/agent.ts";
import { defaultExecutors, type Executor } from "../miner/executors.ts";
import { detectGpus } from "../miner/gpus.ts";
import { RUNNERS, runnerOf, runnerOptions } from "../miner/runners/index.ts";
import { MinerSigner, writeNewKeyFile } from "../miner/signing.ts";
import { configDir } from "../profile.ts";

/** `MODEL:VRAM_MB[:COUNT]`, e.g. `RTX 4090:24576` or `A100 80GB:81920:8`. */
export function parseGpu(raw: string): Gpu {
  const parts = raw.split(":");
  const count = parts.length >= 3 && /^\d+$/.test(parts.at(-1) ?? "") ? Number(parts.pop()) : undefined;
  const vram = parts.pop() ?? "";
  const model = parts.join(":").trim();
  if (!model || !/^\d+$/.test(vram)) {
    throw new UsageError(`--gpu '${raw}' must look like MODEL:VRAM_MB[:COUNT], e.g. "RTX 4090:24576"`);
  }
  return { model, vram_mb: Number(vram), ...(count !== undefined ? { count } : {}) };
}

/** The shipped runner of each service asked for that has one; one missing its configuration is a usage error. */
function runnersFor(services: string[], ctx: RunContext): Record<string, Executor> {
  const out: Record<string, Executor> = {};
  for (const s of services) {
    const config = { opts: ctx.opts, env: ctx.io.env };
    const made = runnerOf(s, config)?.make(config, s);
    if (typeof made === "string") throw new UsageError(made);
    if (made) out[s] = made;
  }
  return out;
}

/** `service=N` pairs into a price map. */
export function parsePrices(raw: string[]): Record<string, number> {
  const prices: Record<string, number> = {};
  for (const p of raw) {
    const m = /^([^=]+)=(\d+)$/.exec(p);
    if (!m?.[1] || !m[2])
      throw new UsageError(`--price '${p}' must look like SERVICE=N (micro-credits per unit)`);
    prices[m[1].trim()] = Number(m[2]);
  }
  return prices;
}

/** The miner's signing key: the file named, else this miner name's own under the config directory (made once). */
function signerFor(ctx: RunContext, name: string): MinerSigner {
  const named = str(ctx.opts, "signing-key") ?? ctx.io.env.COORD_MINER_SIGNING_KEY;
  try {
    if (named) return MinerSigner.fromFile(named);
    const dir = join(configDir(ctx.io.env), "miners");
    const path = join(dir, `${name}.key`);
    if (existsSync(path)) return MinerSigner.fromFile(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    ctx.io.stderr(`created the signing key ${path}\n`);
    return writeNewKeyFile(path);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const keygen: Command = {
  name: "miner keygen",
  summary: "Create an Ed25519 signing key for a miner (the raw seed, base64url, mode 0600)",
  args: ["<file>"],
  details:
    "coord miner run --signing-key FILE registers its public key (proving it holds the private one) and co-signs every result with it; receipts then carry the miner's signature beside the coordinator's. Refuses to overwrite a file.",
  examples: ["coord miner keygen ~/.config/coord/miners/rig-1.key"],
  async run(ctx) {
    const [file] = ctx.args;
    let signer: MinerSigner;
    try {
      signer = writeNewKeyFile(file as string);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (ctx.json) printJson(ctx.io, { file, public_key: signer.publicKey });
    else printFields(ctx.io, { file, public_key: signer.publicKey });
  },
};

/** `--transport`: `ws` (the doorbell, with the HTTP long-poll whenever the socket is down) or `poll` (HTTP only). */
export function parseTransport(raw: string | undefined): Transport {
  if (raw === undefined || raw === "ws") return "ws";
  if (raw === "poll") return "poll";
  throw new UsageError(`--transport '${raw}' must be ws or poll`);
}

const defaultName = () =>
  hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .slice(0, 100) || "miner";

const run: Command = {
  name: "miner run",
  summary: "Run the reference miner agent (miner key): register, poll, execute, heartbeat, drain on Ctrl-C",
  details: [
    "Registers under --name (re-registering a name updates that miner), then waits for work and runs up to",
    "--concurrency jobs at once. A heartbeat every heartbeat_interval_seconds (the coordinator's) renews the leases",
    "of the jobs it holds; a job the coordinator names to stop (cancelled, timed out, lease lost) is aborted and",
    "its result never sent. Ctrl-C or SIGTERM drains: no new work, in-flight jobs finish, exit 0; a second signal",
    "exits at once (130). Logs are JSON lines on stderr; the summary goes to stdout when the agent stops.",
    "",
    "--transport ws (the default) opens the doorbell WebSocket: heartbeats, work rings and stop orders travel on it,",
    "and the agent polls (without waiting) only when rung. Whenever the socket cannot open or drops, the agent",
    "long-polls and heartbeats over HTTP at once and reconnects in the background (backoff 1-30 s, full jitter);",
    "jobs it holds keep running across the switch. A refused upgrade (401/403/404) is not retried.",
    "--transport poll: the HTTP long-poll and heartbeats only.",
    "",
    "Runners (cli/miner/runners), each with its own flags below:",
    ...RUNNERS.map((r) => `  ${r.name}: ${r.summary}`),
    "  echo: output = input (input.sleep_ms waits first; input.fail {code,message,retryable} reports that failure)",
    "Jobs of other services fail with unsupported_service.",
  ].join("\n"),
  auth: true,
  options: {
    name: { type: "string", value: "N", description: "Miner name (default: this host's name)" },
    services: { type: "string", value: "A,B", description: "Services to run (default: echo)" },
    concurrency: { type: "string", value: "N", description: "Jobs at once, 1-64 (default 1)" },
    region: { type: "string", value: "R", description: "Region, e.g. eu-west (jobs can require it)" },
    gpu: {
      type: "string",
      multiple: true,
      value: "MODEL:MB",
      description: 'A GPU, e.g. "RTX 4090:24576"; repeat (default: what nvidia-smi reports)',
    },
    price: {
      type: "string",
      multiple: true,
      value: "SVC=N",
      description: "Unit price for a service; repeat",
    },
    "cuda-version": { type: "string", value: "V", description: "CUDA version, e.g. 12.4" },
    models: { type: "string", value: "A,B", description: "Models this miner has loaded" },
    pool: { type: "string", value: "P", description: "Join a private pool" },
    once: { type: "boolean", description: "Poll once, run what it brings, then drain and exit" },
    "max-jobs": { type: "string", value: "N", description: "Exit (after draining) once N jobs were claimed" },
    "wait-seconds": { type: "string", value: "S", description: "Long-poll wait, 0-20 (default 20)" },
    transport: {
      type: "string",
      value: "ws|poll",
      description: "ws: doorbell socket, HTTP long-poll while it is down; poll: HTTP only (default ws)",
    },
    ...runnerOptions(),
    "signing-key": {
      type: "string",
      value: "FILE",
      description:
        "Ed25519 key to register and co-sign results with (env COORD_MINER_SIGNING_KEY; default $XDG_CONFIG_HOME/coord/miners/NAME.key, created on first run)",
    },
    unsigned: { type: "boolean", description: "Register no key and co-sign nothing" },
    verbose: { type: "boolean", short: "v", description: "Also log polls, progress and heartbeats" },
  },
  examples: [
    "coord miner run --name rig-1 --services echo --concurrency 4 --region eu-west",
    'coord miner run --name rig-2 --services echo --gpu "RTX 4090:24576" --price echo=50 --once',
    "coord miner run --name rig-3 --services echo --transport poll",
  ],
  async run(ctx) {
    const controller = new AbortController();
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        ctx.io.stderr(`${sig} again: exiting without finishing in-flight jobs\n`);
        process.exit(130);
      }
      ctx.io.stderr(`${sig}: draining (finishing in-flight jobs; ${sig} again to exit now)\n`);
      controller.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      const maxJobs = num(ctx.opts, "max-jobs");
      if (maxJobs !== undefined && (!Number.isInteger(maxJobs) || maxJobs < 1))
        throw new UsageError("--max-jobs must be a whole number of at least 1");
      const transport = parseTransport(str(ctx.opts, "transport"));
      const models = str(ctx.opts, "models");
      const services = csv(str(ctx.opts, "services") ?? "echo");
      // Before registering: a runner without its configuration is a usage error, not a miner that fails jobs.
      const executors = runnersFor(services, ctx);
      // GPUs as declared, or as the driver reports them.
      const declared = list(ctx.opts, "gpu").map(parseGpu);
      const detected =
        declared.length > 0 ? undefined : await detectGpus(ctx.io.env.COORD_NVIDIA_SMI ?? "nvidia-smi");
      if (detected?.gpus.length)
        ctx.io.stderr(
          `detected GPUs: ${detected.gpus.map((g) => `${g.count ?? 1} x ${g.model} (${g.vram_mb} MiB)`).join(", ")}\n`,
        );
      const name = str(ctx.opts, "name") ?? defaultName();
      const signer = ctx.opts.unsigned === true ? undefined : signerFor(ctx, name);
      if (signer) ctx.io.stderr(`co-signing results with the Ed25519 key ${signer.publicKey}\n`);
      const summary = await runMiner({
        url: ctx.url,
        key: ctx.key ?? "",
        name,
        signer,
        services,
        // echo, and the shipped runner of each service asked for (cli/miner/runners).
        executors: { ...defaultExecutors, ...executors },
        concurrency: num(ctx.opts, "concurrency", "body.concurrency"),
        region: str(ctx.opts, "region"),
        gpus: declared.length > 0 ? declared : (detected?.gpus ?? []),
        prices: parsePrices(list(ctx.opts, "price")),
        registration: {
          ...(str(ctx.opts, "cuda-version") ? { cuda_version: str(ctx.opts, "cuda-version") } : {}),
          ...(detected?.driverVersion ? { driver_version: detected.driverVersion } : {}),
          ...(models ? { models: csv(models) } : {}),
          ...(str(ctx.opts, "pool") ? { pool: str(ctx.opts, "pool") } : {}),
        },
        once: ctx.opts.once === true,
        maxJobs,
        waitSeconds: num(ctx.opts, "wait-seconds", "body.wait_seconds"),
        transport,
        signal: controller.signal,
        log: jsonLogger(ctx.opts.verbose === true ? "debug" : "info", (line) => ctx.io.stderr(line)),
      });
      if (ctx.json) printJson(ctx.io, summary);
      else printFields(ctx.io, { ...summary });
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
};

export const minerCommands: Command[] = [run, keygen];

/**
 * `coord`: the command-line face of the coordinator. Parses argv with node:util parseArgs, finds the command by its
 * words (`jobs submit`, `admin accounts create`...), resolves the URL and key (flag > environment > profile >
 * default: cli/profile.ts), and maps every failure to a message on stderr and exit 1.
 */
import { parseArgs } from "node:util";
import { type Command, type IO, type OptionSpec, type OptionValues, UsageError } from "./command.ts";
import { accountCommands } from "./commands/account.ts";
import { adminCommands } from "./commands/admin.ts";
import { artifactCommands } from "./commands/artifacts.ts";
import { configCommands } from "./commands/config.ts";
import { jobCommands } from "./commands/jobs.ts";
import { minerCommands } from "./commands/miner.ts";
import { receiptCommands } from "./commands/receipts.ts";
import { serviceCommands } from "./commands/services.ts";
import { startCommands } from "./commands/start.ts";
import { completionScript, SHELLS, type Shell } from "./completion.ts";
import { Api, ApiError, DEFAULT_URL, describeProblem } from "./http.ts";
import { ConfigError, configPath, readConfig, resolveSettings } from "./profile.ts";

export const GLOBAL: Record<string, OptionSpec> = {
  url: {
    type: "string",
    value: "URL",
    description: `Coordinator URL (COORD_URL, the profile's url; default ${DEFAULT_URL})`,
  },
  key: { type: "string", value: "KEY", description: "API key (COORD_API_KEY, the profile's key)" },
  profile: {
    type: "string",
    value: "NAME",
    description: "Profile of the config file to use (COORD_PROFILE; default: its default_profile)",
  },
  json: { type: "boolean", description: "Machine-readable JSON on stdout" },
  help: { type: "boolean", short: "h", description: "Show help" },
};

const completion: Command = {
  name: "completion",
  summary: "Print a shell completion script (bash, zsh or fish), generated from the command table",
  args: ["<shell>"],
  choices: [...SHELLS],
  local: true,
  details: [
    "Completes command words, each command's options (and the global ones), files where a file is expected.",
    "Generated from the commands themselves, so it always matches this coord.",
  ].join("\n"),
  examples: [
    "source <(coord completion bash)                 # bash, this session (add it to ~/.bashrc to keep it)",
    "coord completion zsh > ~/.zsh/completions/_coord   # zsh: a directory on $fpath",
    "coord completion fish > ~/.config/fish/completions/coord.fish",
  ],
  async run(ctx) {
    const [shell = ""] = ctx.args;
    if (!(SHELLS as readonly string[]).includes(shell))
      throw new UsageError(`no completion for '${shell}': give one of ${SHELLS.join(", ")}`);
    ctx.io.stdout(completionScript(shell as Shell, COMMANDS, GLOBAL));
  },
};

export const COMMANDS: Command[] = [
  ...startCommands,
  ...jobCommands,
  ...artifactCommands,
  ...serviceCommands,
  ...accountCommands,
  ...receiptCommands,
  ...adminCommands,
  ...minerCommands,
  ...configCommands,
  completion,
];

/** Every option of every command, for one parseArgs pass; a name means the same thing wherever it appears. */
function allOptions(): Record<string, OptionSpec> {
  const merged: Record<string, OptionSpec> = { ...GLOBAL };
  for (const cmd of COMMANDS) {
    for (const [name, spec] of Object.entries(cmd.options ?? {})) {
      const seen = merged[name];
      if (
        seen &&
        (seen.type !== spec.type || !!seen.multiple !== !!spec.multiple || seen.short !== spec.short)
      )
        throw new Error(`option --${name} is declared differently by two commands`);
      merged[name] = spec;
    }
  }
  return merged;
}

const usageOf = (cmd: Command) =>
  `coord ${cmd.name}${(cmd.args ?? []).map((a) => ` ${a}`).join("")}${Object.keys(cmd.options ?? {}).length ? " [options]" : ""}`;

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, spec]) => [
    `${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : ""}`,
    `${spec.description}${spec.multiple ? " (repeatable)" : ""}`,
  ]);
  const width = Math.max(0, ...rows.map(([l]) => (l ?? "").length));
  return rows.map(([l, r]) => `  ${(l ?? "").padEnd(width)}  ${r}`);
}

export function commandHelp(cmd: Command): string {
  const lines = [`${usageOf(cmd)}`, "", cmd.summary];
  if (cmd.details) lines.push("", cmd.details);
  if (cmd.options && Object.keys(cmd.options).length) lines.push("", "Options:", ...optionLines(cmd.options));
  lines.push("", "Global options:", ...optionLines(GLOBAL));
  if (cmd.examples?.length) lines.push("", "Examples:", ...cmd.examples.map((e) => `  ${e}`));
  return `${lines.join("\n")}\n`;
}

export function generalHelp(prefix = ""): string {
  const cmds = COMMANDS.filter((c) => !prefix || c.name === prefix || c.name.startsWith(`${prefix} `));
  const width = Math.max(...cmds.map((c) => usageOf(c).length));
  const lines = [
    "coord: the Coordinator command line (local stack, jobs, services, account, admin, reference miner)",
    "",
    "Usage: coord <command> [args] [options]    coord <command> --help    coord help <command>",
    "",
    "Commands:",
    ...cmds.map((c) => `  ${usageOf(c).padEnd(width)}  ${c.summary}`),
    "",
    "Global options:",
    ...optionLines(GLOBAL),
    "",
    "Configuration: --url / COORD_URL, --key / COORD_API_KEY, else the profile (--profile / COORD_PROFILE) of",
    "~/.config/coord/config.json (coord config set). Errors go to stderr with exit status 1.",
  ];
  return `${lines.join("\n")}\n`;
}

/** The longest run of leading words that names a command (`admin accounts create` before `admin`). */
function findCommand(words: string[]): { cmd?: Command; used: number } {
  for (let n = Math.min(3, words.length); n > 0; n--) {
    const name = words.slice(0, n).join(" ");
    const cmd = COMMANDS.find((c) => c.name === name);
    if (cmd) return { cmd, used: n };
  }
  return { used: 0 };
}

const isGroup = (word: string | undefined) => !!word && COMMANDS.some((c) => c.name.startsWith(`${word} `));

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const processIO: IO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
  stdin: readStdin,
  get isTTY() {
    return process.stderr.isTTY === true;
  },
  get columns() {
    return process.stderr.columns;
  },
};

function networkCause(err: unknown): string | undefined {
  if (!(err instanceof TypeError) || err.message !== "fetch failed") return undefined;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? "network error";
}

/** Runs `coord` with these arguments; resolves with the exit status. Never throws. */
export async function main(argv: string[], io: IO = processIO): Promise<number> {
  let json = argv.includes("--json");
  let cmd: Command | undefined;
  let url = DEFAULT_URL;
  try {
    let parsed: { values: OptionValues; positionals: string[] };
    try {
      parsed = parseArgs({
        args: argv,
        options: allOptions(),
        allowPositionals: true,
        strict: true,
      }) as never;
    } catch (err) {
      throw new UsageError(
        (err as Error).message,
        findCommand(argv.filter((a) => !a.startsWith("-"))).cmd?.name,
      );
    }
    const { values, positionals } = parsed;
    json = values.json === true;

    if (positionals.length === 0 || positionals[0] === "help") {
      if (positionals.length === 0 && values.help !== true) {
        io.stderr(generalHelp());
        return 1;
      }
      const rest = positionals.slice(1);
      const found = findCommand(rest);
      if (found.cmd && found.used === rest.length) io.stdout(commandHelp(found.cmd));
      else if (rest.length && isGroup(rest[0])) io.stdout(generalHelp(rest.join(" ")));
      else if (rest.length) throw new UsageError(`unknown command '${rest.join(" ")}'`);
      else io.stdout(generalHelp());
      return 0;
    }

    const found = findCommand(positionals);
    cmd = found.cmd;
    if (!cmd) {
      if (isGroup(positionals[0])) {
        if (values.help === true) {
          io.stdout(generalHelp(positionals[0]));
          return 0;
        }
        io.stderr(generalHelp(positionals[0]));
        return 1;
      }
      throw new UsageError(`unknown command '${positionals.join(" ")}'; see coord help`);
    }
    if (values.help === true) {
      io.stdout(commandHelp(cmd));
      return 0;
    }

    const allowed = new Set([...Object.keys(GLOBAL), ...Object.keys(cmd.options ?? {})]);
    for (const [name, value] of Object.entries(values)) {
      if (value !== undefined && !allowed.has(name))
        throw new UsageError(`coord ${cmd.name} takes no --${name}`);
    }
    const args = positionals.slice(found.used);
    const specs = cmd.args ?? [];
    const required = specs.filter((a) => a.startsWith("<")).length;
    if (args.length < required)
      throw new UsageError(`missing ${specs.slice(args.length, required).join(" ")}`);
    if (args.length > specs.length) throw new UsageError(`unexpected argument '${args[specs.length]}'`);

    const path = configPath(io.env);
    const settings = resolveSettings({
      flags: {
        url: typeof values.url === "string" ? values.url : undefined,
        key: typeof values.key === "string" ? values.key : undefined,
        profile: typeof values.profile === "string" ? values.profile : undefined,
      },
      env: io.env,
      path,
      config: cmd.local ? undefined : readConfig(path),
      allowNewProfile: cmd.newProfile === true || cmd.local === true,
    });
    url = settings.url;
    const key = settings.key;
    if (cmd.auth && !key)
      throw new UsageError(
        "this command needs an API key: --key, COORD_API_KEY or a profile's key (coord config set --key ...)",
      );
    const api = new Api({ url, key, fetch: io.fetch });
    const code = await cmd.run({ args, opts: values, json, io, api, url, key, settings });
    return typeof code === "number" ? code : 0;
  } catch (err) {
    if (err instanceof ApiError) {
      if (json) io.stderr(`${JSON.stringify({ status: err.status, ...err.problem })}\n`);
      else io.stderr(`${describeProblem(err).join("\n")}\n`);
      return 1;
    }
    if (err instanceof ConfigError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError) {
      const where = err.command ?? cmd?.name;
      io.stderr(`error: ${err.message}\n${where ? `see: coord ${where} --help\n` : "see: coord help\n"}`);
      return 1;
    }
    const cause = networkCause(err);
    if (cause) {
      io.stderr(`error: cannot reach the coordinator at ${url} (${cause}); is it running? (coord start)\n`);
      return 1;
    }
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

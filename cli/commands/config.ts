import {
  type Command,
  printFields,
  printJson,
  printTable,
  type RunContext,
  str,
  UsageError,
} from "../command.ts";
import {
  type ConfigFile,
  maskKey,
  profileNameProblem,
  readableByOthers,
  readConfig,
  urlProblem,
  writeConfig,
} from "../profile.ts";

/** The profile a config command acts on: the one selected (--profile, COORD_PROFILE, default_profile), else `default`. */
function targetProfile(ctx: RunContext): string {
  const name = ctx.settings.profile ?? "default";
  const bad = profileNameProblem(name);
  if (bad) throw new UsageError(bad);
  return name;
}

function warnIfExposed(ctx: RunContext) {
  if (readableByOthers(ctx.settings.path))
    ctx.io.stderr(
      `warning: ${ctx.settings.path} holds API keys and others can read it: chmod 600 ${ctx.settings.path}\n`,
    );
}

const set: Command = {
  name: "config set",
  summary: "Save a coordinator URL and/or API key as a profile",
  newProfile: true,
  options: {
    default: { type: "boolean", description: "Also make this the default profile" },
  },
  details: [
    "Writes the profile named by --profile (or COORD_PROFILE, else the file's default profile, else 'default') in",
    "the config file ($COORD_CONFIG, else $XDG_CONFIG_HOME/coord/config.json, else ~/.config/coord/config.json),",
    "creating it with mode 0600 in a 0700 directory. Here --url and --key are what to save; what you leave out is",
    "kept. The first profile saved becomes the default. Commands then take the URL and key from the flag, else the",
    "environment (COORD_URL, COORD_API_KEY), else the profile.",
  ].join("\n"),
  examples: [
    "coord config set --url http://127.0.0.1:3000 --key ck_...",
    "coord config set --profile prod --url https://coord.example --key ck_... --default",
  ],
  async run(ctx) {
    const url = str(ctx.opts, "url");
    const key = str(ctx.opts, "key");
    if (url === undefined && key === undefined && ctx.opts.default !== true)
      throw new UsageError("give --url, --key or both (and --default to make the profile the default)");
    if (url !== undefined) {
      const bad = urlProblem(url);
      if (bad) throw new UsageError(`--url ${bad}`);
    }
    if (key !== undefined && !/^[\x21-\x7e]+$/.test(key))
      throw new UsageError("--key must be an API key (printable characters, no spaces)");
    const name = targetProfile(ctx);
    const path = ctx.settings.path;
    const config: ConfigFile = readConfig(path) ?? { profiles: {} };
    if (url === undefined && key === undefined && !config.profiles[name])
      throw new UsageError(
        `no profile '${name}' in ${path} to make the default: give --url or --key to create it`,
      );
    const profile = {
      ...config.profiles[name],
      ...(url !== undefined ? { url: url.replace(/\/+$/, "") } : {}),
      ...(key !== undefined ? { key } : {}),
    };
    const next: ConfigFile = {
      default_profile: ctx.opts.default === true || !config.default_profile ? name : config.default_profile,
      profiles: { ...config.profiles, [name]: profile },
    };
    writeConfig(path, next);
    const out = {
      path,
      profile: name,
      url: profile.url ?? null,
      key: maskKey(profile.key) ?? null,
      default: next.default_profile === name,
    };
    if (ctx.json) return printJson(ctx.io, out);
    ctx.io.stderr(`saved profile '${name}' in ${path}\n`);
    printFields(ctx.io, out);
  },
};

const show: Command = {
  name: "config show",
  summary:
    "The config file's profiles (keys masked) and the URL and key in effect, with where each comes from",
  examples: ["coord config show", "coord config show --profile prod --json"],
  async run(ctx) {
    const s = ctx.settings;
    const where = (source: string) =>
      source === "flag"
        ? "flag"
        : source === "env"
          ? "environment"
          : source === "profile"
            ? "profile"
            : "default";
    const profiles = Object.fromEntries(
      Object.entries(s.config?.profiles ?? {}).map(([name, p]) => [
        name,
        { url: p.url ?? null, key: maskKey(p.key) ?? null },
      ]),
    );
    if (ctx.json) {
      return printJson(ctx.io, {
        path: s.path,
        exists: s.config !== undefined,
        default_profile: s.config?.default_profile ?? null,
        profile: s.profile ?? null,
        profile_source: s.profileSource ?? null,
        url: s.url,
        url_source: s.urlSource,
        key: maskKey(s.key) ?? null,
        key_source: s.keySource,
        profiles,
      });
    }
    warnIfExposed(ctx);
    printFields(ctx.io, {
      file: `${s.path}${s.config ? "" : " (none yet: coord config set)"}`,
      profile: s.profile
        ? `${s.profile} (${s.profileSource === "default" ? "default_profile" : where(s.profileSource ?? "")})`
        : "-",
      url: `${s.url} (${where(s.urlSource)})`,
      key: s.key ? `${maskKey(s.key)} (${where(s.keySource)})` : "-",
    });
    const rows = Object.entries(profiles).map(([name, p]) => ({
      profile: name,
      url: p.url,
      key: p.key,
      default: s.config?.default_profile === name ? "yes" : "",
    }));
    if (rows.length) {
      ctx.io.stdout("\n");
      printTable(ctx.io, rows, ["profile", "url", "key", "default"]);
    }
  },
};

const use: Command = {
  name: "config use",
  summary: "Make a profile the default one",
  args: ["<profile>"],
  examples: ["coord config use prod"],
  async run(ctx) {
    const [name = ""] = ctx.args;
    const path = ctx.settings.path;
    const config = readConfig(path);
    if (!config)
      throw new UsageError(`there is no config file at ${path} yet: coord config set --profile ${name} ...`);
    if (!config.profiles[name]) {
      const known = Object.keys(config.profiles);
      throw new UsageError(
        `no profile '${name}' in ${path}${known.length ? ` (profiles: ${known.join(", ")})` : ""}`,
      );
    }
    writeConfig(path, { ...config, default_profile: name });
    if (ctx.json) return printJson(ctx.io, { path, default_profile: name });
    ctx.io.stdout(`default profile: ${name}\n`);
  },
};

export const configCommands: Command[] = [set, show, use];

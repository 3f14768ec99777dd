/**
 * Profiles: named coordinates (a coordinator URL and an API key) in one JSON file, so that `coord` needs neither
 * flags nor environment for the usual cases.
 *
 * ```json
 * {"default_profile": "local", "profiles": {"local": {"url": "http://127.0.0.1:3000", "key": "ck_..."}}}
 * ```
 *
 * The file is `$COORD_CONFIG`, else `$XDG_CONFIG_HOME/coord/config.json`, else `~/.config/coord/config.json`. The
 * profile is `--profile NAME`, else `$COORD_PROFILE`, else the file's `default_profile`. Each setting is taken from
 * the first of: its flag (`--url`, `--key`), its environment variable (`COORD_URL`, `COORD_API_KEY`), the profile,
 * the default (`DEFAULT_URL`; no key). The file holds keys, so it is written with mode 0600 in a 0700 directory.
 * Pure of the CLI: everything it reads comes in as arguments (the environment included), so that it can be tested.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULT_URL } from "./http.ts";

export interface Profile {
  url?: string;
  key?: string;
}

export interface ConfigFile {
  default_profile?: string;
  profiles: Record<string, Profile>;
}

/** Something wrong with the config file or the profile asked for; the message names the file. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Where the CLI keeps its files (this config, miner signing keys): $XDG_CONFIG_HOME/coord, or ~/.config/coord. */
export function configDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "coord");
}

/** Where the config file is, for this environment. */
export function configPath(env: NodeJS.ProcessEnv): string {
  return env.COORD_CONFIG || join(configDir(env), "config.json");
}

const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A profile name fit for the file and the command line, or why not. */
export function profileNameProblem(name: string): string | undefined {
  return PROFILE_NAME.test(name)
    ? undefined
    : `profile names are 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), not '${name}'`;
}

/** An http(s) URL, or why not. */
export function urlProblem(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol === "http:" || u.protocol === "https:") return undefined;
    return `must be an http or https URL, not ${u.protocol}`;
  } catch {
    return `must be an http or https URL, not '${raw}'`;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks a parsed config file; the problem (with the JSON path at fault) or the config. */
export function parseConfig(value: unknown): { config: ConfigFile } | { problem: string } {
  if (!isObj(value)) return { problem: "must be a JSON object" };
  for (const k of Object.keys(value))
    if (k !== "default_profile" && k !== "profiles")
      return { problem: `${k}: unknown field (the file holds default_profile and profiles)` };
  const profiles: Record<string, Profile> = {};
  if (value.profiles !== undefined) {
    if (!isObj(value.profiles)) return { problem: "profiles: must be an object of profiles by name" };
    for (const [name, p] of Object.entries(value.profiles)) {
      const nameProblem = profileNameProblem(name);
      if (nameProblem) return { problem: `profiles: ${nameProblem}` };
      if (!isObj(p)) return { problem: `profiles.${name}: must be an object {url, key}` };
      const profile: Profile = {};
      for (const [k, v] of Object.entries(p)) {
        if (k !== "url" && k !== "key") return { problem: `profiles.${name}.${k}: unknown field (url, key)` };
        if (typeof v !== "string" || v === "") return { problem: `profiles.${name}.${k}: must be a string` };
        if (k === "url") {
          const bad = urlProblem(v);
          if (bad) return { problem: `profiles.${name}.url: ${bad}` };
        }
        profile[k] = v;
      }
      profiles[name] = profile;
    }
  }
  const def = value.default_profile;
  if (def !== undefined) {
    if (typeof def !== "string") return { problem: "default_profile: must be a profile name" };
    if (!(def in profiles)) return { problem: `default_profile: names '${def}', which is not in profiles` };
  }
  return { config: { ...(def !== undefined ? { default_profile: def } : {}), profiles } };
}

/** The config file at `path`; undefined when there is none. A file that is not a valid config is a ConfigError. */
export function readConfig(path: string): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`the config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const out = parseConfig(value);
  if ("problem" in out) throw new ConfigError(`the config file ${path} is malformed: ${out.problem}`);
  return out.config;
}

/** Whether a file others than its owner may read (or change): a config holding keys should not be. */
export function readableByOthers(path: string): boolean {
  try {
    return process.platform !== "win32" && (statSync(path).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

/**
 * Writes the config: the directory made 0700 when it is created, the file 0600, replaced whole (a temporary file
 * renamed over it) so that a reader never sees half of it.
 */
export function writeConfig(path: string, config: ConfigFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.json.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export type Source = "flag" | "env" | "profile" | "default";

export interface Settings {
  url: string;
  urlSource: Source;
  key: string | undefined;
  keySource: Source;
  /** The profile in use (`--profile`, `COORD_PROFILE` or the default), if any. */
  profile: string | undefined;
  profileSource: "flag" | "env" | "default" | undefined;
  path: string;
  config: ConfigFile | undefined;
}

/** Flag > environment > profile > default, for the URL and the key; the profile itself by flag > env > default. */
export function resolveSettings(input: {
  flags: { url?: string; key?: string; profile?: string };
  env: NodeJS.ProcessEnv;
  path: string;
  config: ConfigFile | undefined;
  /** A profile asked for that the file lacks is fine (it is about to be created), not an error. */
  allowNewProfile?: boolean;
}): Settings {
  const { flags, env, path, config } = input;
  let profile: string | undefined;
  let profileSource: Settings["profileSource"];
  if (flags.profile) [profile, profileSource] = [flags.profile, "flag"];
  else if (env.COORD_PROFILE) [profile, profileSource] = [env.COORD_PROFILE, "env"];
  else if (config?.default_profile) [profile, profileSource] = [config.default_profile, "default"];
  let chosen: Profile = {};
  if (profile !== undefined && !(input.allowNewProfile && !config?.profiles[profile])) {
    const asked = profileSource === "flag" ? "--profile" : "COORD_PROFILE";
    if (!config) throw new ConfigError(`${asked} names '${profile}', but there is no config file at ${path}`);
    const found = config.profiles[profile];
    if (!found) {
      const known = Object.keys(config.profiles);
      throw new ConfigError(
        `${asked} names '${profile}', which is not a profile in ${path} (${known.length ? `profiles: ${known.join(", ")}` : "it has none"})`,
      );
    }
    chosen = found;
  }
  const pick = (flag: string | undefined, envValue: string | undefined, fromProfile: string | undefined) =>
    flag
      ? { value: flag, source: "flag" as const }
      : envValue
        ? { value: envValue, source: "env" as const }
        : fromProfile
          ? { value: fromProfile, source: "profile" as const }
          : { value: undefined, source: "default" as const };
  const url = pick(flags.url, env.COORD_URL, chosen.url);
  const key = pick(flags.key, env.COORD_API_KEY, chosen.key);
  return {
    url: url.value ?? DEFAULT_URL,
    urlSource: url.source,
    key: key.value,
    keySource: key.source,
    profile,
    profileSource,
    path,
    config,
  };
}

/** A key as shown: its kind prefix and last four characters (`ck_…9f2a`), never enough to use it. */
export function maskKey(key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  const prefix = /^[a-z]{1,4}_/.exec(key)?.[0] ?? "";
  const rest = key.slice(prefix.length);
  return rest.length >= 16 ? `${prefix}…${rest.slice(-4)}` : `${prefix}…`;
}

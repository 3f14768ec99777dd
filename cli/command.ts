/** The shape of a `coord` command, and the small helpers commands share (option parsing, output). */
import { readFileSync } from "node:fs";
import type { Api } from "./http.ts";
import type { Settings } from "./profile.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  /** Shown in help, e.g. `N`, `JSON`, `FILE`. */
  value?: string;
  description: string;
}

export interface IO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Reads standard input (for `--input-file -`). */
  stdin?: () => Promise<string>;
  /**
   * Whether stderr is a terminal, where `--wait` draws a live progress line (processIO: `process.stderr.isTTY`).
   * Absent: not a terminal, plain lines. Tests force it either way.
   */
  isTTY?: boolean;
  /** The terminal's width, for the progress line (processIO: `process.stderr.columns`; default 80). */
  columns?: number;
  /** The fetch every API request goes through (processIO: the global one); a test puts a faulty network here. */
  fetch?: typeof fetch;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface RunContext {
  /** Positional arguments after the command words. */
  args: string[];
  opts: OptionValues;
  json: boolean;
  io: IO;
  /** The API client (`--url`/COORD_URL/profile, `--key`/COORD_API_KEY/profile). */
  api: Api;
  url: string;
  key: string | undefined;
  /** Where `url` and `key` came from: flags, environment, the profile (cli/profile.ts), defaults. */
  settings: Settings;
}

export interface Command {
  /** The command words, e.g. `jobs submit`. */
  name: string;
  summary: string;
  /** Positional arguments, e.g. `<service>`; a trailing `?` marks one optional. */
  args?: string[];
  /** The words the first positional argument may be, for shell completion (e.g. the shells of `completion`). */
  choices?: string[];
  options?: Record<string, OptionSpec>;
  examples?: string[];
  /** Longer help text. */
  details?: string;
  /** Needs an API key. */
  auth?: boolean;
  /** May name (with --profile / COORD_PROFILE) a profile the config file does not have yet: `config set`. */
  newProfile?: boolean;
  /** Talks to no coordinator, so the config file is not read (a broken one cannot break it): `completion`. */
  local?: boolean;
  /** Returns the exit code (0 when nothing is returned). */
  run(ctx: RunContext): Promise<number | undefined> | Promise<void>;
}

/** A mistake in how the command was invoked (exit 1, with a pointer to `--help`). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

// ---- option helpers ----

export function str(opts: OptionValues, name: string): string | undefined {
  const v = opts[name];
  return typeof v === "string" ? v : undefined;
}

export function list(opts: OptionValues, name: string): string[] {
  const v = opts[name];
  if (Array.isArray(v)) return v;
  return typeof v === "string" ? [v] : [];
}

/**
 * A numeric flag. Non-numbers are a usage error naming both the flag and the API field it feeds; range checks are
 * the coordinator's (its problem+json names the field).
 */
export function num(opts: OptionValues, name: string, field?: string): number | undefined {
  const raw = str(opts, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`--${name} must be a number, got '${raw}'${field ? ` (${field})` : ""}`);
  }
  return n;
}

export function requireStr(opts: OptionValues, name: string): string {
  const v = str(opts, name);
  if (v === undefined || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

/** Parses a JSON flag value, naming the flag when it is not JSON. */
export function jsonArg(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function readInputFile(path: string, io: IO): Promise<string> {
  if (path === "-") {
    if (!io.stdin) throw new UsageError("standard input is not available");
    return io.stdin();
  }
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Splits `a,b, c` into `["a","b","c"]`. */
export function csv(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

// ---- output helpers ----

export function printJson(io: IO, value: unknown) {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** An account view with its balance spelled out (`available`, `held`) instead of a nested object. */
export function flatAccount(a: Record<string, unknown>): Record<string, unknown> {
  const { balance, ...rest } = a as { balance?: { available?: unknown; held?: unknown } };
  if (!balance || typeof balance !== "object") return a;
  const { created_at, ...head } = rest as Record<string, unknown>;
  return { ...head, available: balance.available, held: balance.held, created_at };
}

/** Shortens text to `max` characters for a table cell. */
export function clip(text: unknown, max = 72): string {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** `key  value` lines for an object; nested objects as compact JSON. */
export function printFields(io: IO, obj: Record<string, unknown>, keys?: string[]) {
  const names = keys ?? Object.keys(obj);
  const width = Math.max(0, ...names.map((k) => k.length));
  for (const k of names) io.stdout(`${k.padEnd(width)}  ${cell(obj[k])}\n`);
}

/** A plain aligned table. */
export function printTable(io: IO, rows: Record<string, unknown>[], columns: string[]) {
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (vals: string[]) =>
    `${vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd()}\n`;
  io.stdout(line(columns.map((c) => c.toUpperCase())));
  for (const r of cells) io.stdout(line(r));
}

import type { OptionSpec, OptionValues } from "../../command.ts";
import type { Executor } from "../executors.ts";
import { ffmpegRunnerSpec } from "./ffmpeg.ts";
import { openAiRunnerSpec } from "./openai.ts";

/** What a runner is built from: `coord miner run`'s parsed flags and the process environment. */
export interface RunnerConfig {
  opts: OptionValues;
  env: NodeJS.ProcessEnv;
}

/**
 * A runner the reference miner ships: the services it runs, its own flags on `coord miner run` (named after the
 * runner, e.g. `--openai-url`, so that no two runners share one), and how it is built from them. A runner that lacks
 * its configuration answers why, as text: `coord miner run` refuses to start rather than fail every job.
 */
export interface RunnerSpec {
  name: string;
  services: readonly string[];
  /** One line for `coord miner run --help`. */
  summary: string;
  options: Readonly<Record<string, OptionSpec>>;
  make(config: RunnerConfig, service: string): Executor | string;
}

/** Every shipped runner; each is a small module beside this one, with its own configuration and tests. */
export const RUNNERS: readonly RunnerSpec[] = [ffmpegRunnerSpec, openAiRunnerSpec];

/** The runner of a service, if one ships. */
export function runnerOf(service: string): RunnerSpec | undefined {
  return RUNNERS.find((r) => r.services.includes(service));
}

/** Every runner's flags, for `coord miner run`. */
export function runnerOptions(): Record<string, OptionSpec> {
  return Object.assign({}, ...RUNNERS.map((r) => r.options));
}

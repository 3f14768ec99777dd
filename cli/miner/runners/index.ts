import type { OptionSpec, OptionValues } from "../../command.ts";
import type { Executor } from "../executors.ts";
import { blenderRunnerSpec } from "./blender.ts";
import { commandRunnerSpec } from "./command.ts";
import { ffmpegRunnerSpec } from "./ffmpeg.ts";
import { openAiRunnerSpec } from "./openai.ts";
import { stableDiffusionRunnerSpec } from "./stable-diffusion.ts";
import { whisperRunnerSpec } from "./whisper.ts";

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
  /** For runners whose services are configured (`--command SERVICE=PATH`): whether this config serves `service`. */
  handles?(service: string, config: RunnerConfig): boolean;
}

/** Every shipped runner; each is a small module beside this one, with its own configuration and tests. */
export const RUNNERS: readonly RunnerSpec[] = [
  ffmpegRunnerSpec,
  openAiRunnerSpec,
  blenderRunnerSpec,
  commandRunnerSpec,
  whisperRunnerSpec,
  stableDiffusionRunnerSpec,
];

/**
 * The runner of a service, if one ships: one configured for it first (the operator named it, e.g. `--command`, over
 * a built-in runner of the same service), else the one that lists it.
 */
export function runnerOf(service: string, config?: RunnerConfig): RunnerSpec | undefined {
  return (
    (config && RUNNERS.find((r) => r.handles?.(service, config))) ??
    RUNNERS.find((r) => r.services.includes(service))
  );
}

/** Every runner's flags, for `coord miner run`. */
export function runnerOptions(): Record<string, OptionSpec> {
  return Object.assign({}, ...RUNNERS.map((r) => r.options));
}

import type { Executor } from "../executors.ts";
import { ffmpegRunner } from "./ffmpeg.ts";
import { openAiRunner } from "./openai.ts";

/** What the runners are configured with (from `coord miner run`'s flags and environment). */
export interface RunnerOptions {
  /** An OpenAI-compatible server for llm.inference (`--openai-url`, COORD_OPENAI_URL). */
  openaiUrl?: string;
  openaiKey?: string;
  /** Registry model -> the server's model name (`--openai-model llama-3.1-8b-instruct=meta-llama/...`). */
  openaiModels?: Record<string, string>;
}

/**
 * The runners the reference miner ships beside `echo`, by service: each is a small module with its own
 * configuration and tests. A runner that lacks its configuration answers why, as text.
 */
export const RUNNERS: Readonly<Record<string, (o: RunnerOptions) => Executor | string>> = {
  "ffmpeg.transcode": () => ffmpegRunner(),
  "llm.inference": (o) =>
    o.openaiUrl
      ? openAiRunner({ baseUrl: o.openaiUrl, apiKey: o.openaiKey, models: o.openaiModels })
      : "llm.inference needs an OpenAI-compatible server: --openai-url URL (or COORD_OPENAI_URL)",
};

import type { Executor } from "../executors.ts";
import { ffmpegRunner } from "./ffmpeg.ts";

/**
 * The runners the reference miner ships beside `echo`, by service: `coord miner run --services ffmpeg.transcode`
 * runs transcodes with this machine's ffmpeg. Each is a small module with its own configuration and tests.
 */
export const RUNNERS: Readonly<Record<string, () => Executor>> = {
  "ffmpeg.transcode": () => ffmpegRunner(),
};

import { type FunctionEntry, LAMBDA, MAIN_FIELDS, sstHandler } from "./entries.ts";

/** What every function gets: the runtime environment and the resources it may touch (IAM + `Resource`). */
export interface FunctionContext {
  environment: Record<string, $util.Input<string>>;
  link: unknown[];
}

export interface FunctionOptions {
  description: string;
  memory: `${number} MB`;
  timeout: `${number} ${"second" | "seconds" | "minute" | "minutes"}`;
  /** Retries of asynchronous invocations (cron); 0-2, Lambda's default is 2. */
  retries?: number;
  /** Extra environment for this function only. */
  environment?: Record<string, $util.Input<string>>;
  /** Extra links for this function only. */
  link?: unknown[];
}

/**
 * One Lambda function for an entry of stacks/entries.ts: nodejs22.x on arm64 (Graviton: about 20% cheaper per
 * GB-second than x86), ESM, bundled by SST with esbuild like `npm run build` does (everything bundled, AWS SDK
 * included; minified; source maps shipped and enabled for readable stack traces).
 */
export function createFunction(
  entry: FunctionEntry,
  context: FunctionContext,
  options: FunctionOptions,
): sst.aws.Function {
  return new sst.aws.Function(entry.component, {
    description: options.description,
    handler: sstHandler(entry),
    runtime: LAMBDA.runtime,
    architecture: LAMBDA.architecture,
    memory: options.memory,
    timeout: options.timeout,
    ...(options.retries === undefined ? {} : { retries: options.retries }),
    environment: {
      NODE_OPTIONS: "--enable-source-maps",
      ...context.environment,
      ...options.environment,
    },
    link: [...context.link, ...(options.link ?? [])],
    nodejs: {
      format: "esm",
      minify: true,
      sourcemap: true,
      esbuild: { target: LAMBDA.nodeTarget, mainFields: MAIN_FIELDS },
    },
    logging: { retention: "1 month" },
  });
}

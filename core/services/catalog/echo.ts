import * as v from "valibot";
import { int, looseInput, text } from "../common.ts";
import type { ServiceDef } from "../types.ts";

/**
 * The built-in test service: output = input. Runs on any miner (no GPU), so anyone can drive the whole path
 * (submit, match, lease, meter, receipt, webhook) without hardware. `sleep_ms` and `fail` steer the reference miner.
 */
export const EchoInput = looseInput(
  {
    sleep_ms: v.optional(
      v.pipe(
        int("sleep_ms", 0, 60_000),
        v.description("The reference miner sleeps this long before answering (progress every second)"),
      ),
    ),
    fail: v.optional(
      v.pipe(
        v.strictObject(
          {
            code: v.pipe(
              text("fail.code", 1, 64),
              v.regex(
                /^[a-z][a-z0-9_.-]*$/,
                "fail.code must be a lower-case identifier such as oom or bad_input",
              ),
            ),
            message: text("fail.message", 1, 1000),
            retryable: v.optional(v.boolean("fail.retryable must be true or false"), false),
          },
          "fail must be an object {code, message, retryable?}",
        ),
        v.description("The reference miner reports this failure instead of a result"),
      ),
    ),
  },
  "echo input",
);

export const EchoOutput = v.pipe(
  v.looseObject({}),
  v.description("The input, unchanged (including sleep_ms and fail when given)"),
);

export const echo: ServiceDef = {
  id: "echo",
  category: "test",
  description:
    "Returns its input as output. Runs anywhere (no GPU). input.sleep_ms delays the reference miner; input.fail makes it fail with the given code, message and retryable flag.",
  input: EchoInput,
  output: EchoOutput,
  requirements: { min_vram_mb: 0, recommended_vram_mb: 0, gpu_count: 0 },
  pricing: {
    unit: "request",
    default_unit_price: 100,
    description: "One unit per completed job, whatever it did.",
  },
  defaults: { ttl_seconds: 3600, timeout_seconds: 300, max_attempts: 3 },
  meter: () => 1,
};

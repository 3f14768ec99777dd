import * as v from "valibot";
import { gpuSeconds, int, num, oneOf, strictInput, stringField, text } from "../common.ts";
import type { ModelRequirements, ServiceDef } from "../types.ts";

export const LLM_MODELS = [
  "llama-3.1-8b-instruct",
  "llama-3.1-70b-instruct",
  "mistral-7b-instruct",
  "qwen2.5-7b-instruct",
] as const;
type LlmModel = (typeof LLM_MODELS)[number];

/** Total characters across `prompt` or all `messages[].content` (about 50k tokens of English). */
export const MAX_PROMPT_CHARS = 200_000;

/**
 * bf16 weights (2 bytes per parameter) plus KV cache, served by vLLM or similar. Per GPU: a 7-8B model is ~15-16 GB
 * of weights and wants a 24 GB card; the 70B model is ~141 GB of weights, tensor-parallel over two 80 GB cards.
 */
export const LLM_HARDWARE: Record<LlmModel, ModelRequirements> = {
  "llama-3.1-8b-instruct": { min_vram_mb: 20480, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
  "mistral-7b-instruct": { min_vram_mb: 18432, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
  "qwen2.5-7b-instruct": { min_vram_mb: 18432, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
  "llama-3.1-70b-instruct": {
    min_vram_mb: 76800,
    recommended_vram_mb: 81920,
    gpu_count: 2,
    cuda_min: "12.1",
  },
};

const Message = v.strictObject(
  {
    role: oneOf("role", ["system", "user", "assistant"] as const),
    content: text("content", 0, MAX_PROMPT_CHARS),
  },
  "each message must be an object {role, content}",
);

function promptChars(i: { prompt?: string; messages?: { content: string }[] }): number {
  if (i.prompt !== undefined) return i.prompt.length;
  return (i.messages ?? []).reduce((sum, m) => sum + m.content.length, 0);
}

export const LlmInput = v.pipe(
  strictInput(
    {
      model: v.pipe(
        oneOf("model", LLM_MODELS),
        v.description("The model; a miner must hold it to be matched"),
      ),
      prompt: v.optional(
        v.pipe(
          text("prompt", 1, MAX_PROMPT_CHARS),
          v.description("Raw completion prompt (no chat template)"),
        ),
      ),
      messages: v.optional(
        v.pipe(
          v.array(Message, "messages must be an array"),
          v.minLength(1, "messages must not be empty"),
          v.maxLength(1000, "messages must have at most 1000 entries"),
          v.description("Chat turns, rendered with the model's chat template"),
        ),
      ),
      max_tokens: v.optional(int("max_tokens", 1, 32_768), 1024),
      temperature: v.optional(num("temperature", 0, 2), 0.7),
      top_p: v.optional(
        v.pipe(
          v.number("top_p must be a number"),
          v.gtValue(0, "top_p must be greater than 0"),
          v.maxValue(1, "top_p must be at most 1"),
        ),
        1,
      ),
      stop: v.optional(
        v.pipe(
          v.array(text("stop", 1, 100), "stop must be an array of strings"),
          v.maxLength(4, "stop takes at most 4 sequences"),
        ),
      ),
      seed: v.optional(int("seed", 0, 2_147_483_647)),
      presence_penalty: v.optional(num("presence_penalty", -2, 2)),
      frequency_penalty: v.optional(num("frequency_penalty", -2, 2)),
      stream: v.optional(
        v.literal(false, "stream must be false: follow the job with Prefer: wait, long-poll or a webhook"),
      ),
    },
    "llm input",
  ),
  v.forward(
    v.partialCheck(
      [["prompt"], ["messages"]],
      (i) => !(i.prompt !== undefined && i.messages !== undefined),
      "give prompt or messages, not both",
    ),
    ["messages"],
  ),
  v.forward(
    v.partialCheck(
      [["prompt"], ["messages"]],
      (i) => i.prompt !== undefined || i.messages !== undefined,
      "prompt or messages is required",
    ),
    ["messages"],
  ),
  v.forward(
    v.partialCheck(
      [["prompt"], ["messages"]],
      (i) => promptChars(i) <= MAX_PROMPT_CHARS,
      `the prompt must total at most ${MAX_PROMPT_CHARS} characters`,
    ),
    ["messages"],
  ),
);

export const LlmOutput = v.looseObject({
  text: v.pipe(v.string(), v.description("The completion (the assistant's reply for messages)")),
  finish_reason: v.pipe(
    v.picklist(["stop", "length"] as const),
    v.description("stop: a stop sequence or end of turn; length: max_tokens reached"),
  ),
  model: v.optional(v.string()),
  usage: v.optional(
    v.pipe(
      v.looseObject({ prompt_tokens: v.number(), completion_tokens: v.number() }),
      v.description("As the miner reports it: informational, never billed"),
    ),
  ),
});

const gpusFor = (input: unknown): number => {
  const model = stringField(input, "model", "");
  return Object.hasOwn(LLM_HARDWARE, model) ? LLM_HARDWARE[model as LlmModel].gpu_count : 1;
};

export const llmInference: ServiceDef = {
  id: "llm.inference",
  category: "text",
  description:
    "Text generation with an open-weights instruct model from a prompt or chat messages (no streaming). Output is the completion, its finish reason and the miner's token counts.",
  input: LlmInput,
  output: LlmOutput,
  requirements: { min_vram_mb: 18432, recommended_vram_mb: 24576, gpu_count: 1, cuda_min: "12.1" },
  model_requirements: LLM_HARDWARE,
  pricing: {
    unit: "gpu_second",
    default_unit_price: 300,
    description:
      "Whole seconds between the miner's start and result, as the coordinator observed them, times the GPUs the model needs (2 for llama-3.1-70b-instruct). Not per token: token counts come from the miner, which is paid by them, and the coordinator cannot recount them without the model's tokenizer; usage is recorded but never billed.",
  },
  defaults: { ttl_seconds: 600, timeout_seconds: 1800, max_attempts: 3 },
  modelsFor: (input) => {
    const model = stringField(input, "model", "");
    return model === "" ? [] : [model];
  },
  meterReadsInput: true,
  meter: (input, observedMs) => gpuSeconds(observedMs, gpusFor(input)),
};

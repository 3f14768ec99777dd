import { str } from "../../command.ts";
import { Completed, type Executor, JobFailure } from "../executors.ts";
import type { RunnerSpec } from "./index.ts";
import { modelNames } from "./model-names.ts";

/**
 * The `llm.inference` runner: forwards a job to an OpenAI-compatible server (vLLM, llama.cpp's server, Ollama) and
 * streams its answer back. `messages` go to `POST /v1/chat/completions`, a raw `prompt` to `POST /v1/completions`
 * (no chat template), always with `stream: true` and `stream_options.include_usage`: tokens arrive as server-sent
 * events, reported as progress (at most once a second, which renews the lease), and the server's own `usage` is
 * recorded with the result (never billed: the coordinator meters time). A stop order aborts the request.
 */

export interface OpenAiRunnerConfig {
  /** The server's base URL, e.g. `http://127.0.0.1:8000` (the `/v1/...` paths are appended). */
  baseUrl: string;
  apiKey?: string;
  /** The server's name for a registry model where they differ, e.g. `{"llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct"}`. */
  models?: Record<string, string>;
}

interface Input {
  model: string;
  prompt?: string;
  messages?: { role: string; content: string }[];
  max_tokens: number;
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
}

interface Chunk {
  choices?: { text?: string; delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
}

/** The events of a `text/event-stream` body: each `data:` payload, until `[DONE]`. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let m = /\r?\n\r?\n/.exec(buffered); m; m = /\r?\n\r?\n/.exec(buffered)) {
      const event = buffered.slice(0, m.index);
      buffered = buffered.slice(m.index + m[0].length);
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data === "[DONE]") return;
      if (data) yield data;
    }
  }
}

/** `coord miner run --services llm.inference --openai-url URL`. */
export const openAiRunnerSpec: RunnerSpec = {
  name: "openai",
  services: ["llm.inference"],
  summary: "llm.inference through an OpenAI-compatible server (vLLM, llama.cpp server, Ollama): --openai-url",
  options: {
    "openai-url": {
      type: "string",
      value: "URL",
      description:
        "OpenAI-compatible server for llm.inference (vLLM, llama.cpp, Ollama; env COORD_OPENAI_URL)",
    },
    "openai-key": {
      type: "string",
      value: "KEY",
      description: "Its API key, if it wants one (env COORD_OPENAI_KEY)",
    },
    "openai-model": {
      type: "string",
      multiple: true,
      value: "ID=NAME",
      description: "The server's name for a registry model; repeat",
    },
  },
  make: ({ opts, env }) => {
    const baseUrl = str(opts, "openai-url") ?? env.COORD_OPENAI_URL;
    if (!baseUrl)
      return "llm.inference needs an OpenAI-compatible server: --openai-url URL (or COORD_OPENAI_URL)";
    const models = modelNames(opts, "openai-model");
    if (typeof models === "string") return models;
    return openAiRunner({ baseUrl, apiKey: str(opts, "openai-key") ?? env.COORD_OPENAI_KEY, models });
  },
};

export function openAiRunner(cfg: OpenAiRunnerConfig): Executor {
  const base = cfg.baseUrl.replace(/\/+$/, "");
  return async (ctx) => {
    const input = ctx.input as Input;
    const chat = input.messages !== undefined;
    const body = {
      model: cfg.models?.[input.model] ?? input.model,
      ...(chat ? { messages: input.messages } : { prompt: input.prompt }),
      max_tokens: input.max_tokens,
      ...pick(input, ["temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty"]),
      stream: true,
      stream_options: { include_usage: true },
    };
    const res = await fetch(`${base}/v1/${chat ? "chat/completions" : "completions"}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: ctx.signal,
    }).catch((err: Error) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw new JobFailure("model_server_unreachable", `${base}: ${err.message}`, true);
    });
    if (!res.ok || !res.body) {
      const detail = (await res.text().catch(() => "")).slice(0, 1000);
      // The server refusing the request (a prompt over the context window, an unknown model) is not retried;
      // the server being down or overloaded is.
      throw new JobFailure(
        res.status >= 500 || res.status === 429 ? "model_server_error" : "model_refused",
        `the model server answered ${res.status}: ${detail}`,
        res.status >= 500 || res.status === 429,
      );
    }
    let text = "";
    let finish: string | null = null;
    let usage: Chunk["usage"];
    let tokens = 0;
    let reported = 0;
    for await (const data of sseData(res.body)) {
      const chunk = JSON.parse(data) as Chunk;
      const choice = chunk.choices?.[0];
      const piece = chat ? choice?.delta?.content : choice?.text;
      if (piece) {
        text += piece;
        tokens++;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      if (piece && Date.now() - reported >= 1000) {
        reported = Date.now();
        void ctx.progress(Math.min(0.99, tokens / input.max_tokens), `${tokens} tokens`);
      }
    }
    ctx.signal.throwIfAborted();
    const counted = usage
      ? {
          prompt_tokens: usage.prompt_tokens ?? 0,
          completion_tokens: usage.completion_tokens ?? 0,
          total_tokens: usage.total_tokens ?? (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0),
        }
      : undefined;
    return new Completed(
      { text, finish_reason: finish ?? "stop", ...(counted ? { usage: counted } : {}) },
      counted,
    );
  };
}

function pick<T extends object, K extends keyof T>(o: T, names: K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(names.filter((n) => o[n] !== undefined).map((n) => [n, o[n]])) as Partial<
    Pick<T, K>
  >;
}

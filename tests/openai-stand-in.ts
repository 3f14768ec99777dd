import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { listenLocal } from "./local-server.ts";

/**
 * A STAND-IN for an OpenAI-compatible model server (vLLM, llama.cpp's server, Ollama), which tests cannot run: it
 * speaks the real wire format of `POST /v1/chat/completions` and `POST /v1/completions`, streamed
 * (`text/event-stream` of `chat.completion.chunk` / `text_completion` objects, `stream_options.include_usage`'s
 * final usage chunk, `data: [DONE]`) or not, and the error object of a refused request. Its "model" answers with
 * the words of `ANSWER`, one token per event, `delayMs` apart, and counts prompt tokens as words.
 */
export const ANSWER =
  "The quick brown fox jumps over the lazy dog while the coordinator meters the time".split(" ");

export interface OpenAiStandIn {
  url: string;
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startOpenAiStandIn(delayMs = 60): Promise<OpenAiStandIn> {
  const requests: OpenAiStandIn["requests"] = [];
  const server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse) {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw || "{}") as Record<string, unknown>;
    const path = req.url ?? "";
    requests.push({ path, body });
    const chat = path === "/v1/chat/completions";
    if (!chat && path !== "/v1/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
    }
    if (body.model === "unknown-model") {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end(
        JSON.stringify({
          error: {
            message: "The model `unknown-model` does not exist.",
            type: "invalid_request_error",
            code: "model_not_found",
          },
        }),
      );
    }
    const promptText = chat
      ? ((body.messages as { content: string }[]) ?? []).map((m) => m.content).join(" ")
      : String(body.prompt ?? "");
    const promptTokens = promptText.split(/\s+/).filter(Boolean).length;
    const max = Number(body.max_tokens ?? ANSWER.length);
    const words = ANSWER.slice(0, max);
    const finish = words.length < ANSWER.length ? "length" : "stop";
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: words.length,
      total_tokens: promptTokens + words.length,
    };
    const id = `${chat ? "chatcmpl" : "cmpl"}-standin${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const object = chat ? "chat.completion.chunk" : "text_completion";
    const piece = (text: string, finishReason: string | null) =>
      chat
        ? { index: 0, delta: { content: text }, logprobs: null, finish_reason: finishReason }
        : { index: 0, text, logprobs: null, finish_reason: finishReason };
    if (body.stream !== true) {
      const text = words.join(" ");
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(
        JSON.stringify({
          id,
          object: chat ? "chat.completion" : "text_completion",
          created,
          model: body.model,
          choices: [
            chat
              ? { index: 0, message: { role: "assistant", content: text }, finish_reason: finish }
              : { index: 0, text, finish_reason: finish },
          ],
          usage,
        }),
      );
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    if (chat)
      send({
        id,
        object,
        created,
        model: body.model,
        choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
      });
    for (const [i, w] of words.entries()) {
      await new Promise((r) => setTimeout(r, delayMs));
      send({ id, object, created, model: body.model, choices: [piece(i === 0 ? w : ` ${w}`, null)] });
    }
    send({ id, object, created, model: body.model, choices: [piece("", finish)] });
    if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage)
      send({ id, object, created, model: body.model, choices: [], usage });
    res.end("data: [DONE]\n\n");
  }
  return { ...(await listenLocal(server)), requests };
}

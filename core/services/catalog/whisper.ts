import * as v from "valibot";
import { gpuSeconds, num, oneOf, strictInput, stringField, text } from "../common.ts";
import { HttpsUrl, ObjectRef } from "../refs.ts";
import type { ModelRequirements, ServiceDef } from "../types.ts";

/** OpenAI Whisper checkpoints. `large-v3-turbo` was tuned on transcription only and does not translate. */
export const WHISPER_MODELS = ["tiny", "base", "small", "medium", "large-v3", "large-v3-turbo"] as const;
const TRANSLATE_MODELS = ["tiny", "base", "small", "medium", "large-v3"] as const;

/** fp16 inference with room for 30 s windows and beam search (OpenAI's published sizes, rounded up). */
export const WHISPER_HARDWARE: Record<(typeof WHISPER_MODELS)[number], ModelRequirements> = {
  tiny: { min_vram_mb: 1024, recommended_vram_mb: 2048, gpu_count: 1, cuda_min: "12.1" },
  base: { min_vram_mb: 1024, recommended_vram_mb: 2048, gpu_count: 1, cuda_min: "12.1" },
  small: { min_vram_mb: 2048, recommended_vram_mb: 4096, gpu_count: 1, cuda_min: "12.1" },
  medium: { min_vram_mb: 5120, recommended_vram_mb: 8192, gpu_count: 1, cuda_min: "12.1" },
  "large-v3": { min_vram_mb: 10240, recommended_vram_mb: 12288, gpu_count: 1, cuda_min: "12.1" },
  "large-v3-turbo": { min_vram_mb: 6144, recommended_vram_mb: 8192, gpu_count: 1, cuda_min: "12.1" },
};

/**
 * Whisper's languages that have an ISO 639-1 code (Javanese is `jv` here; Whisper's tokenizer says `jw`).
 * Hawaiian (`haw`) and Cantonese (`yue`) have no two-letter code and are reached by auto-detection.
 */
// biome-ignore format: a table
export const WHISPER_LANGUAGES = [
  "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
  "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy", "id",
  "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk",
  "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa",
  "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr",
  "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh",
] as const;

const RESPONSE_FORMATS = ["json", "text", "srt", "vtt", "verbose_json"] as const;

const language = v.pipe(
  v.string("language must be a string"),
  v.regex(/^[a-z]{2}$/, "language must be a two-letter ISO 639-1 code such as en or de"),
  v.picklist(WHISPER_LANGUAGES, "language must be an ISO 639-1 code that Whisper supports"),
);

function whisperInput(models: readonly string[], defaultModel: string, what: string) {
  return v.pipe(
    strictInput(
      {
        audio_url: v.optional(
          v.pipe(HttpsUrl, v.description("Audio or video file to fetch (any format ffmpeg reads)")),
        ),
        audio_object: v.optional(v.pipe(ObjectRef, v.description("Audio or video file in object storage"))),
        model: v.optional(oneOf("model", models), defaultModel),
        language: v.optional(
          v.pipe(
            language,
            v.description(
              what === "translation"
                ? "Language spoken in the audio (auto-detected when absent); the output is English"
                : "Language spoken in the audio (auto-detected when absent)",
            ),
          ),
        ),
        initial_prompt: v.optional(
          v.pipe(
            text("initial_prompt", 1, 896),
            v.description("Vocabulary or style hint for the first window (Whisper reads at most 224 tokens)"),
          ),
        ),
        response_format: v.optional(oneOf("response_format", RESPONSE_FORMATS), "json"),
        temperature: v.optional(num("temperature", 0, 1), 0),
        word_timestamps: v.optional(v.boolean("word_timestamps must be true or false"), false),
      },
      `${what} input`,
    ),
    v.forward(
      v.partialCheck(
        [["audio_url"], ["audio_object"]],
        (i) => !(i.audio_url !== undefined && i.audio_object !== undefined),
        "give audio_url or audio_object, not both",
      ),
      ["audio_object"],
    ),
    v.forward(
      v.partialCheck(
        [["audio_url"], ["audio_object"]],
        (i) => i.audio_url !== undefined || i.audio_object !== undefined,
        "audio_url or audio_object is required",
      ),
      ["audio_url"],
    ),
  );
}

export const WhisperTranscribeInput = whisperInput(WHISPER_MODELS, "large-v3-turbo", "transcription");
export const WhisperTranslateInput = whisperInput(TRANSLATE_MODELS, "large-v3", "translation");

const Word = v.looseObject({
  word: v.string(),
  start: v.number(),
  end: v.number(),
  probability: v.optional(v.number()),
});

const Segment = v.looseObject({
  id: v.number(),
  start: v.pipe(v.number(), v.description("Seconds from the start of the audio")),
  end: v.number(),
  text: v.string(),
  avg_logprob: v.optional(v.number()),
  no_speech_prob: v.optional(v.number()),
  words: v.optional(v.pipe(v.array(Word), v.description("With word_timestamps"))),
});

export const WhisperOutput = v.looseObject({
  text: v.pipe(v.string(), v.description("The plain transcript (English for translations)")),
  language: v.pipe(v.string(), v.description("Language detected or given")),
  duration_s: v.pipe(v.number(), v.minValue(0), v.description("Length of the audio in seconds")),
  segments: v.optional(v.pipe(v.array(Segment), v.description("With response_format verbose_json"))),
  subtitles: v.optional(v.pipe(v.string(), v.description("The SRT or WebVTT document, for srt and vtt"))),
});

const pricing = {
  unit: "gpu_second",
  default_unit_price: 150,
  description:
    "Whole seconds between the miner's start and result, as the coordinator observed them. Audio length would be the natural unit, but the coordinator never fetches the audio, so only the miner could report it; execution time is what the coordinator can see for itself.",
} as const;

const requirements = { min_vram_mb: 1024, recommended_vram_mb: 12288, gpu_count: 1, cuda_min: "12.1" };

function modelsFor(fallback: string) {
  return (input: unknown) => [`whisper-${stringField(input, "model", fallback)}`];
}

/** Audio or video (Whisper reads the soundtrack), up to 1 GiB. */
const AUDIO_ARTIFACTS: ServiceDef["artifacts"] = {
  input: { maxMb: 1024, contentTypes: ["audio/", "video/"] },
};

export const whisperTranscribe: ServiceDef = {
  id: "whisper.transcribe",
  category: "audio",
  description:
    "Speech to text with OpenAI Whisper: transcript in the spoken language, optionally with segments, word timestamps, or SRT/WebVTT subtitles.",
  input: WhisperTranscribeInput,
  output: WhisperOutput,
  requirements,
  model_requirements: WHISPER_HARDWARE,
  pricing,
  defaults: { ttl_seconds: 3600, timeout_seconds: 3600, max_attempts: 3 },
  modelsFor: modelsFor("large-v3-turbo"),
  meter: (_input, observedMs) => gpuSeconds(observedMs, 1),
  artifacts: AUDIO_ARTIFACTS,
};

export const whisperTranslate: ServiceDef = {
  id: "whisper.translate",
  category: "audio",
  description:
    "Speech in any Whisper language to English text with OpenAI Whisper (large-v3-turbo cannot translate and is not offered).",
  input: WhisperTranslateInput,
  output: WhisperOutput,
  requirements,
  model_requirements: Object.fromEntries(TRANSLATE_MODELS.map((m) => [m, WHISPER_HARDWARE[m]])),
  pricing,
  defaults: { ttl_seconds: 3600, timeout_seconds: 3600, max_attempts: 3 },
  modelsFor: modelsFor("large-v3"),
  meter: (_input, observedMs) => gpuSeconds(observedMs, 1),
  artifacts: AUDIO_ARTIFACTS,
};

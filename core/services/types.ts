import type { GenericSchema } from "valibot";

/**
 * What a service bills by. Units are always integers; price = miner's unit price (micro-credits) x units.
 * - `gpu_second`: whole seconds of coordinator-observed execution (start -> result), times the GPUs the input needs.
 * - `token`, `media_second`: reserved; only honest where the coordinator can count them itself.
 * - `frame`, `image`: counted from the validated input.
 * - `request`: one per completed job.
 */
export type PricingUnit = "gpu_second" | "token" | "frame" | "media_second" | "image" | "request";

/**
 * What a miner needs to run a service. VRAM is PER GPU: a miner qualifies with `gpu_count` GPUs that each have at
 * least `min_vram_mb` (so a 2 x 80 GB machine can hold a 70B model; a 4 x 24 GB one cannot without a separate
 * profile). `min_vram_mb: 0, gpu_count: 0` means the service runs on any machine, GPU or not.
 */
export interface Requirements {
  min_vram_mb: number;
  recommended_vram_mb: number;
  gpu_count: number;
  /** Minimum CUDA version the miner's driver must support, `major.minor`, e.g. "12.1" */
  cuda_min?: string;
  /** Models a miner must hold; may depend on input, see `ServiceDef.modelsFor` */
  models?: string[];
}

/** Hardware profile for one value of `input.model`; overrides the service-wide requirements for that input. */
export type ModelRequirements = Pick<
  Requirements,
  "min_vram_mb" | "recommended_vram_mb" | "gpu_count" | "cuda_min"
>;

export interface Pricing {
  unit: PricingUnit;
  /** Micro-credits per unit (1 credit = 1_000_000). A default only: miners register their own unit price. */
  default_unit_price: number;
  /** What one unit is and why it is measured that way */
  description: string;
}

export interface ServiceDefaults {
  /** How long a job may wait in the queue before it expires */
  ttl_seconds: number;
  /** How long one attempt may execute (start -> result) before it times out */
  timeout_seconds: number;
  max_attempts: number;
}

export interface ServiceDef {
  /** "echo", "whisper.transcribe", "stable-diffusion.generate", ... (`[a-z0-9-]` segments joined by dots) */
  id: string;
  /** "test" | "audio" | "image" | "text" | "video" | "3d" */
  category: string;
  description: string;
  /** valibot schema of `input`, with realistic limits */
  input: GenericSchema;
  /** valibot schema documenting the output shape */
  output: GenericSchema;
  /** Service-wide requirements: the least a miner needs to run any input of this service */
  requirements: Requirements;
  /** Per-model hardware, keyed by the value of `input.model` (services whose cost depends on the model) */
  model_requirements?: Record<string, ModelRequirements>;
  pricing: Pricing;
  defaults: ServiceDefaults;
  /** Models the miner must hold for this particular input (e.g. the LLM named in input.model); default requirements.models */
  modelsFor?(input: unknown): string[];
  /**
   * Billable units (a non-negative integer), from what the COORDINATOR observes (execution ms between start and
   * result) and the validated input; never from miner-reported usage. Must not throw, and must not decrease as
   * `observedMs` grows (so `meter(input, timeout)` bounds the price of any attempt).
   */
  meter(input: unknown, observedMs: number): number;
  /**
   * The meter reads the input (frames to render, GPUs a model needs), so the result reads the job's input back to
   * price it. Absent: units come from the observed time alone and the result reads nothing more.
   */
  meterReadsInput?: boolean;
  /**
   * Artifacts (core/artifacts): limits on those the input references (size; content types, exact or a family such
   * as `audio/`; COORD_SERVICE_ARTIFACT_LIMITS overrides them per service), how many output artifacts a claim may
   * upload (a presigned PUT each), and how large each may be. Absent: no output slots, the upload limit for inputs.
   */
  artifacts?: {
    input?: { maxMb?: number; contentTypes?: readonly string[] };
    outputs?: (input: unknown) => number;
    outputMaxMb?: number;
  };
}

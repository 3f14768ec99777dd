import * as v from "valibot";

/** What a job demands of a miner. Service requirements give the defaults; clients may only tighten them. */
export const ConstraintsSchema = v.strictObject({
  min_vram_mb: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_048_576))),
  gpu_count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(64))),
  gpu_models: v.optional(
    v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(100))), v.maxLength(50)),
  ),
  cuda_min: v.optional(v.pipe(v.string(), v.regex(/^\d+\.\d+$/, "cuda_min must look like '12.1'"))),
  models: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(200))), v.maxLength(20))),
  regions: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(50))), v.maxLength(50))),
  exclude_regions: v.optional(
    v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(50))), v.maxLength(50)),
  ),
  pool: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
});
export type Constraints = v.InferOutput<typeof ConstraintsSchema>;

export interface Gpu {
  model: string;
  vram_mb: number;
  count?: number;
}

/** The part of a miner's registration that matching looks at. */
export interface Capabilities {
  services: string[];
  gpus: Gpu[];
  cuda_version?: string;
  models?: string[];
  region?: string;
  pool?: string;
  /** A private-pool miner that also serves public jobs. */
  accepts_public?: boolean;
  prices: Record<string, number>;
}

function cudaAtLeast(have: string | undefined, need: string | undefined): boolean {
  if (!need) return true;
  if (!have) return false;
  const [hm = 0, hn = 0] = have.split(".").map(Number);
  const [nm = 0, nn = 0] = need.split(".").map(Number);
  return hm > nm || (hm === nm && hn >= nn);
}

/** Merges service defaults with the client's constraints: the stricter value of each wins. */
export function mergeConstraints(defaults: Constraints, client: Constraints | undefined): Constraints {
  const c = client ?? {};
  const models = [...new Set([...(defaults.models ?? []), ...(c.models ?? [])])];
  const cuda = [defaults.cuda_min, c.cuda_min]
    .filter((x): x is string => !!x)
    .sort((a, b) => (cudaAtLeast(a, b) ? -1 : 1))[0];
  return {
    ...c,
    min_vram_mb: Math.max(defaults.min_vram_mb ?? 0, c.min_vram_mb ?? 0),
    gpu_count: Math.max(defaults.gpu_count ?? 0, c.gpu_count ?? 0),
    ...(cuda ? { cuda_min: cuda } : {}),
    ...(models.length ? { models } : {}),
  };
}

export type Mismatch = "service" | "gpu" | "cuda" | "models" | "region" | "price" | "pool";

/**
 * Why a miner cannot take a job, or `undefined` when it can. Hard constraints only: service, VRAM per GPU and GPU
 * count (with an optional model allow-list), CUDA minimum, models held, region allow/deny lists, the miner's unit
 * price against the job's max price, and pool membership.
 */
export function mismatch(
  job: { service: string; constraints: Constraints; max_price: number },
  miner: Capabilities,
): Mismatch | undefined {
  const c = job.constraints;
  if (!miner.services.includes(job.service)) return "service";
  const needGpus = c.gpu_count ?? 0;
  if (needGpus > 0 || (c.min_vram_mb ?? 0) > 0 || c.gpu_models?.length) {
    const allow = c.gpu_models?.map((m) => m.toLowerCase());
    const qualifying = miner.gpus
      .filter((g) => g.vram_mb >= (c.min_vram_mb ?? 0))
      .filter((g) => !allow || allow.includes(g.model.toLowerCase()))
      .reduce((n, g) => n + (g.count ?? 1), 0);
    if (qualifying < Math.max(needGpus, 1)) return "gpu";
  }
  if (!cudaAtLeast(miner.cuda_version, c.cuda_min)) return "cuda";
  if (c.models?.some((m) => !(miner.models ?? []).includes(m))) return "models";
  if (c.regions?.length && (!miner.region || !c.regions.includes(miner.region))) return "region";
  if (c.exclude_regions?.length && miner.region && c.exclude_regions.includes(miner.region)) return "region";
  const price = miner.prices[job.service];
  if (price === undefined || price > job.max_price) return "price";
  if (c.pool) {
    if (miner.pool !== c.pool) return "pool";
  } else if (miner.pool && !miner.accepts_public) {
    return "pool";
  }
  return undefined;
}

import { describe, expect, it } from "vitest";
import { type Capabilities, mergeConstraints, mismatch } from "./constraints.ts";

const rtx4090: Capabilities = {
  services: ["stable-diffusion.generate", "llm.inference"],
  gpus: [{ model: "RTX 4090", vram_mb: 24_576 }],
  cuda_version: "12.4",
  models: ["sdxl-base-1.0", "llama-3.1-8b-instruct"],
  region: "eu-west",
  prices: { "stable-diffusion.generate": 100, "llm.inference": 50 },
};
const sd = { service: "stable-diffusion.generate", max_price: 1000 };

describe("matching a job to a miner", () => {
  it("a capable miner matches", () => {
    expect(
      mismatch(
        {
          ...sd,
          constraints: { min_vram_mb: 8192, gpu_count: 1, cuda_min: "12.1", models: ["sdxl-base-1.0"] },
        },
        rtx4090,
      ),
    ).toBeUndefined();
  });

  it("too little VRAM per GPU does not match", () => {
    expect(mismatch({ ...sd, constraints: { min_vram_mb: 40_000, gpu_count: 1 } }, rtx4090)).toBe("gpu");
  });

  it("a 70B model needs two 80 GB GPUs: one is not enough, two are", () => {
    const job = {
      service: "llm.inference",
      max_price: 1000,
      constraints: { min_vram_mb: 80_000, gpu_count: 2 },
    };
    const one = { ...rtx4090, gpus: [{ model: "A100", vram_mb: 81_920 }] };
    const two = { ...rtx4090, gpus: [{ model: "A100", vram_mb: 81_920, count: 2 }] };
    expect(mismatch(job, one)).toBe("gpu");
    expect(mismatch(job, two)).toBeUndefined();
  });

  it("the GPU model allow-list is case-insensitive", () => {
    expect(mismatch({ ...sd, constraints: { gpu_models: ["rtx 4090"] } }, rtx4090)).toBeUndefined();
    expect(mismatch({ ...sd, constraints: { gpu_models: ["H100"] } }, rtx4090)).toBe("gpu");
  });

  it("CUDA versions compare numerically (12.10 is newer than 12.4)", () => {
    expect(mismatch({ ...sd, constraints: { cuda_min: "12.10" } }, rtx4090)).toBe("cuda");
    expect(mismatch({ ...sd, constraints: { cuda_min: "11.8" } }, rtx4090)).toBeUndefined();
  });

  it("a model the miner does not hold does not match", () => {
    expect(mismatch({ ...sd, constraints: { models: ["flux.1-schnell"] } }, rtx4090)).toBe("models");
  });

  it("region allow and deny lists apply", () => {
    expect(mismatch({ ...sd, constraints: { regions: ["us-east"] } }, rtx4090)).toBe("region");
    expect(mismatch({ ...sd, constraints: { exclude_regions: ["eu-west"] } }, rtx4090)).toBe("region");
    expect(mismatch({ ...sd, constraints: { regions: ["eu-west"] } }, rtx4090)).toBeUndefined();
  });

  it("a miner whose unit price exceeds the job's max price does not match", () => {
    expect(mismatch({ ...sd, max_price: 99, constraints: {} }, rtx4090)).toBe("price");
  });

  it("private-pool miners serve only their pool's jobs unless they accept public work", () => {
    const pooled = { ...rtx4090, pool: "pool_a" };
    expect(mismatch({ ...sd, constraints: {} }, pooled)).toBe("pool");
    expect(mismatch({ ...sd, constraints: { pool: "pool_a" } }, pooled)).toBeUndefined();
    expect(mismatch({ ...sd, constraints: { pool: "pool_a" } }, rtx4090)).toBe("pool");
    expect(mismatch({ ...sd, constraints: {} }, { ...pooled, accepts_public: true })).toBeUndefined();
  });

  it("client constraints can only tighten the service's", () => {
    const merged = mergeConstraints(
      { min_vram_mb: 8192, gpu_count: 1, cuda_min: "12.1", models: ["a"] },
      { min_vram_mb: 4096, cuda_min: "12.4", models: ["b"] },
    );
    expect(merged).toMatchObject({ min_vram_mb: 8192, gpu_count: 1, cuda_min: "12.4", models: ["a", "b"] });
  });
});

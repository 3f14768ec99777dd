import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Gpu } from "./agent.ts";

/**
 * The machine's NVIDIA GPUs, as the driver reports them: `nvidia-smi --query-gpu=name,memory.total,driver_version
 * --format=csv,noheader`. Used by `coord miner run` when no `--gpu` is given; a machine without the driver (no
 * nvidia-smi, or it fails) has none, and the miner registers without GPUs.
 */

const run = promisify(execFile);

export interface DetectedGpus {
  gpus: Gpu[];
  driverVersion?: string;
}

/** nvidia-smi's CSV lines (`NVIDIA GeForce RTX 4090, 24564 MiB, 550.54.14`), identical models counted together. */
export function parseNvidiaSmi(csv: string): DetectedGpus {
  const byModel = new Map<string, Gpu>();
  let driverVersion: string | undefined;
  for (const line of csv.split(/\r?\n/)) {
    const [name, memory, driver] = line.split(",").map((s) => s.trim());
    const mib = /^(\d+)\s*MiB$/i.exec(memory ?? "");
    if (!name || !mib) continue;
    driverVersion ??= driver || undefined;
    const key = `${name}|${mib[1]}`;
    const seen = byModel.get(key);
    if (seen) seen.count = (seen.count ?? 1) + 1;
    else byModel.set(key, { model: name, vram_mb: Number(mib[1]) });
  }
  return { gpus: [...byModel.values()], ...(driverVersion ? { driverVersion } : {}) };
}

export async function detectGpus(binary = "nvidia-smi"): Promise<DetectedGpus> {
  try {
    const { stdout } = await run(
      binary,
      ["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
      {
        timeout: 10_000,
      },
    );
    return parseNvidiaSmi(stdout);
  } catch {
    return { gpus: [] };
  }
}

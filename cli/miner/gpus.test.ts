import { describe, expect, it } from "vitest";
import { parseNvidiaSmi } from "./gpus.ts";

describe("GPU detection", () => {
  it("reads nvidia-smi's CSV, counting identical GPUs together and keeping the driver version", () => {
    const csv = [
      "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15",
      "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15",
      "NVIDIA GeForce RTX 4090, 24564 MiB, 550.54.15",
      "",
    ].join("\n");
    expect(parseNvidiaSmi(csv)).toEqual({
      gpus: [
        { model: "NVIDIA H100 80GB HBM3", vram_mb: 81559, count: 2 },
        { model: "NVIDIA GeForce RTX 4090", vram_mb: 24564 },
      ],
      driverVersion: "550.54.15",
    });
  });

  it("ignores what is not a GPU line (an error message, [N/A] memory)", () => {
    expect(
      parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."),
    ).toEqual({
      gpus: [],
    });
    expect(parseNvidiaSmi("Tesla T4, [N/A], 535.1")).toEqual({ gpus: [] });
  });
});

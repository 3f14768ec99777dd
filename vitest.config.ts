import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "core/**/*.test.ts",
      "events/**/*.test.ts",
      "functions/**/*.test.ts",
      "local/**/*.test.ts",
      "cli/**/*.test.ts",
      "sdk/**/*.test.ts",
      "tests/**/*.test.ts",
    ],
    globalSetup: ["tests/global-setup.ts"],
    setupFiles: ["tests/setup-env.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
  },
});

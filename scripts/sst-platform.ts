/**
 * Makes sure SST's platform (its component types and Pulumi, under .sst/platform) is installed, so that a fresh
 * clone can type-check and synth the stacks with nothing run by hand: `npm test` calls this before
 * `tsc -p stacks/tsconfig.json`. The first run takes about a minute (SST installs its providers from the npm
 * registry; no AWS account is needed); later runs return at once.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const marker = join(root, ".sst", "platform", "config.d.ts");

if (!existsSync(marker)) {
  process.stderr.write("SST platform missing: running `sst install` (once, about a minute)...\n");
  const sst = join(root, "node_modules", ".bin", "sst");
  execFileSync(sst, ["install", "--stage", "ci"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, SST_TELEMETRY_DISABLED: "1", SST_SKIP_DEPENDENCY_CHECK: "1", SST_NO_BUN: "1" },
  });
  if (!existsSync(marker)) throw new Error(`sst install did not write ${marker}`);
}

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../scripts/build-cli.ts";
import { api, createAccount, fundedClient, isolated, stack } from "./fixture.ts";

/*
 * The bundled `coord` (npm run build:cli) is what a GPU box runs (deploy/miner): it must work on plain Node, with no
 * TypeScript loader and no node_modules beside it, the heartbeat watchdog's worker included.
 */

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "coord-bundle-"));
let bundle: string;
beforeAll(async () => {
  bundle = await buildCli(dir);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the bundled coord", () => {
  it("runs on plain node, outside the repository, and its miner completes a job", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await createAccount("miner");
    const job = await api<{ id: string }>("POST", "/v1/jobs", {
      key: client.key,
      body: { service: "echo", input: { from: "bundle" }, constraints, max_price: 1_000_000 },
    });
    expect(job.status, job.text).toBe(201);
    const env = { ...process.env, COORD_URL: stack.url, COORD_API_KEY: miner.key };
    const out = await run(
      process.execPath,
      [
        bundle,
        "miner",
        "run",
        "--once",
        "--wait-seconds",
        "10",
        "--region",
        region,
        "--name",
        `bundle-${region}`,
      ],
      // Outside the repository: nothing but the bundle and Node.
      { cwd: dir, env, timeout: 60_000 },
    );
    expect(out.stdout).toMatch(/completed\s+1/);
    const done = await api<{ status: string }>("GET", `/v1/jobs/${job.body.id}`, { key: client.key });
    expect(done.body.status).toBe("completed");
  });

  it("says that coord start belongs to a clone, rather than failing obscurely", async () => {
    const err = await run(process.execPath, [bundle, "start"], { cwd: dir }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/clone of the repository/);
  });

  it("is the file the systemd unit and the container image run", () => {
    const unit = readFileSync("deploy/miner/coord-miner.service", "utf8");
    const image = readFileSync("deploy/miner/Dockerfile", "utf8");
    expect(unit).toMatch(/ExecStart=.* \/opt\/coord\/coord\.mjs miner run/);
    expect(image).toMatch(/COPY --from=build \/src\/dist\/cli\/ \/opt\/coord\//);
    expect(image).toMatch(/"\/opt\/coord\/coord\.mjs", "miner", "run"/);
    expect(image).toMatch(/npm run build:cli/);
  });
});

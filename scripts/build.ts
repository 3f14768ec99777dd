/**
 * `npm run build`: bundles every Lambda entry point (stacks/entries.ts: the API, the stream handler, each queue
 * consumer, each cron) with esbuild the way it runs on Lambda, checks that each bundle loads in a fresh Node process
 * and exports `handler`, and prints the bundle sizes.
 *
 * Output: dist/<id>/index.mjs (+ index.mjs.map), one folder per function, each ready to zip as a Lambda package
 * with handler `index.handler`.
 *
 * Bundling choices:
 * - Everything is bundled, the AWS SDK included; only Node built-ins stay external. The nodejs22.x runtime ships an
 *   AWS SDK v3, but of whatever version AWS last installed: bundling pins the exact versions we test against, and a
 *   minified, tree-shaken ESM bundle loads faster on a cold start than the runtime's unbundled CommonJS copy.
 * - ESM (`.mjs`, so no package.json `type` is needed in the package), target node22, minified, with external source
 *   maps (set NODE_OPTIONS=--enable-source-maps, as the stack does, for readable stack traces).
 * - esbuild's ESM output has no `require`: a CommonJS dependency that `require()`s a Node built-in would throw
 *   "Dynamic require of ... is not supported". None does today (ESM builds are preferred, see MAIN_FIELDS), but the
 *   banner below defines `require` with `createRequire` so that one never breaks a deploy (SST adds the same banner
 *   to the bundles it deploys).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { type FunctionEntry, functionEntries, LAMBDA, MAIN_FIELDS } from "../stacks/entries.ts";

const root = resolve(import.meta.dirname, "..");
const outRoot = join(root, "dist");

const REQUIRE_BANNER = [
  'import { createRequire as __coordCreateRequire } from "node:module";',
  "const require = __coordCreateRequire(import.meta.url);",
].join("\n");

interface Built {
  entry: FunctionEntry;
  file: string;
  bytes: number;
  gzipBytes: number;
  mapBytes: number;
  inputs: number;
}

async function bundle(entry: FunctionEntry): Promise<Built> {
  const outdir = join(outRoot, entry.id);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, "index.mjs");
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(root, entry.source)],
    outfile: file,
    bundle: true,
    platform: "node",
    target: LAMBDA.nodeTarget,
    format: "esm",
    mainFields: MAIN_FIELDS,
    minify: true,
    sourcemap: "external",
    legalComments: "none",
    banner: { js: REQUIRE_BANNER },
    metafile: true,
    logLevel: "warning",
  });
  const code = readFileSync(file);
  return {
    entry,
    file,
    bytes: code.byteLength,
    gzipBytes: gzipSync(code, { level: 9 }).byteLength,
    mapBytes: statSync(`${file}.map`).size,
    inputs: Object.keys(result.metafile.inputs).length,
  };
}

/**
 * Loads the bundle in a fresh Node process, as the Lambda runtime would (no repo node_modules reachable from dist/
 * matters, since everything is bundled), and checks that it exports a `handler` function.
 */
function verify(built: Built): string | undefined {
  const url = pathToFileURL(built.file).href;
  const script = `const m = await import(${JSON.stringify(url)});
if (typeof m.handler !== "function") { console.error("no exported handler function"); process.exit(3); }
process.exit(0);`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    AWS_REGION: "us-east-1",
    AWS_LAMBDA_FUNCTION_NAME: `coordinator-build-check-${built.entry.id}`,
    COORD_TABLE_NAME: "coordinator-build-check",
    COORD_BUS_NAME: "coordinator-build-check",
    COORD_QUEUE_PREFIX: "coordinator-build-check",
  };
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: join(outRoot, built.entry.id),
    env,
    encoding: "utf8",
    timeout: 30_000,
  });
  if (run.status === 0) return undefined;
  return (run.stderr || run.stdout || `exit ${run.status ?? run.signal}`).trim();
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length))) ?? [];
  return rows
    .map((r, i) => {
      const line = r.map((cell, col) =>
        col === 0 || col === 1 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0),
      );
      const text = line.join("  ");
      return i === 0 ? `${text}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : text;
    })
    .join("\n");
}

async function main(): Promise<void> {
  const entries = functionEntries();
  const ids = new Set<string>();
  for (const e of entries) {
    if (ids.has(e.id)) throw new Error(`duplicate function id ${e.id}`);
    ids.add(e.id);
  }
  const started = performance.now();
  const built = await Promise.all(entries.map(bundle));
  const failures = built.flatMap((b) => {
    const err = verify(b);
    return err ? [`${b.entry.id}: ${err}`] : [];
  });

  const rows = [
    ["function", "source", "bundle", "gzip", "sourcemap", "modules"],
    ...built.map((b) => [
      b.entry.id,
      b.entry.source,
      kb(b.bytes),
      kb(b.gzipBytes),
      kb(b.mapBytes),
      String(b.inputs),
    ]),
  ];
  console.log(table(rows));
  const total = built.reduce((sum, b) => sum + b.bytes, 0);
  console.log(
    `\n${built.length} functions -> ${relative(root, outRoot)}/<function>/index.mjs, ${kb(total)} in total, ` +
      `${LAMBDA.runtime} ${LAMBDA.architecture}, ${Math.round(performance.now() - started)} ms`,
  );
  if (failures.length > 0) {
    console.error(`\nbundles that do not load:\n${failures.join("\n")}`);
    process.exitCode = 1;
  }
}

await main();

/**
 * `npm run build:cli`: bundles the `coord` command (cli/coord.ts) into one ESM file, `dist/cli/coord.mjs`, that
 * needs nothing but Node 20 or later: what a GPU box runs the reference miner from (deploy/miner has a systemd unit and a
 * container image built around it), with no clone, no `npm install` and no TypeScript loader.
 *
 * Everything is bundled except Node's built-ins and `coord start`'s local stack (DynamoDB Local, the emulators),
 * which belongs to a development clone: in the bundle `coord start` says so. `--outdir DIR` writes elsewhere.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";

const root = resolve(import.meta.dirname, "..");

/** `coord start` imports the local stack lazily; in the bundle that import becomes a clear refusal. */
const noLocalStack: Plugin = {
  name: "no-local-stack",
  setup(b) {
    b.onResolve({ filter: /\/local\/run\.ts$/ }, (args) => ({
      path: args.path,
      namespace: "no-local-stack",
    }));
    b.onLoad({ filter: /.*/, namespace: "no-local-stack" }, () => ({
      contents:
        'const refuse = () => { throw new Error("coord start runs the local stack from a clone of the repository (npm start); this bundle is the client and the miner only"); };\nexport const optionsFromEnv = refuse;\nexport const runLocalStack = refuse;',
      loader: "js",
    }));
  },
};

export async function buildCli(outdir = join(root, "dist", "cli")): Promise<string> {
  mkdirSync(outdir, { recursive: true });
  const outfile = join(outdir, "coord.mjs");
  await build({
    entryPoints: [join(root, "cli", "coord.ts")],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    plugins: [noLocalStack],
    // A CommonJS dependency that requires a Node built-in needs `require` in an ESM bundle.
    banner: {
      js: [
        'import { createRequire as __coordCreateRequire } from "node:module";',
        "const require = __coordCreateRequire(import.meta.url);",
      ].join("\n"),
    },
  });
  // The entry's own hashbang (`npx tsx`, for the TypeScript source) leads the bundle: it runs on plain node.
  const text = readFileSync(outfile, "utf8").replace(/^#!.*\n/, "");
  writeFileSync(outfile, `#!/usr/bin/env node\n${text}`, { mode: 0o755 });
  return outfile;
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { outdir: { type: "string" } } });
  const file = await buildCli(values.outdir ? resolve(values.outdir) : undefined);
  console.log(`${file}  ${(statSync(file).size / 1024).toFixed(0)} KiB`);
}

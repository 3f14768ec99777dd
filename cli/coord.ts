#!/usr/bin/env -S npx tsx
/**
 * The `coord` command (package.json "bin"): `npm run coord -- <args>` or `npx tsx cli/coord.ts <args>`.
 * Everything lives in cli/main.ts so that it can be driven in-process; this file only wires it to the process.
 */
import { main } from "./main.ts";

process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
/*
 * A STAND-IN for Blender (it is not Blender): real Blender cannot be installed on the test machines, so
 * tests/blender-runner.test.ts points `coord miner run --blender-bin` at this script. It takes Blender's own command
 * line, acts on it in Blender's order (arguments are processed left to right: the .blend loads where it is named,
 * `-o`/`-F`/`-E`/`-s`/`-e`/`-j` change the scene, `-f`/`-a` render with what was set before them; what follows
 * `--` is for Cycles), prints Blender-like log lines (`Fra:N ... | Sample x/y`, `Saved: '...'`) and writes a real,
 * valid PNG where Blender would (the pattern's run of `#` replaced by the zero-padded frame, the extension added).
 *
 * The "scene" is a file that starts like a .blend (`BLENDER-v402`) followed by JSON directives for the stand-in:
 * `{"width": 64, "height": 48, "samples": 4, "sample_ms": 10}` (the render settings stored in the scene; the
 * command line's `--python-expr` resolution and samples override them, as in Blender). A file without the header
 * is refused as Blender refuses it. When BLENDER_STAND_IN_LOG is set, each run appends `{pid, argv}` to it as a
 * JSON line, so that tests see the command line and can find the process.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const argv = process.argv.slice(2);
if (process.env.BLENDER_STAND_IN_LOG)
  appendFileSync(process.env.BLENDER_STAND_IN_LOG, `${JSON.stringify({ pid: process.pid, argv })}\n`);

const print = (line) => process.stdout.write(`${line}\n`);
const fail = (message, code = 1) => {
  print(`Error: ${message}`);
  print("");
  print("Blender quit");
  process.exit(code);
};
/** A blocking sleep: the stand-in is one sequential script, like Blender's render loop. */
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

if (argv.includes("--version") || argv.includes("-v")) {
  print("Blender 4.2.0 (stand-in)");
  print("\tbuild date: 2024-07-16");
  print("\tbuild hash: 000000000000 (stand-in)");
  process.exit(0);
}

// ---- PNG: signature, IHDR, one IDAT (zlib), IEND; each chunk CRC-32'd ----
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (bytes) => {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
};
/** An 8-bit RGB image: a gradient tinted by the frame number, so that frames differ. */
function png(width, height, frame) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, filter 0, no interlace
  const raw = Buffer.alloc((1 + width * 3) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = Math.floor((x / width) * 255);
      raw[row + 2 + x * 3] = Math.floor((y / height) * 255);
      raw[row + 3 + x * 3] = (frame * 37) % 256;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ---- the command line, in Blender's order ----
const ENGINES = new Set(["CYCLES", "BLENDER_EEVEE_NEXT", "BLENDER_WORKBENCH"]);
const EXTENSIONS = { PNG: ".png" };
const state = {
  background: false,
  scene: undefined,
  engine: "CYCLES",
  output: "//",
  format: "PNG",
  extension: true,
  start: 1,
  end: 250,
  step: 1,
  python: [],
  cyclesDevice: undefined,
};
const renders = [];

function loadScene(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch {
    fail(`Cannot read file "${path}": No such file or directory`);
  }
  if (bytes.subarray(0, 7).toString("latin1") !== "BLENDER")
    fail(`Cannot read file "${path}": File format is not supported`);
  const directives = bytes.subarray(12).toString("utf8").trim();
  const scene = {
    width: 64,
    height: 48,
    samples: 4,
    sample_ms: 10,
    ...(directives ? JSON.parse(directives) : {}),
  };
  print(`Read blend: "${path}"`);
  return scene;
}

const takes = (i, flag) => {
  const value = argv[i + 1];
  if (value === undefined) fail(`${flag} requires an argument`);
  return value;
};
const integer = (text, flag) => {
  if (!/^-?\d+$/.test(text)) fail(`${flag} takes a number, got "${text}"`);
  return Number(text);
};
const needScene = (flag) => {
  if (!state.scene) fail(`${flag}: no blend file loaded (the file must come before it)`);
};

for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === "--") {
    // Cycles' own arguments.
    for (let j = i + 1; j < argv.length; j++)
      if (argv[j] === "--cycles-device") state.cyclesDevice = argv[++j];
    break;
  }
  switch (arg) {
    case "-b":
    case "--background":
      state.background = true;
      break;
    case "-Y":
    case "--disable-autoexec":
    case "-noaudio":
      break;
    case "-S":
    case "--scene":
      needScene(arg);
      takes(i, arg);
      i++;
      break;
    case "-E":
    case "--engine": {
      needScene(arg);
      const engine = takes(i++, arg);
      if (!ENGINES.has(engine)) fail(`engine not found '${engine}'`);
      state.engine = engine;
      break;
    }
    case "-o":
    case "--render-output":
      state.output = takes(i++, arg);
      break;
    case "-F":
    case "--render-format": {
      const format = takes(i++, arg);
      if (!EXTENSIONS[format]) fail(`the stand-in writes only PNG, not "${format}"`);
      state.format = format;
      break;
    }
    case "-x":
    case "--use-extension":
      state.extension = takes(i++, arg) !== "0";
      break;
    case "--python-exit-code":
      integer(takes(i++, arg), arg);
      break;
    case "--python-expr":
      needScene(arg);
      state.python.push(takes(i++, arg));
      break;
    case "-s":
    case "--frame-start":
      state.start = integer(takes(i++, arg), arg);
      break;
    case "-e":
    case "--frame-end":
      state.end = integer(takes(i++, arg), arg);
      break;
    case "-j":
    case "--frame-jump":
      state.step = integer(takes(i++, arg), arg);
      break;
    case "-a":
    case "--render-anim": {
      needScene(arg);
      const frames = [];
      for (let f = state.start; f <= state.end; f += Math.max(1, state.step)) frames.push(f);
      renders.push({ ...state, frames });
      break;
    }
    case "-f":
    case "--render-frame": {
      needScene(arg);
      const frames = takes(i++, arg)
        .split(",")
        .map((f) => integer(f, arg));
      renders.push({ ...state, frames });
      break;
    }
    default:
      if (arg.startsWith("-")) fail(`unknown argument "${arg}"`);
      state.scene = loadScene(arg);
  }
}
if (!state.background) fail("the stand-in renders only in the background (-b)");

/** Blender's output path for a frame: the last run of # is the zero-padded frame (4 digits appended without one). */
function framePath(output, frame, format, extension) {
  const runs = [...output.matchAll(/#+/g)];
  const last = runs.at(-1);
  const path =
    last === undefined
      ? `${output}${String(frame).padStart(4, "0")}`
      : `${output.slice(0, last.index)}${String(frame).padStart(last[0].length, "0")}${output.slice(last.index + last[0].length)}`;
  return extension ? `${path}${EXTENSIONS[format]}` : path;
}

for (const render of renders) {
  // The command line's Python, as far as the stand-in understands it: resolution and samples.
  const settings = { ...render.scene };
  for (const expr of render.python) {
    const x = /resolution_x\s*=\s*(\d+)/.exec(expr);
    const y = /resolution_y\s*=\s*(\d+)/.exec(expr);
    const samples = /(?:cycles\.samples|taa_render_samples)\s*=\s*(\d+)/.exec(expr);
    if (x) settings.width = Number(x[1]);
    if (y) settings.height = Number(y[1]);
    if (samples) settings.samples = Number(samples[1]);
  }
  if (render.cyclesDevice) print(`Cycles: using device ${render.cyclesDevice} (stand-in)`);
  for (const frame of render.frames) {
    for (let s = 1; s <= settings.samples; s++) {
      sleep(settings.sample_ms);
      print(
        `Fra:${frame} Mem:12.00M (Peak 12.00M) | Time:00:00.${String(s).padStart(2, "0")} | Mem:0.50M, Peak:0.50M | Scene, ViewLayer | Sample ${s}/${settings.samples}`,
      );
    }
    const path = framePath(render.output, frame, render.format, render.extension);
    writeFileSync(path, png(settings.width, settings.height, frame));
    print(`Saved: '${path}'`);
    print(" Time: 00:00.10 (Saving: 00:00.00)");
    print("");
  }
}
print("");
print("Blender quit");

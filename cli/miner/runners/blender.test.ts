import { describe, expect, it } from "vitest";
import {
  type BlenderInput,
  blenderArgs,
  engineId,
  framesOf,
  parseLogLine,
  parseVersion,
  progressOf,
  tarOf,
} from "./blender.ts";

const base: BlenderInput = { scene: { artifact_id: "art_x" }, frame_start: 1, frame_end: 1 };
const flagValue = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe("the blender runner's command line", () => {
  it("loads the scene with its scripts disabled, then sets engine, output and format, then renders the range", () => {
    const args = blenderArgs(
      { ...base, frame_start: 10, frame_end: 20, frame_step: 5 },
      "/w/s.blend",
      "/w/out",
    );
    expect(args.slice(0, 4)).toEqual(["-b", "-Y", "-noaudio", "/w/s.blend"]);
    expect(flagValue(args, "-E")).toBe("CYCLES");
    expect(flagValue(args, "-o")).toBe("/w/out/frame_#####");
    expect(flagValue(args, "-F")).toBe("PNG");
    expect([flagValue(args, "-s"), flagValue(args, "-e"), flagValue(args, "-j")]).toEqual(["10", "20", "5"]);
    // Blender acts on arguments in order: every setting before the render, the render last.
    for (const flag of ["-E", "-o", "-F", "-s", "-e", "-j"])
      expect(args.indexOf(flag)).toBeLessThan(args.indexOf("-a"));
    expect(args.at(-1)).toBe("-a");
    expect(args).not.toContain("--python-expr");
  });

  it("maps formats, the Cycles device (after --, Cycles only) and EEVEE's id per Blender version", () => {
    expect(flagValue(blenderArgs({ ...base, output_format: "exr" }, "s", "o"), "-F")).toBe("OPEN_EXR");
    expect(flagValue(blenderArgs({ ...base, output_format: "jpeg" }, "s", "o"), "-F")).toBe("JPEG");
    const gpu = blenderArgs(base, "s", "o", { device: "OPTIX" });
    expect(gpu.slice(gpu.indexOf("--"))).toEqual(["--", "--cycles-device", "OPTIX"]);
    expect(blenderArgs({ ...base, engine: "eevee" }, "s", "o", { device: "OPTIX" })).not.toContain("--");
    expect(engineId("eevee", [4, 2])).toBe("BLENDER_EEVEE_NEXT");
    expect(engineId("eevee", [4, 5])).toBe("BLENDER_EEVEE_NEXT");
    expect(engineId("eevee", [4, 1])).toBe("BLENDER_EEVEE");
    expect(engineId("eevee", [5, 0])).toBe("BLENDER_EEVEE");
    expect(engineId("cycles", [4, 2])).toBe("CYCLES");
    expect(parseVersion("Blender 4.2.1 LTS\n\tbuild date: 2024-08-19")).toEqual([4, 2]);
    expect(parseVersion("not blender")).toBeUndefined();
  });

  it("sets what has no flag (resolution, samples, camera, the scene's check) in Python that fails the render", () => {
    const args = blenderArgs(
      { ...base, width: 1920, height: 1080, samples: 64, camera: 'Cam "2"', scene_name: "Shot" },
      "s",
      "o",
    );
    expect(flagValue(args, "-S")).toBe("Shot");
    expect(flagValue(args, "--python-exit-code")).toBe("1");
    const script = flagValue(args, "--python-expr") as string;
    expect(script).toContain("s.render.resolution_x = 1920");
    expect(script).toContain("s.render.resolution_y = 1080");
    expect(script).toContain("s.render.resolution_percentage = 100");
    expect(script).toContain("s.cycles.samples = 64");
    // The camera's name is quoted, never spliced into the code.
    expect(script).toContain('s.camera = bpy.data.objects["Cam \\"2\\""]');
    expect(script).toContain('assert s.name == "Shot"');
    expect(args.indexOf("--python-expr")).toBeLessThan(args.indexOf("-a"));
    const eevee = flagValue(
      blenderArgs({ ...base, engine: "eevee", samples: 16 }, "s", "o"),
      "--python-expr",
    );
    expect(eevee).toContain("s.eevee.taa_render_samples = 16");
  });

  it("renders frame_start to frame_end every frame_step", () => {
    expect(framesOf({ frame_start: 1, frame_end: 10, frame_step: 3 })).toEqual([1, 4, 7, 10]);
    expect(framesOf({ frame_start: 7, frame_end: 7 })).toEqual([7]);
  });
});

describe("the blender runner's log parsing", () => {
  it("reads Cycles and EEVEE sample lines, frame lines and saved frames", () => {
    expect(
      parseLogLine(
        "Fra:12 Mem:13.16M (Peak 13.90M) | Time:00:00.57 | Mem:0.66M, Peak:0.66M | Scene, ViewLayer | Sample 32/128",
      ),
    ).toEqual({ kind: "sample", frame: 12, sample: 32, of: 128 });
    expect(parseLogLine("Fra:3 Mem:80.2M (Peak 90.1M) | Time:00:01.10 | Rendering 16 / 64 samples")).toEqual({
      kind: "sample",
      frame: 3,
      sample: 16,
      of: 64,
    });
    expect(parseLogLine("Fra:3 Mem:80.2M (Peak 90.1M) | Time:00:00.10 | Syncing Cube")).toEqual({
      kind: "frame",
      frame: 3,
    });
    expect(parseLogLine("Saved: '/tmp/r/frame_00003.png'")).toEqual({
      kind: "saved",
      path: "/tmp/r/frame_00003.png",
    });
    expect(parseLogLine(" Time: 00:02.12 (Saving: 00:00.01)")).toBeUndefined();
    expect(parseLogLine("Blender quit")).toBeUndefined();
  });

  it("turns them into the job's progress: frames before, the current one by its samples, never 1 before the upload", () => {
    const frames = [1, 3, 5, 7];
    expect(progressOf(frames, { kind: "sample", frame: 1, sample: 50, of: 100 }, 0)).toBe(0.125);
    expect(progressOf(frames, { kind: "sample", frame: 5, sample: 100, of: 100 }, 2)).toBe(0.75);
    expect(progressOf(frames, { kind: "frame", frame: 3 }, 1)).toBe(0.25);
    expect(progressOf(frames, { kind: "saved", path: "x" }, 4)).toBe(0.99);
    expect(progressOf(frames, { kind: "frame", frame: 2 }, 0)).toBeUndefined();
  });
});

/** The entries of a ustar archive, checking each header's magic and checksum. */
function untar(bytes: Uint8Array): { name: string; bytes: Uint8Array }[] {
  const text = (b: Uint8Array) => new TextDecoder().decode(b).replace(/\0.*$/s, "");
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (let at = 0; at + 512 <= bytes.length; ) {
    const header = bytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    expect(text(header.subarray(257, 263))).toBe("ustar");
    const sum = header.reduce((s, b, i) => s + (i >= 148 && i < 156 ? 0x20 : b), 0);
    expect(Number.parseInt(text(header.subarray(148, 156)), 8)).toBe(sum);
    const size = Number.parseInt(text(header.subarray(124, 136)), 8);
    out.push({ name: text(header.subarray(0, 100)), bytes: bytes.slice(at + 512, at + 512 + size) });
    at += 512 * (1 + Math.ceil(size / 512));
  }
  return out;
}

describe("the blender runner's archive", () => {
  it("is a ustar archive holding each frame by name, ended by two zero blocks", () => {
    const a = new Uint8Array(700).map((_, i) => i % 251);
    const b = new Uint8Array([1, 2, 3]);
    const tar = tarOf([
      { name: "frame_00001.png", bytes: a },
      { name: "frame_00002.png", bytes: b },
    ]);
    expect(tar.length % 512).toBe(0);
    expect(tar.length).toBe(512 * (1 + 2 + 1 + 1 + 2));
    expect(tar.subarray(-1024).every((x) => x === 0)).toBe(true);
    expect(untar(tar)).toEqual([
      { name: "frame_00001.png", bytes: a },
      { name: "frame_00002.png", bytes: b },
    ]);
    expect(untar(tarOf([]))).toEqual([]);
  });
});

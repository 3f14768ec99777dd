import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { blenderRunnerSpec } from "./blender.ts";
import {
  commandDeadline,
  commandRunnerSpec,
  lineSplitter,
  parseCommands,
  parseOutput,
  parseProgressLine,
  throttled,
} from "./command.ts";
import { runnerOf } from "./index.ts";

/** A file that is there but not executable (mode 0644 in the repository). */
const notExecutable = fileURLToPath(new URL("../../../package.json", import.meta.url));
const config = (opts: Record<string, string | string[]>) => ({ opts, env: { PATH: "/usr/bin:/bin" } });

describe("the command runner's flags", () => {
  it("wires services to executables with --command SERVICE=PATH, refusing malformed or repeated ones", () => {
    expect(parseCommands(["echo=./a.sh", "my.svc=/opt/bin/run=fast"])).toEqual(
      new Map([
        ["echo", "./a.sh"],
        ["my.svc", "/opt/bin/run=fast"],
      ]),
    );
    expect(parseCommands(["echo"])).toContain("SERVICE=PATH");
    expect(parseCommands(["=./a.sh"])).toContain("SERVICE=PATH");
    expect(parseCommands(["echo="])).toContain("SERVICE=PATH");
    expect(parseCommands(["echo=a", "echo=b"])).toBe("--command names echo twice");
  });

  it("takes precedence over a built-in runner of the same service, and only for the services it names", () => {
    const opts = { command: ["blender.render=/bin/true"] };
    expect(runnerOf("blender.render", config(opts))).toBe(commandRunnerSpec);
    expect(runnerOf("blender.render", config({}))).toBe(blenderRunnerSpec);
    expect(runnerOf("blender.render")).toBe(blenderRunnerSpec);
    expect(runnerOf("echo", config(opts))).toBeUndefined();
    // A malformed --command claims every service so that the miner refuses to start, saying why.
    const bad = config({ command: ["echo:/bin/true"] });
    expect(runnerOf("echo", bad)).toBe(commandRunnerSpec);
    expect(commandRunnerSpec.make(bad, "echo")).toContain("SERVICE=PATH");
  });

  it("refuses to build without an executable, or with a timeout that is not a positive number", () => {
    expect(commandRunnerSpec.make(config({ command: "echo=/nonexistent/serve" }), "echo")).toContain(
      "not an executable file",
    );
    expect(commandRunnerSpec.make(config({ command: `echo=${notExecutable}` }), "echo")).toContain(
      "not an executable file",
    );
    expect(typeof commandRunnerSpec.make(config({ command: "echo=true" }), "echo")).toBe("function");
    expect(
      commandRunnerSpec.make(config({ command: "echo=/bin/true", "command-timeout": "soon" }), "echo"),
    ).toContain("--command-timeout");
    expect(
      commandRunnerSpec.make(config({ command: "echo=/bin/true", "command-timeout": "0" }), "echo"),
    ).toContain("--command-timeout");
  });
});

describe("the command runner's deadline", () => {
  const now = Date.parse("2030-01-01T00:00:00Z");
  it("is --command-timeout after the start, never past the job's own timeout_at", () => {
    expect(commandDeadline(now, 10)).toBe(now + 10_000);
    expect(commandDeadline(now, undefined, "2030-01-01T00:01:00Z")).toBe(now + 60_000);
    expect(commandDeadline(now, 10, "2030-01-01T00:01:00Z")).toBe(now + 10_000);
    expect(commandDeadline(now, 600, "2030-01-01T00:01:00Z")).toBe(now + 60_000);
    expect(commandDeadline(now)).toBeUndefined();
    expect(commandDeadline(now, undefined, "not a date")).toBeUndefined();
  });
});

describe("the command runner's stdout and stderr", () => {
  it("reads JSON progress lines on stderr, clamped, and nothing else as progress", () => {
    expect(parseProgressLine('{"progress":0.5,"message":"half way"}')).toEqual({
      progress: 0.5,
      message: "half way",
    });
    expect(parseProgressLine('  {"progress": 2}  ')).toEqual({ progress: 1 });
    expect(parseProgressLine('{"progress": -1, "message": ""}')).toEqual({ progress: 0 });
    expect(parseProgressLine('{"message":"no fraction"}')).toBeUndefined();
    expect(parseProgressLine('{"progress":"0.5"}')).toBeUndefined();
    expect(parseProgressLine("[0.5]")).toBeUndefined();
    expect(parseProgressLine("{not json")).toBeUndefined();
    expect(parseProgressLine("warning: disk almost full")).toBeUndefined();
    expect(parseProgressLine(`{"progress":0.1,"message":"${"x".repeat(2000)}"}`)?.message).toHaveLength(1000);
  });

  it("takes stdout as one JSON value, or says why not", () => {
    expect(parseOutput('{"a":1}\n')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseOutput("[1,2]")).toEqual({ ok: true, value: [1, 2] });
    const garbage = parseOutput("hello\n");
    expect(garbage.ok).toBe(false);
    expect(!garbage.ok && garbage.reason).toContain("not JSON");
    expect(parseOutput("")).toMatchObject({ ok: false, reason: expect.stringContaining("nothing") });
    expect(parseOutput("{}", true)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("more than"),
    });
  });

  it("splits stderr into lines across chunks, the unterminated last one included", () => {
    const lines: string[] = [];
    const split = lineSplitter((l) => lines.push(l));
    split.push('{"progr');
    split.push('ess":0.5}\r\nplain\nlast');
    split.end();
    expect(lines).toEqual(['{"progress":0.5}', "plain", "last"]);
  });
});

describe("the command runner's progress reports", () => {
  it("sends the first at once and then at most one a second, the latest held one when the second is up", () => {
    vi.useFakeTimers();
    try {
      const sent: [number, string | undefined][] = [];
      const progress = throttled((f, m) => sent.push([f, m]), 1000);
      progress.report(0.1, "a");
      progress.report(0.2, "b");
      progress.report(0.3, "c");
      expect(sent).toEqual([[0.1, "a"]]);
      vi.advanceTimersByTime(1000);
      expect(sent).toEqual([
        [0.1, "a"],
        [0.3, "c"],
      ]);
      progress.report(0.4, "d");
      progress.stop();
      vi.advanceTimersByTime(5000);
      // Stopped (the command exited): a held report is dropped, the result supersedes it.
      expect(sent).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

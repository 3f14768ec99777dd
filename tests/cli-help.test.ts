import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Command } from "../cli/command.ts";
import { COMMANDS, GLOBAL } from "../cli/main.ts";
import { coordInProcess } from "./fixture.ts";

/*
 * Every command documents itself (`--help`, `coord help <command>`), and the shell completion scripts are generated
 * from the same table, so both are checked command by command, option by option, for whatever COMMANDS holds.
 */

const optionsOf = (cmd: Command) => Object.keys(cmd.options ?? {});
const hasShell = (shell: string) => spawnSync(shell, ["-c", "true"]).status === 0;

describe("coord help", () => {
  it("every command has --help: usage, summary, each of its options and the global ones, exit 0", async () => {
    expect(COMMANDS.length).toBeGreaterThan(20);
    for (const cmd of COMMANDS) {
      const words = cmd.name.split(" ");
      const viaFlag = await coordInProcess([...words, "--help"]);
      const viaHelp = await coordInProcess(["help", ...words]);
      for (const out of [viaFlag, viaHelp]) {
        expect(out.code, cmd.name).toBe(0);
        expect(out.stderr, cmd.name).toBe("");
        const lines = out.stdout.split("\n");
        expect(lines[0], cmd.name).toMatch(new RegExp(`^coord ${cmd.name}( |$)`));
        for (const arg of cmd.args ?? []) expect(lines[0], cmd.name).toContain(arg);
        expect(out.stdout, cmd.name).toContain(cmd.summary);
        for (const name of [...optionsOf(cmd), ...Object.keys(GLOBAL)])
          expect(out.stdout, `${cmd.name} --${name}`).toMatch(new RegExp(`^ {2}(-\\w, )?--${name}\\b`, "m"));
        for (const e of cmd.examples ?? []) expect(out.stdout, cmd.name).toContain(e);
      }
      expect(viaHelp.stdout).toBe(viaFlag.stdout);
    }
  });

  it("coord help and a group's help list the commands", async () => {
    const all = await coordInProcess(["help"]);
    expect(all.code).toBe(0);
    for (const cmd of COMMANDS) expect(all.stdout).toContain(`coord ${cmd.name}`);
    const group = await coordInProcess(["config", "--help"]);
    expect(group.code).toBe(0);
    expect(group.stdout).toContain("coord config set");
    expect(group.stdout).toContain("coord config use <profile>");
    expect(group.stdout).not.toContain("coord jobs submit");
  });
});

describe("coord completion", () => {
  it("prints a script for bash, zsh and fish naming every command word and every option", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const out = await coordInProcess(["completion", shell]);
      expect(out.code, shell).toBe(0);
      const script = out.stdout;
      expect(script).toContain(`coord completion ${shell}`);
      for (const cmd of COMMANDS) {
        for (const word of cmd.name.split(" ")) expect(script, `${shell}: ${cmd.name}`).toContain(word);
        for (const name of optionsOf(cmd)) {
          // bash and zsh spell options --name; fish declares them `-l name`.
          const spelled = shell === "fish" ? `-l ${name} ` : `--${name}`;
          expect(script, `${shell}: ${cmd.name} --${name}`).toContain(spelled);
        }
      }
      for (const name of Object.keys(GLOBAL))
        expect(script, `${shell} --${name}`).toContain(shell === "fish" ? `-l ${name} ` : `--${name}`);
    }
    const unknown = await coordInProcess(["completion", "powershell"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("bash, zsh, fish");
  });

  it("the bash script completes every command's words and options where bash asks", async () => {
    const script = (await coordInProcess(["completion", "bash"])).stdout;
    const dir = mkdtempSync(join(tmpdir(), "coord-completion-"));
    try {
      const file = join(dir, "coord.bash");
      writeFileSync(file, script);
      expect(spawnSync("bash", ["-n", file]).status).toBe(0);
      /** What bash would offer with the cursor at the end of `words` (the last one being typed). */
      const complete = (words: string[]): string[] => {
        const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ");
        const run = spawnSync(
          "bash",
          [
            "-c",
            `source ${file}; COMP_WORDS=(coord ${quoted}); COMP_CWORD=${words.length}; _coord; printf '%s\\n' "\${COMPREPLY[@]}"`,
          ],
          { cwd: dir, encoding: "utf8" },
        );
        expect(run.status, run.stderr).toBe(0);
        return run.stdout.split("\n").filter(Boolean);
      };
      const groups = new Set(COMMANDS.map((c) => c.name.split(" ")[0]));
      expect(complete([""])).toEqual(expect.arrayContaining([...groups]));
      for (const cmd of COMMANDS) {
        const words = cmd.name.split(" ");
        // Each word is offered after the ones before it.
        for (let i = 0; i < words.length; i++)
          expect(complete([...words.slice(0, i), ""]), cmd.name).toContain(words[i]);
        // Its options and the global ones, after the command words (and after its arguments).
        const options = [...optionsOf(cmd), ...Object.keys(GLOBAL)].map((o) => `--${o}`);
        expect(complete([...words, "--"]).sort(), cmd.name).toEqual(expect.arrayContaining(options));
        expect(complete([...words, "x", "--"]), cmd.name).toEqual(expect.arrayContaining(options));
      }
      // An option's value is not taken for a command word; a FILE value completes files.
      expect(complete(["--url", "http://x", "jobs", "w"])).toEqual(["watch"]);
      writeFileSync(join(dir, "job.json"), "{}");
      expect(complete(["jobs", "submit", "echo", "--input-file", "jo"])).toEqual(["job.json"]);
      expect(complete(["completion", ""])).toEqual(["bash", "zsh", "fish"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(hasShell("zsh"))("the zsh script is valid zsh", async () => {
    const dir = mkdtempSync(join(tmpdir(), "coord-completion-"));
    try {
      writeFileSync(join(dir, "_coord"), (await coordInProcess(["completion", "zsh"])).stdout);
      const check = spawnSync("zsh", ["-n", join(dir, "_coord")], { encoding: "utf8" });
      expect(check.status, check.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(hasShell("fish"))(
    "the fish script loads in fish and completes command words and options",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "coord-completion-"));
      try {
        const file = join(dir, "coord.fish");
        writeFileSync(file, (await coordInProcess(["completion", "fish"])).stdout);
        const run = spawnSync(
          "fish",
          [
            "--no-config",
            "-c",
            `source ${file}; complete -C 'coord jobs '; complete -C 'coord account ledger --'`,
          ],
          { encoding: "utf8", env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir } },
        );
        expect(run.status, run.stderr).toBe(0);
        const offered = run.stdout.split("\n").map((l) => l.split("\t")[0]);
        expect(offered).toEqual(expect.arrayContaining(["submit", "watch", "--limit", "--all", "--profile"]));
        expect(offered).not.toContain("--priority");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { coordWithIO, fundedClient, stack } from "./fixture.ts";

/*
 * Profiles (cli/profile.ts) on the real local stack: which coordinator and key a command uses when flags,
 * environment and the config file disagree (flag > env > profile > default), what `coord config set|show|use` do to
 * the file, and how a broken file is reported.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir() {
  const d = mkdtempSync(join(tmpdir(), "coord-profiles-"));
  dirs.push(d);
  return d;
}

/** A coordinator nobody listens on: a command sent there fails to connect. */
const DEAD_URL = "http://127.0.0.1:9";

/** `coord` in-process with exactly this environment (no COORD_URL from the fixture: the profile must supply it). */
function coord(args: string[], env: Record<string, string>) {
  return coordWithIO(args, { env });
}

describe("coord profiles", () => {
  it("a flag beats the environment, which beats the profile, which beats the default", async () => {
    const [a, b] = await Promise.all([fundedClient(), fundedClient()]);
    const config = join(tempDir(), "config.json");
    writeFileSync(
      config,
      JSON.stringify({
        default_profile: "good",
        profiles: { good: { url: stack.url, key: a.key }, dead: { url: DEAD_URL, key: b.key } },
      }),
      { mode: 0o600 },
    );
    const base = { COORD_CONFIG: config };
    const whoami = async (args: string[], env: Record<string, string> = {}) => {
      const out = await coord(["account", "--json", ...args], { ...base, ...env });
      return out.code === 0 ? (JSON.parse(out.stdout) as { id: string }).id : out.stderr;
    };

    // The default profile alone: its URL and key.
    expect(await whoami([])).toBe(a.id);
    // COORD_PROFILE picks another profile; --profile beats it.
    expect(await whoami([], { COORD_PROFILE: "dead" })).toContain(
      `cannot reach the coordinator at ${DEAD_URL}`,
    );
    expect(await whoami(["--profile", "good"], { COORD_PROFILE: "dead" })).toBe(a.id);
    // The environment beats the profile, setting by setting: here the URL from COORD_URL, the key from the profile.
    expect(await whoami([], { COORD_PROFILE: "dead", COORD_URL: stack.url })).toBe(b.id);
    expect(await whoami([], { COORD_API_KEY: b.key })).toBe(b.id);
    // A flag beats the environment.
    expect(await whoami(["--key", a.key], { COORD_API_KEY: b.key })).toBe(a.id);
    expect(await whoami(["--url", stack.url, "--profile", "dead"], { COORD_URL: DEAD_URL })).toBe(b.id);
    // An empty variable counts as unset.
    expect(await whoami([], { COORD_API_KEY: "", COORD_URL: "" })).toBe(a.id);

    // config show tells where each setting came from, keys masked.
    const shown = await coord(["config", "show", "--json", "--profile", "dead"], {
      ...base,
      COORD_URL: stack.url,
    });
    expect(shown.code, shown.stderr).toBe(0);
    const view = JSON.parse(shown.stdout);
    expect(view).toMatchObject({
      path: config,
      exists: true,
      default_profile: "good",
      profile: "dead",
      profile_source: "flag",
      url: stack.url,
      url_source: "env",
      key_source: "profile",
    });
    expect(view.key).toMatch(/^ck_…[0-9A-Za-z_-]{4}$/);
    expect(view.key).toBe(`ck_…${b.key.slice(-4)}`);
    expect(Object.keys(view.profiles)).toEqual(["good", "dead"]);
    expect(shown.stdout).not.toContain(a.key);
    expect(shown.stdout).not.toContain(b.key);

    // No file, no environment: the default URL and no key.
    const bare = await coord(["config", "show", "--json"], { COORD_CONFIG: join(tempDir(), "none.json") });
    expect(JSON.parse(bare.stdout)).toMatchObject({
      exists: false,
      url: "http://127.0.0.1:3000",
      url_source: "default",
      key: null,
      key_source: "default",
    });
    const keyless = await coord(["account"], { COORD_CONFIG: join(tempDir(), "none.json") });
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toContain("coord config set --key");
  });

  it("config set creates the file 0600 in a 0700 directory, keeps what it is not told, and config use switches", async () => {
    const client = await fundedClient();
    const xdg = join(tempDir(), "xdg");
    const env = { XDG_CONFIG_HOME: xdg };
    const file = join(xdg, "coord", "config.json");

    const first = await coord(["config", "set", "--url", `${stack.url}/`, "--key", client.key], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`saved profile 'default' in ${file}`);
    expect(first.stdout).not.toContain(client.key);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, "coord")).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({
      default_profile: "default",
      profiles: { default: { url: stack.url, key: client.key } },
    });
    // Now every command finds the coordinator and the key in it.
    const account = await coord(["account", "--json"], env);
    expect(account.code, account.stderr).toBe(0);
    expect(JSON.parse(account.stdout).id).toBe(client.id);

    // A second profile (not the default until asked), then only its URL changed: the key is kept.
    expect(
      (await coord(["config", "set", "--profile", "prod", "--url", DEAD_URL, "--key", "ck_x"], env)).code,
    ).toBe(0);
    expect(
      (await coord(["config", "set", "--profile", "prod", "--url", "https://coord.example"], env)).code,
    ).toBe(0);
    let saved = JSON.parse(readFileSync(file, "utf8"));
    expect(saved.default_profile).toBe("default");
    expect(saved.profiles.prod).toEqual({ url: "https://coord.example", key: "ck_x" });

    const used = await coord(["config", "use", "prod"], env);
    expect(used.code, used.stderr).toBe(0);
    saved = JSON.parse(readFileSync(file, "utf8"));
    expect(saved.default_profile).toBe("prod");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const shown = await coord(["config", "show"], env);
    expect(shown.stdout).toMatch(/^profile\s+prod \(default_profile\)$/m);
    expect(shown.stdout).toMatch(/^url\s+https:\/\/coord\.example \(profile\)$/m);
    expect(shown.stdout).toMatch(/^prod\s+https:\/\/coord\.example\s+ck_…\s+yes$/m);

    const unknown = await coord(["config", "use", "staging"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no profile 'staging' in ${file} (profiles: default, prod)`);
    const badUrl = await coord(["config", "set", "--url", "ftp://x"], env);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toContain("--url must be an http or https URL");
  });

  it("a malformed config file or an unknown profile is an error naming the file and the problem", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    const run = (args: string[], env: Record<string, string> = {}) =>
      coord(args, { COORD_CONFIG: file, COORD_URL: stack.url, ...env });
    const cases: [string, string][] = [
      ["{not json", `the config file ${file} is not valid JSON`],
      ["[]", `the config file ${file} is malformed: must be a JSON object`],
      ['{"profiles":{"a":{"url":42}}}', "profiles.a.url: must be a string"],
      ['{"profiles":{"a":{"ulr":"http://x"}}}', "profiles.a.ulr: unknown field (url, key)"],
      ['{"profiles":{"a":{"url":"localhost:3000"}}}', "profiles.a.url: must be an http or https URL"],
      ['{"default_profile":"b","profiles":{"a":{}}}', "default_profile: names 'b', which is not in profiles"],
    ];
    for (const [text, problem] of cases) {
      writeFileSync(file, text);
      const out = await run(["services", "list"]);
      expect(out.code, text).toBe(1);
      expect(out.stderr, text).toContain(file);
      expect(out.stderr, text).toContain(problem);
      expect(out.stdout).toBe("");
    }
    writeFileSync(file, JSON.stringify({ profiles: { a: { url: stack.url } } }));
    const unknown = await run(["services", "list"], { COORD_PROFILE: "b" });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `COORD_PROFILE names 'b', which is not a profile in ${file} (profiles: a)`,
    );
    const none = await coord(["services", "list", "--profile", "a"], {
      COORD_CONFIG: join(dir, "missing.json"),
    });
    expect(none.stderr).toContain(
      `--profile names 'a', but there is no config file at ${join(dir, "missing.json")}`,
    );
    // A directory where the file should be is reported too, not taken for "no file".
    mkdirSync(join(dir, "adir"));
    const notFile = await coord(["services", "list"], { COORD_CONFIG: join(dir, "adir") });
    expect(notFile.code).toBe(1);
    expect(notFile.stderr).toContain(`cannot read the config file ${join(dir, "adir")}`);
    // Completion reads no config: a broken one cannot break a shell's start-up.
    writeFileSync(file, "{not json");
    expect((await run(["completion", "bash"])).code).toBe(0);
  });
});

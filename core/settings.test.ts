import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../functions/api/app.ts";
import { assertSettings, SETTINGS, setting } from "./settings.ts";

describe("numeric settings", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(SETTINGS)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  it("a typo in COORD_QUEUE_SHARDS stops the app at creation, naming the setting", () => {
    process.env.COORD_QUEUE_SHARDS = "four";
    expect(() => createApp()).toThrow(/COORD_QUEUE_SHARDS must be a number, got "four"/);
  });

  it("every bad setting is named at once, with its bounds", () => {
    expect(() =>
      assertSettings({ COORD_QUEUE_SHARDS: "0", COORD_LEASE_SECONDS: "1.5", COORD_POLL_RECHECK_MS: "soon" }),
    ).toThrow(
      /COORD_LEASE_SECONDS must be a whole number[\s\S]*COORD_QUEUE_SHARDS \(ready-queue shards per service\) must be from 1 to 64[\s\S]*COORD_POLL_RECHECK_MS must be a number/,
    );
  });

  it("unset or empty is the default; a good value is taken", () => {
    expect(() => assertSettings({})).not.toThrow();
    delete process.env.COORD_CLAIM_SPREAD;
    expect(setting("COORD_CLAIM_SPREAD")).toBe(4);
    process.env.COORD_CLAIM_SPREAD = "";
    expect(setting("COORD_CLAIM_SPREAD")).toBe(4);
    process.env.COORD_CLAIM_SPREAD = "8";
    expect(setting("COORD_CLAIM_SPREAD")).toBe(8);
  });
});

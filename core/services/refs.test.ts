import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { Artifact, collectObjectRefs, HttpsUrl, MediaRef, ObjectRef } from "./refs.ts";

const ok = (schema: v.GenericSchema, value: unknown) => v.safeParse(schema, value).success;

describe("references", () => {
  it("a public https URL is a media reference", () => {
    expect(ok(MediaRef, "https://cdn.example.com/a/b.mp4?sig=1")).toBe(true);
    expect(ok(MediaRef, { bucket: "coord-uploads", key: "acct_1/b.mp4" })).toBe(true);
  });

  it("plain http, embedded credentials and private or metadata hosts are refused", () => {
    for (const url of [
      "http://cdn.example.com/a.mp4",
      "https://user:pw@cdn.example.com/a.mp4",
      "https://localhost/a.mp4",
      "https://127.0.0.1/a.mp4",
      "https://10.1.2.3/a.mp4",
      "https://192.168.0.5/a.mp4",
      "https://172.20.0.1/a.mp4",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/a.mp4",
      "https://[fd00::1]/a.mp4",
      "https://metadata.google.internal/",
    ])
      expect(ok(HttpsUrl, url), url).toBe(false);
    expect(ok(HttpsUrl, "https://172.32.0.1/a.mp4")).toBe(true);
  });

  it("an object reference follows S3 naming and has nothing else", () => {
    expect(ok(ObjectRef, { bucket: "Bad_Bucket", key: "k" })).toBe(false);
    expect(ok(ObjectRef, { bucket: "ok-bucket", key: "" })).toBe(false);
    expect(ok(ObjectRef, { bucket: "ok-bucket", key: "a\nb" })).toBe(false);
    expect(ok(ObjectRef, { bucket: "ok-bucket", key: "k", region: "x" })).toBe(false);
  });

  it("an artifact needs a url or an object and a sha-256", () => {
    const sha256 = "a".repeat(64);
    expect(ok(Artifact, { url: "http://localhost:4566/b/k", sha256 })).toBe(true);
    expect(ok(Artifact, { object: { bucket: "out-bucket", key: "k" }, sha256, extra: 1 })).toBe(true);
    expect(ok(Artifact, { sha256 })).toBe(false);
    expect(ok(Artifact, { url: "https://x.example.com/k", sha256: "nope" })).toBe(false);
  });

  it("collects every object reference in an input with its path", () => {
    const input = {
      scene: { bucket: "coord-uploads", key: "a/s.blend" },
      extras: [{ bucket: "coord-uploads", key: "a/tex.png" }, "https://x.example.com/y"],
      note: { bucket: "coord-uploads" },
    };
    expect(collectObjectRefs(input)).toEqual([
      { path: "input.scene", ref: { bucket: "coord-uploads", key: "a/s.blend" } },
      { path: "input.extras.0", ref: { bucket: "coord-uploads", key: "a/tex.png" } },
    ]);
  });
});

import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { Artifact, collectObjectRefs, HttpsUrl, MediaRef, ObjectRef } from "./refs.ts";

const ok = (schema: v.GenericSchema, value: unknown) => v.safeParse(schema, value).success;

describe("references", () => {
  it("a public https URL is a media reference", () => {
    expect(ok(MediaRef, "https://cdn.example.com/a/b.mp4?sig=1")).toBe(true);
    expect(ok(MediaRef, { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" })).toBe(true);
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

  it("an artifact reference is an artifact id and nothing else: no bucket or key is ever named by a caller", () => {
    expect(ok(ObjectRef, { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" })).toBe(true);
    expect(ok(ObjectRef, { artifact_id: "job_01aaaaaaaaaaaaaaaaaaaaaaaa" })).toBe(false);
    expect(ok(ObjectRef, { artifact_id: "art_short" })).toBe(false);
    expect(ok(ObjectRef, { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa", bucket: "x" })).toBe(false);
    expect(ok(ObjectRef, { bucket: "ok-bucket", key: "k" })).toBe(false);
  });

  it("an output artifact names its uploaded artifact or a link; a sha-256 it gives must be one", () => {
    const sha256 = "a".repeat(64);
    expect(ok(Artifact, { url: "http://localhost:4566/b/k", sha256 })).toBe(true);
    expect(ok(Artifact, { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa", extra: 1 })).toBe(true);
    expect(ok(Artifact, { sha256 })).toBe(false);
    expect(ok(Artifact, { url: "https://x.example.com/k", sha256: "nope" })).toBe(false);
  });

  it("collects every artifact reference in an input or an output with its path", () => {
    const input = {
      scene: { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" },
      extras: [{ artifact_id: "art_01bbbbbbbbbbbbbbbbbbbbbbbb" }, "https://x.example.com/y"],
      note: { artifact_id: "not-an-id" },
      frame: { artifact_id: "art_01cccccccccccccccccccccccc", sha256: "a".repeat(64), bytes: 3 },
    };
    expect(collectObjectRefs(input)).toEqual([
      { path: "input.scene", ref: { artifact_id: "art_01aaaaaaaaaaaaaaaaaaaaaaaa" } },
      { path: "input.extras.0", ref: { artifact_id: "art_01bbbbbbbbbbbbbbbbbbbbbbbb" } },
      { path: "input.frame", ref: { artifact_id: "art_01cccccccccccccccccccccccc" } },
    ]);
  });
});

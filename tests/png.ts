import { crc32, inflateSync } from "node:zlib";
import { expect } from "vitest";

/**
 * A PNG's size after checking it is one: the signature, every chunk's CRC-32, IHDR first (8-bit RGB, what the
 * Blender and stable-diffusion stand-ins write), IEND last, and the IDAT data inflating to exactly one filter byte and
 * `width` pixels per row.
 */
export function readPng(bytes: Uint8Array): { width: number; height: number } {
  const buf = Buffer.from(bytes);
  expect([...buf.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks: { type: string; data: Buffer }[] = [];
  for (let at = 8; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.subarray(at + 4, at + 8).toString("latin1");
    const data = buf.subarray(at + 8, at + 8 + length);
    expect(buf.readUInt32BE(at + 8 + length), `${type} CRC`).toBe(
      crc32(buf.subarray(at + 4, at + 8 + length)),
    );
    chunks.push({ type, data });
    at += 12 + length;
  }
  expect(chunks[0]?.type).toBe("IHDR");
  expect(chunks.at(-1)?.type).toBe("IEND");
  const ihdr = chunks[0]?.data as Buffer;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  expect([ihdr[8], ihdr[9]]).toEqual([8, 2]);
  const pixels = inflateSync(Buffer.concat(chunks.filter((c) => c.type === "IDAT").map((c) => c.data)));
  expect(pixels.length).toBe((1 + width * 3) * height);
  return { width, height };
}

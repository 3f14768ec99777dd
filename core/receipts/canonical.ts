import canonicalize from "canonicalize";

/**
 * RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON value, via the `canonicalize` package: what every signature
 * of the coordinator and of miners is taken over, so that any party re-serializing the same value gets the same bytes.
 * Browser-safe (no node:crypto): the SDK's offline verifier shares it.
 */
export function canonicalBytes(value: unknown): Uint8Array {
  const text = canonicalize(value);
  if (text === undefined) throw new Error("value has no canonical JSON form");
  return new TextEncoder().encode(text);
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** SHA-256 (hex) of a JSON value's canonical bytes, with WebCrypto (Node 20+ and browsers). */
export async function canonicalSha256(value: unknown): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", canonicalBytes(value)));
}

/** SHA-256 (hex) of a string's UTF-8 bytes, with WebCrypto. */
export async function textSha256(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export const base64url = {
  encode(bytes: Uint8Array): string {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(text: string): Uint8Array {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  },
};

import { createHash } from "node:crypto";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { type FauxqsServer, startFauxqs } from "fauxqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type S3Gate, startS3Gate } from "./s3-gate.ts";

// Independent of the stack the global setup starts: its own emulator, and the gate in front of it.
const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };
const REGION = "us-east-1";
const BUCKET = "gate-test";

let fauxqs: FauxqsServer;
let gate: S3Gate;
let signer: S3Client;
const uploaded: Array<[string, string]> = [];

function s3Client(endpoint: string, credentials = CREDENTIALS): S3Client {
  return new S3Client({
    region: REGION,
    endpoint,
    forcePathStyle: true,
    credentials,
    // As the coordinator's signer (core/artifacts/storage.ts): no checksum the client would have to compute.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/** A presigned PUT as the coordinator makes them: content type and length signed. */
function putUrl(key: string, body: Uint8Array, contentType = "application/octet-stream", client = signer) {
  return getSignedUrl(
    client,
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: key,
      ContentType: contentType,
      ContentLength: body.byteLength,
    }),
    { expiresIn: 60, signableHeaders: new Set(["content-type", "content-length"]) },
  );
}

async function put(url: string, body: Uint8Array, contentType = "application/octet-stream") {
  return fetch(url, { method: "PUT", body, headers: { "content-type": contentType } });
}

async function errorCode(res: Response): Promise<{ status: number; code: string; message: string }> {
  const text = await res.text();
  return {
    status: res.status,
    code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "",
    message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "",
  };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A stored object, read through the gate. */
async function stored(key: string, body: Uint8Array) {
  await put(await putUrl(key, body), body);
}

beforeAll(async () => {
  fauxqs = await startFauxqs({ port: 0, logger: false, host: "127.0.0.1" });
  const upstream = `http://127.0.0.1:${fauxqs.port}`;
  await s3Client(upstream).send(new CreateBucketCommand({ Bucket: BUCKET }));
  gate = await startS3Gate({
    upstream,
    ...CREDENTIALS,
    region: REGION,
    onUploaded: (bucket, key) => uploaded.push([bucket, key]),
  });
  signer = s3Client(gate.url);
});

afterAll(async () => {
  await gate?.stop();
  await fauxqs?.stop();
});

describe("s3 gate", () => {
  it("lets a presigned PUT and GET through, byte for byte, and reports the upload", async () => {
    const key = "artifacts/a b+c~!*()é";
    const body = new Uint8Array(256 * 1024).map((_, i) => (i * 31) % 256);
    const res = await put(await putUrl(key, body), body);
    expect(res.status).toBe(200);
    expect(uploaded).toContainEqual([BUCKET, key]);

    const get = await fetch(await getSignedUrl(signer, new GetObjectCommand({ Bucket: BUCKET, Key: key })));
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/octet-stream");
    // Compared by digest: a deep equality over 256 KiB element by element takes seconds.
    const got = new Uint8Array(await get.arrayBuffer());
    expect({ bytes: got.byteLength, sha256: sha256(got) }).toEqual({
      bytes: body.byteLength,
      sha256: sha256(body),
    });
  });

  it("accepts signed query parameters such as a response content disposition", async () => {
    const body = new TextEncoder().encode("report");
    await stored("artifacts/report", body);
    const url = await getSignedUrl(
      signer,
      new GetObjectCommand({
        Bucket: BUCKET,
        Key: "artifacts/report",
        ResponseContentDisposition: 'attachment; filename="a b;c.txt"',
      }),
      { expiresIn: 60 },
    );
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("report");
  });

  it("honours a URL until its expiry and refuses it after", async () => {
    const body = new TextEncoder().encode("short-lived");
    await stored("artifacts/short", body);
    const url = await getSignedUrl(signer, new GetObjectCommand({ Bucket: BUCKET, Key: "artifacts/short" }), {
      expiresIn: 1,
    });
    const now = await fetch(url);
    expect(now.status).toBe(200);
    expect(await now.text()).toBe("short-lived");

    await new Promise((r) => setTimeout(r, 2_100));
    const later = await fetch(url);
    expect(later.headers.get("content-type")).toBe("application/xml");
    expect(await errorCode(later)).toEqual({
      status: 403,
      code: "AccessDenied",
      message: "Request has expired",
    });
  });

  it("refuses a URL whose path or query was tampered with", async () => {
    await stored("artifacts/mine", new TextEncoder().encode("mine"));
    await stored("artifacts/theirs", new TextEncoder().encode("theirs"));
    const url = await getSignedUrl(signer, new GetObjectCommand({ Bucket: BUCKET, Key: "artifacts/mine" }), {
      expiresIn: 60,
    });
    const otherKey = url.replace("/artifacts/mine?", "/artifacts/theirs?");
    const longer = url.replace(/X-Amz-Expires=60/, "X-Amz-Expires=3600");
    const otherParam = `${url}&response-content-type=text%2Fhtml`;
    // A parameter named like an object's prototype is a parameter too, not something to drop before checking.
    const protoParam = `${url}&__proto__=a&__proto__=b`;
    for (const tampered of [otherKey, longer, otherParam, protoParam]) {
      expect(tampered).not.toBe(url);
      expect(await errorCode(await fetch(tampered))).toMatchObject({
        status: 403,
        code: "SignatureDoesNotMatch",
      });
    }
  });

  it("refuses a URL signed with another secret or another access key", async () => {
    await stored("artifacts/secret", new TextEncoder().encode("secret"));
    const command = new GetObjectCommand({ Bucket: BUCKET, Key: "artifacts/secret" });
    const wrongSecret = s3Client(gate.url, { accessKeyId: "local", secretAccessKey: "not-local" });
    const res = await fetch(await getSignedUrl(wrongSecret, command, { expiresIn: 60 }));
    expect(await errorCode(res)).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });

    // The signature of another key, pasted onto our URL.
    const ours = await getSignedUrl(signer, command, { expiresIn: 60 });
    const theirs = new URL(await getSignedUrl(wrongSecret, command, { expiresIn: 60 }));
    const pasted = new URL(ours);
    pasted.searchParams.set("X-Amz-Signature", theirs.searchParams.get("X-Amz-Signature")!);
    expect(await errorCode(await fetch(pasted))).toMatchObject({
      status: 403,
      code: "SignatureDoesNotMatch",
    });

    const wrongKey = s3Client(gate.url, { accessKeyId: "someone", secretAccessKey: "local" });
    const other = await fetch(await getSignedUrl(wrongKey, command, { expiresIn: 60 }));
    expect(await errorCode(other)).toMatchObject({ status: 403, code: "InvalidAccessKeyId" });
  });

  it("refuses a PUT whose content type or length is not the one signed, and stores nothing", async () => {
    const body = new TextEncoder().encode("12345");
    const url = await putUrl("artifacts/typed", body, "text/plain");
    const before = uploaded.length;

    const otherType = await put(url, body, "text/html");
    expect(await errorCode(otherType)).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    const otherLength = await put(url, new TextEncoder().encode("123456"), "text/plain");
    expect(await errorCode(otherLength)).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    expect(uploaded.length).toBe(before);
    const get = await fetch(
      await getSignedUrl(signer, new GetObjectCommand({ Bucket: BUCKET, Key: "artifacts/typed" })),
    );
    expect(get.status).toBe(404);

    expect((await put(url, body, "text/plain")).status).toBe(200);
    expect(uploaded.at(-1)).toEqual([BUCKET, "artifacts/typed"]);
  });

  it("refuses a request without query-string auth", async () => {
    await stored("artifacts/open", new TextEncoder().encode("open"));
    const res = await fetch(`${gate.url}/${BUCKET}/artifacts/open`);
    expect(res.headers.get("content-type")).toBe("application/xml");
    expect(await errorCode(res)).toEqual({ status: 403, code: "AccessDenied", message: "Access Denied" });
    const put = await fetch(`${gate.url}/${BUCKET}/artifacts/open`, { method: "PUT", body: "overwritten" });
    expect(await errorCode(put)).toMatchObject({ status: 403, code: "AccessDenied" });
  });
});

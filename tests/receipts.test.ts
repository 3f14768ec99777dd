import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IO } from "../cli/command.ts";
import { main } from "../cli/main.ts";
import { base64url, canonicalBytes } from "../core/receipts/canonical.ts";
import { rawPublicKey, signBytes } from "../core/receipts/ed25519.ts";
import { jsonSha256, sha256Hex } from "../core/receipts/receipt.ts";
import { publishedSigningKey } from "../core/receipts/signing-key.ts";
import { keyProofStatement, resultStatement } from "../core/receipts/statements.ts";
import { type PublishedKey, verifyReceipt } from "../core/receipts/verify.ts";
import {
  api,
  createAccount,
  eventually,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
  type TestMiner,
} from "./fixture.ts";
import { startReceiver } from "./webhooks-receiver.ts";

type Obj = Record<string, unknown>;
interface Doc {
  receipt: Obj;
  signature: string;
}

const publishedKeys = async () =>
  (await api<{ keys: PublishedKey[] }>("GET", "/v1/receipts/keys", { key: undefined })).body.keys;

/** A completed job (the miner charges `price`), returning the parties and the job id. */
async function completed(
  opts: { price?: number; output?: unknown; miner?: TestMiner; region?: string } = {},
) {
  const iso = opts.region ? { region: opts.region, constraints: { regions: [opts.region] } } : isolated();
  const client = await fundedClient(10_000_000);
  const miner =
    opts.miner ?? (await registeredMiner({ region: iso.region, prices: { echo: opts.price ?? 1000 } }));
  const sub = await submitEcho(client, {
    constraints: iso.constraints,
    input: { prompt: "a cat", n: 2 },
    max_price: 5000,
  });
  const { jobs } = await pollJobs(miner, { wait_seconds: 5 });
  const held = jobs.find((j) => j.job_id === sub.body.id);
  return { client, miner, jobId: sub.body.id, token: String(held?.claim_token), region: iso.region };
}

/** A miner account whose miner registered an Ed25519 key, proving it with a signed challenge. */
async function keyedMiner(region: string) {
  const account = await createAccount("miner");
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pub = rawPublicKey(publicKey);
  const name = `keyed-${Math.random().toString(36).slice(2)}`;
  const challenge = await api<Obj>("POST", "/v1/miners/challenge", { key: account.key });
  expect(challenge.status).toBe(201);
  const proof = signBytes(
    privateKey,
    canonicalBytes(
      keyProofStatement({
        challenge: String(challenge.body.challenge),
        account_id: account.id,
        miner_name: name,
        public_key: pub,
      }),
    ),
  );
  const miner = await registeredMiner(
    {
      name,
      region,
      prices: { echo: 500 },
      public_key: pub,
      key_proof: { challenge: challenge.body.challenge, signature: proof },
    },
    account,
  );
  return { miner, privateKey, pub, account, name, challenge: String(challenge.body.challenge) };
}

describe("receipts", () => {
  it("a completed job has one receipt, signed over its canonical body, that verifies with the published key", async () => {
    const { client, miner, jobId, token } = await completed({ price: 1000 });
    const output = { text: "a cat, twice", tokens: [1, 2, 3] };
    expect((await minerCall(miner, jobId, "result", { claim_token: token, output })).status).toBe(200);

    const res = await api<Doc>("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.receipt).toMatchObject({
      type: "coordinator.receipt.v1",
      job_id: jobId,
      service: "echo",
      attempt: 1,
      client_account_id: client.id,
      miner_account_id: miner.accountId,
      miner_id: miner.id,
      input_sha256: jsonSha256({ prompt: "a cat", n: 2 }),
      output_sha256: jsonSha256(output),
      units: 1,
      unit_price: 1000,
      amount: 1000,
      fee: 100,
      currency: "micro-credits",
      miner_signature: null,
    });
    // No key anywhere in it: accounts by id only.
    expect(JSON.stringify(doc)).not.toMatch(/ck_|mk_|ak_/);
    // The miner sees the same receipt, by job and by id; the history lists it once.
    const byMiner = await api<Doc>("GET", `/v1/receipts/${doc.receipt.receipt_id}`, { key: miner.key });
    expect(byMiner.body).toEqual(doc);
    const history = await api<{ receipts: Doc[] }>("GET", `/v1/jobs/${jobId}/receipts`, { key: client.key });
    expect(history.body.receipts).toEqual([doc]);

    // Verified by the API and offline, with nothing but the published keys.
    const keys = await publishedKeys();
    expect(keys.some((k) => k.key_id === doc.receipt.key_id && k.status === "current")).toBe(true);
    expect(await verifyReceipt(doc, keys)).toMatchObject({ valid: true, reasons: [] });
    const verdict = await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: doc });
    expect(verdict.body).toMatchObject({ valid: true, reasons: [], receipt_id: doc.receipt.receipt_id });

    // Any change to any field breaks it.
    for (const [field, value] of Object.entries({
      amount: 1,
      fee: 0,
      output_sha256: "0".repeat(64),
      attempt: 2,
    })) {
      const changed = { ...doc, receipt: { ...doc.receipt, [field]: value } };
      expect((await verifyReceipt(changed, keys)).reasons, field).toContain("bad_signature");
    }
    // Signed by another key under the published key's id: refused.
    const other = generateKeyPairSync("ed25519").privateKey;
    const forgedSig = {
      ...doc,
      signature: base64url.encode(new Uint8Array(sign(null, canonicalBytes(doc.receipt), other))),
    };
    expect((await verifyReceipt(forgedSig, keys)).reasons).toContain("bad_signature");
    // A key id nobody published: refused.
    const forgedId = { ...doc, receipt: { ...doc.receipt, key_id: "rk_00000000000000000000000000" } };
    expect(
      (await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: forgedId })).body,
    ).toMatchObject({
      valid: false,
      reasons: ["unknown_key"],
    });
    expect(
      (await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: { nope: 1 } })).body,
    ).toMatchObject({
      valid: false,
      reasons: ["malformed"],
    });
  });

  it("another account's receipt is 404, and a job not completed has none", async () => {
    const { client, miner, jobId, token } = await completed();
    const stranger = await fundedClient(10);
    const otherMiner = await createAccount("miner");
    expect((await api("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key })).status).toBe(404);
    expect(
      (await api<{ receipts: Doc[] }>("GET", `/v1/jobs/${jobId}/receipts`, { key: client.key })).body
        .receipts,
    ).toEqual([]);
    await minerCall(miner, jobId, "result", { claim_token: token, output: {} });
    const doc = (await api<Doc>("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key })).body;
    for (const key of [stranger.key, otherMiner.key]) {
      expect((await api("GET", `/v1/jobs/${jobId}/receipt`, { key })).status).toBe(404);
      expect((await api("GET", `/v1/jobs/${jobId}/receipts`, { key })).status).toBe(404);
      expect((await api("GET", `/v1/receipts/${doc.receipt.receipt_id}`, { key })).status).toBe(404);
    }
    expect((await api("GET", "/v1/receipts/rcpt_nope", { key: client.key })).status).toBe(404);
  });

  it("after a key rotation, receipts signed with the old key still verify", async () => {
    const { client, miner, jobId, token } = await completed();
    await minerCall(miner, jobId, "result", { claim_token: token, output: { before: "rotation" } });
    const old = (await api<Doc>("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key })).body;
    // Another coordinator instance starts with a new key: it publishes it before its first receipt.
    const { privateKey } = generateKeyPairSync("ed25519");
    const seed = base64url.encode(
      new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }).subarray(16)),
    );
    const saved = process.env.COORD_RECEIPT_SIGNING_KEY;
    process.env.COORD_RECEIPT_SIGNING_KEY = seed;
    try {
      const rotated = await publishedSigningKey();
      const body = { ...old.receipt, key_id: rotated.id, issued_at: new Date().toISOString() };
      const fresh = { receipt: body, signature: rotated.sign(body) };
      await eventually(async () => (await publishedKeys()).some((k) => k.key_id === rotated.id), 10_000);
      const keys = await publishedKeys();
      expect(await verifyReceipt(fresh, keys)).toMatchObject({ valid: true });
      expect(await verifyReceipt(old, keys)).toMatchObject({ valid: true });
      expect((await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: old })).body.valid).toBe(
        true,
      );
      expect(
        (await api<Obj>("POST", "/v1/receipts/verify", { key: client.key, body: fresh })).body.valid,
      ).toBe(true);
    } finally {
      process.env.COORD_RECEIPT_SIGNING_KEY = saved;
    }
  });

  it("emits receipt.issued.v1 to the client's webhook endpoints", async () => {
    const rx = await startReceiver();
    try {
      const { client, miner, jobId, token } = await completed();
      const ep = await api("POST", "/v1/webhooks/endpoints", {
        key: client.key,
        body: { url: rx.url, event_types: ["receipt.issued.v1"] },
      });
      expect(ep.status).toBe(201);
      await minerCall(miner, jobId, "result", { claim_token: token, output: {} });
      await eventually(async () => rx.received.length >= 1, 15_000);
      const body = JSON.parse(rx.received[0]?.body ?? "{}");
      expect(body).toMatchObject({ type: "receipt.issued.v1", data: { job_id: jobId, amount: 1000 } });
    } finally {
      await rx.close();
    }
  });
});

describe("miner co-signatures", () => {
  it("registration with a public key must prove it holds the key, with a challenge used once", async () => {
    const { region } = isolated();
    const account = await createAccount("miner");
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const pub = rawPublicKey(publicKey);
    const register = (body: Obj) =>
      api<Obj>("POST", "/v1/miners/register", {
        key: account.key,
        body: { name: "k1", services: ["echo"], region, public_key: pub, ...body },
      });
    const missing = await register({});
    expect(missing.status).toBe(422);
    expect(JSON.stringify(missing.body)).toContain("body.key_proof");
    const challenge = String(
      (await api<Obj>("POST", "/v1/miners/challenge", { key: account.key })).body.challenge,
    );
    const statement = keyProofStatement({
      challenge,
      account_id: account.id,
      miner_name: "k1",
      public_key: pub,
    });
    const wrongKey = signBytes(generateKeyPairSync("ed25519").privateKey, canonicalBytes(statement));
    const bad = await register({ key_proof: { challenge, signature: wrongKey } });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(bad.body)).toContain("body.key_proof.signature");
    const good = { challenge, signature: signBytes(privateKey, canonicalBytes(statement)) };
    expect((await register({ key_proof: good })).status).toBe(201);
    const again = await register({ key_proof: good });
    expect(again.status).toBe(422);
    expect(JSON.stringify(again.body)).toContain("body.key_proof.challenge");
    // Another account cannot spend this account's challenge.
    const other = await createAccount("miner");
    const theirs = String(
      (await api<Obj>("POST", "/v1/miners/challenge", { key: other.key })).body.challenge,
    );
    const stolen = keyProofStatement({
      challenge: theirs,
      account_id: account.id,
      miner_name: "k1",
      public_key: pub,
    });
    expect(
      (
        await register({
          key_proof: { challenge: theirs, signature: signBytes(privateKey, canonicalBytes(stolen)) },
        })
      ).status,
    ).toBe(422);
  });

  it("a keyed miner's result without its signature, or with a bad one, is 422 and the job stays held; a good one is embedded and verifies", async () => {
    const { region } = isolated();
    const k = await keyedMiner(region);
    const { client, jobId, token } = await completed({ miner: k.miner, region });
    const output = { answer: 42 };
    const statement = resultStatement({
      job_id: jobId,
      attempt: 1,
      claim_token_sha256: sha256Hex(token),
      output_sha256: jsonSha256(output),
    });
    const missing = await minerCall(k.miner, jobId, "result", { claim_token: token, output });
    expect(missing.status).toBe(422);
    expect(JSON.stringify(missing.body)).toContain("body.signature");
    const otherOutput = signBytes(
      k.privateKey,
      canonicalBytes({ ...statement, output_sha256: jsonSha256({ answer: 41 }) }),
    );
    expect(
      (await minerCall(k.miner, jobId, "result", { claim_token: token, output, signature: otherOutput }))
        .status,
    ).toBe(422);
    expect(
      (
        await minerCall(k.miner, jobId, "result", {
          claim_token: token,
          output,
          signature: "bogus-not-a-signature",
        })
      ).status,
    ).toBe(422);
    const wrongHash = await minerCall(k.miner, jobId, "result", {
      claim_token: token,
      output,
      output_sha256: "a".repeat(64),
    });
    expect(wrongHash.status).toBe(422);
    expect(JSON.stringify(wrongHash.body)).toContain("body.output_sha256");
    // Nothing changed: the job is still the miner's.
    expect((await api<Obj>("GET", `/v1/jobs/${jobId}`, { key: client.key })).body.status).toBe("assigned");

    const signature = signBytes(k.privateKey, canonicalBytes(statement));
    const done = await minerCall(k.miner, jobId, "result", {
      claim_token: token,
      output,
      output_sha256: jsonSha256(output),
      signature,
    });
    expect(done.status).toBe(200);
    const doc = (await api<Doc>("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key })).body;
    expect(doc.receipt.miner_signature).toEqual({
      public_key: k.pub,
      claim_token_sha256: sha256Hex(token),
      signature,
    });
    const keys = await publishedKeys();
    expect(await verifyReceipt(doc, keys)).toMatchObject({ valid: true });
    // A co-signature swapped for another breaks the receipt.
    const swapped = {
      ...doc,
      receipt: {
        ...doc.receipt,
        miner_signature: { ...(doc.receipt.miner_signature as Obj), signature: otherOutput },
      },
    };
    expect((await verifyReceipt(swapped, keys)).reasons).toEqual(
      expect.arrayContaining(["bad_signature", "bad_miner_signature"]),
    );
  });

  it("a miner without a key that sends a signature is told there is nothing to verify it with", async () => {
    const { miner, jobId, token } = await completed();
    const res = await minerCall(miner, jobId, "result", { claim_token: token, output: {}, signature: "x" });
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toContain("body.signature");
  });
});

describe("coord receipts verify", () => {
  it("verifies a receipt file offline and by id, and exits 2 for a changed one", async () => {
    const { client, miner, jobId, token } = await completed();
    await minerCall(miner, jobId, "result", { claim_token: token, output: { cli: true } });
    const doc = (await api<Doc>("GET", `/v1/jobs/${jobId}/receipt`, { key: client.key })).body;
    const dir = mkdtempSync(join(tmpdir(), "coord-receipts-"));
    try {
      const good = join(dir, "good.json");
      const bad = join(dir, "bad.json");
      const keys = join(dir, "keys.json");
      writeFileSync(good, JSON.stringify(doc));
      writeFileSync(bad, JSON.stringify({ ...doc, receipt: { ...doc.receipt, amount: 0 } }));
      writeFileSync(keys, JSON.stringify({ keys: await publishedKeys() }));
      const run = async (args: string[], key?: string) => {
        let stdout = "";
        const io: IO = {
          stdout: (t) => {
            stdout += t;
          },
          stderr: () => {},
          env: { COORD_URL: stack.url, ...(key ? { COORD_API_KEY: key } : {}) },
        };
        return { code: await main(args, io), stdout };
      };
      const offline = await run(["receipts", "verify", good, "--keys", keys, "--json"]);
      expect(offline.code).toBe(0);
      expect(JSON.parse(offline.stdout)).toMatchObject({ valid: true, receipt_id: doc.receipt.receipt_id });
      const changed = await run(["receipts", "verify", bad, "--keys", keys]);
      expect(changed.code).toBe(2);
      expect(changed.stdout).toContain("bad_signature");
      const byId = await run(["receipts", "verify", String(doc.receipt.receipt_id), "--json"], client.key);
      expect(byId.code).toBe(0);
      expect(JSON.parse(byId.stdout)).toMatchObject({ valid: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { createPublicClient, type Hex, http, keccak256, serializeTransaction } from "viem";
import { describe, expect, inject, it } from "vitest";
import type { IO } from "../cli/command.ts";
import { main } from "../cli/main.ts";
import { ddb } from "../core/db/client.ts";
import { transact } from "../core/db/transaction.ts";
import { newId } from "../core/ids.ts";
import { resultPut } from "../core/jobs/store.ts";
import { jsonSha256 } from "../core/receipts/receipt.ts";
import { leavesOf, sealDue } from "../core/settlement/batching.ts";
import { buildTree, parseAnchorCalldata } from "../core/settlement/merkle.ts";
import type { ProofView } from "../core/settlement/proofs.ts";
import { getBatch, getTreeLeaves, putBatchIfVersion, unbatchedListing } from "../core/settlement/store.ts";
import { verifyProof, verifyProofOnChain } from "../core/settlement/verify.ts";
import { moveSettlementLeaves } from "../local/move-settlement-leaves.ts";
import {
  api,
  createAccount,
  eventually,
  fundedClient,
  getItem,
  isolated,
  minerCall,
  pollJobs,
  queryPk,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

/*
 * Settlement on the real stack: receipts batched, anchored on the stack's local chain (ganache), confirmed from what
 * the chain says, proofs checked against the chain through RPC (viem), the chain webhook, and a reorg made with the
 * chain's snapshot/revert. The chain is shared with every other test file (their receipts are anchored too), and a
 * revert rolls back their anchors as well: only this file reads the chain, its tests run one after another, and
 * each waits for "confirmed" through the proof route rather than assuming a first anchor sticks.
 */

const chain = inject("chain");
const rpc = createPublicClient({ transport: http(chain.rpcUrl), cacheTime: 0 });
const call = (method: string, params: unknown[] = []) =>
  rpc.request({ method, params } as never) as Promise<unknown>;

type Obj = Record<string, unknown>;
type Proof = ProofView;

/** `n` completed jobs of one client, run by one miner, and their receipt ids. */
async function completedJobs(n: number) {
  const { region, constraints } = isolated();
  const client = await fundedClient(10_000_000);
  const miner = await registeredMiner({ region, prices: { echo: 1000 }, concurrency: n });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sub = await submitEcho(client, { constraints, input: { n: i }, max_price: 5000 });
    expect(sub.status, sub.text).toBe(201);
    ids.push(sub.body.id);
  }
  const held = new Map<string, string>();
  await eventually(async () => {
    for (const j of (await pollJobs(miner, { wait_seconds: 1 })).jobs) held.set(j.job_id, j.claim_token);
    return held.size === n;
  }, 15_000);
  for (const id of ids) {
    const res = await minerCall(miner, id, "result", { claim_token: held.get(id), output: { done: id } });
    expect(res.status, res.text).toBe(200);
  }
  return { client, miner, receiptIds: ids.map((id) => `rcpt_${id.slice(4)}`) };
}

const proofOf = (key: string, receiptId: string) =>
  api<Proof>("GET", `/v1/receipts/${receiptId}/proof`, { key });

/** The proof once confirmed (optionally: anchored by another transaction than `not`). */
function confirmed(key: string, receiptId: string, not?: string): Promise<Proof> {
  return eventually(
    async () => {
      const res = await proofOf(key, receiptId);
      expect(res.status, res.text).toBe(200);
      const p = res.body;
      return p.status === "confirmed" && p.transaction_hash !== not ? p : undefined;
    },
    40_000,
    200,
  );
}

/** The batch's events, in order: [type, data]. */
async function batchEvents(batchId: string): Promise<[string, Obj][]> {
  const items = await queryPk(`SETTLEBATCH#${batchId}`);
  return items
    .filter((i) => String(i.SK).startsWith("EVT#"))
    .map((i) => [String(i.type), i.data as Obj] as [string, Obj]);
}

/** Checks a confirmed proof against the chain, through the shared verifier and by hand with viem. */
async function expectOnChain(p: Proof, receipt: unknown) {
  expect(p.proof && p.root && verifyProof(p.leaf, p.proof, p.root)).toBe(true);
  const verdict = await verifyProofOnChain(p, {
    rpcUrl: chain.rpcUrl,
    anchorFrom: chain.anchorAddress,
    minConfirmations: p.required_confirmations,
    receipt,
  });
  expect(verdict, JSON.stringify(verdict)).toMatchObject({ valid: true, reasons: [] });
  // By hand: the transaction is the anchoring account's, its calldata carries the root, its block is the proof's.
  const hash = p.transaction_hash as Hex;
  const [tx, txReceipt] = await Promise.all([
    rpc.getTransaction({ hash }),
    rpc.getTransactionReceipt({ hash }),
  ]);
  expect(tx.from.toLowerCase()).toBe(chain.anchorAddress);
  expect(tx.input).toBe(p.calldata);
  expect(parseAnchorCalldata(tx.input)?.root).toBe(p.root);
  expect(txReceipt.status).toBe("success");
  expect(Number(txReceipt.blockNumber)).toBe(p.block_number);
  expect(txReceipt.blockHash).toBe(p.block_hash);
  expect(p.chain_id).toBe(chain.chainId);
}

/** Alchemy's Address Activity payload naming transactions of the anchoring account. */
function activity(hashes: string[]): string {
  return JSON.stringify({
    webhookId: "wh_test",
    id: `whevt_${randomBytes(6).toString("hex")}`,
    createdAt: new Date().toISOString(),
    type: "ADDRESS_ACTIVITY",
    event: {
      network: "ETH_LOCAL",
      activity: hashes.map((hash) => ({
        hash,
        blockNum: "0x1",
        fromAddress: chain.anchorAddress,
        toAddress: chain.anchorAddress,
        value: 0,
        asset: "ETH",
        category: "external",
      })),
    },
  });
}

const sign = (body: string, secret = chain.webhookSecret) =>
  createHmac("sha256", secret).update(body).digest("hex");

const hook = (body: string, signature?: string) =>
  api<Obj>("POST", "/v1/webhooks/chain", {
    raw: body,
    headers: {
      "content-type": "application/json",
      ...(signature === undefined ? {} : { "x-alchemy-signature": signature }),
    },
  });

let anchored: { proof: Proof; key: string } | undefined;

describe("settlement", () => {
  it("a batch of receipts is anchored on the local chain, and every proof verifies against the transaction read back through RPC", async () => {
    const { client, miner, receiptIds } = await completedJobs(5);
    const proofs: Proof[] = [];
    for (const id of receiptIds) {
      const p = await confirmed(client.key, id);
      const receipt = (await api<Obj>("GET", `/v1/receipts/${id}`, { key: client.key })).body;
      // The leaf is the receipt document's canonical SHA-256, as receipt.issued.v1 carried it.
      expect(p.leaf).toBe(`0x${jsonSha256(receipt)}`);
      expect(p.confirmations).toBeGreaterThanOrEqual(p.required_confirmations);
      await expectOnChain(p, receipt);
      // The miner that ran the job reads the same proof.
      const byMiner = (await proofOf(miner.key, id)).body;
      expect({ ...byMiner, confirmations: 0 }).toEqual({ ...p, confirmations: 0 });
      proofs.push(p);
    }
    // Every batch it took: sealed over exactly its leaves, anchored then confirmed, in its event history.
    for (const batchId of new Set(proofs.map((p) => p.batch_id as string))) {
      const types = (await batchEvents(batchId)).map(([t]) => t);
      expect(types).toContain("settlement.anchored.v1");
      expect(types.at(-1)).toBe("settlement.confirmed.v1");
      const leaves = await getTreeLeaves(batchId);
      expect(buildTree(leaves ?? []).root).toBe(proofs.find((p) => p.batch_id === batchId)?.root);
    }
    anchored = { proof: proofs[0] as Proof, key: client.key };
  }, 60_000);

  it("another account's proof is 404, as the receipt is; so is a receipt that does not exist", async () => {
    const { client, receiptIds } = await completedJobs(1);
    const id = receiptIds[0] as string;
    expect((await proofOf(client.key, id)).status).toBe(200);
    const stranger = await fundedClient(10);
    const otherMiner = await createAccount("miner");
    for (const key of [stranger.key, otherMiner.key]) {
      const res = await proofOf(key, id);
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.text).not.toContain("transaction_hash");
    }
    expect((await proofOf(client.key, `rcpt_${"0".repeat(26)}`)).status).toBe(404);
    expect((await proofOf(client.key, "rcpt_nope")).status).toBe(404);
  });

  it("coord receipts verify --rpc-url checks the anchoring against the chain and the pinned account; another root, sender or none pinned exits 2", async () => {
    expect(anchored).toBeDefined();
    const { proof, key } = anchored as { proof: Proof; key: string };
    // The anchoring is published beside the receipt keys, for verifiers to pin.
    const published = (await api<Obj>("GET", "/v1/receipts/keys")).body;
    expect(published.anchoring).toMatchObject({ account: chain.anchorAddress, chain_id: chain.chainId });
    const receipt = (await api<Obj>("GET", `/v1/receipts/${proof.receipt_id}`, { key })).body;
    const dir = mkdtempSync(join(tmpdir(), "coord-settlement-"));
    const file = (name: string, value: unknown) => {
      const path = join(dir, name);
      writeFileSync(path, JSON.stringify(value));
      return path;
    };
    const run = async (args: string[], withKey = true) => {
      let stdout = "";
      const io: IO = {
        stdout: (t) => {
          stdout += t;
        },
        stderr: () => {},
        env: { COORD_URL: stack.url, ...(withKey ? { COORD_API_KEY: key } : {}) },
      };
      const code = await main(["receipts", "verify", ...args, "--rpc-url", chain.rpcUrl, "--json"], io);
      return { code, out: JSON.parse(stdout) as Obj };
    };
    try {
      const receiptFile = file("receipt.json", receipt);
      const keys = file("keys.json", published);
      // Pinned keys and anchoring, the proof fetched with the key; and everything fetched, by id.
      for (const args of [[receiptFile, "--keys", keys], [String(proof.receipt_id)]]) {
        const ok = await run(args);
        expect(ok.code, JSON.stringify(ok.out)).toBe(0);
        expect(ok.out).toMatchObject({ valid: true, receipt: { valid: true }, settlement: { valid: true } });
      }
      // Fully offline but for the chain: the proof from a file, no API key.
      const proofFile = file("proof.json", proof);
      expect((await run([receiptFile, "--keys", keys, "--proof", proofFile], false)).code).toBe(0);

      const otherRoot = `0x${"ab".repeat(32)}`;
      const forged = await run(
        [receiptFile, "--keys", keys, "--proof", file("bad.json", { ...proof, root: otherRoot })],
        false,
      );
      expect(forged.code).toBe(2);
      expect((forged.out.settlement as Obj).reasons).toEqual(
        expect.arrayContaining(["bad_proof", "calldata_mismatch"]),
      );
      const otherAccount = {
        ...published,
        anchoring: { ...(published.anchoring as Obj), account: `0x${"11".repeat(20)}` },
      };
      const wrongSender = await run(
        [receiptFile, "--keys", file("k2.json", otherAccount), "--proof", proofFile],
        false,
      );
      expect(wrongSender.code).toBe(2);
      expect((wrongSender.out.settlement as Obj).reasons).toContain("wrong_sender");
      const none = await run(
        [receiptFile, "--keys", file("k3.json", { keys: published.keys }), "--proof", proofFile],
        false,
      );
      expect(none.code).toBe(2);
      expect((none.out.settlement as Obj).reasons).toEqual(["anchoring_unknown"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a chain webhook with a bad signature is 401 and changes nothing; a signed one is a hint the chain answers, and a replay changes nothing", async () => {
    expect(anchored).toBeDefined();
    const { proof, key } = anchored as { proof: Proof; key: string };
    const hash = proof.transaction_hash as string;
    const batchId = proof.batch_id as string;
    const state = async () => {
      const b = await getBatch(batchId);
      return {
        status: b?.status,
        txHash: b?.txHash,
        blockHash: b?.blockHash,
        events: await batchEvents(batchId),
      };
    };
    const before = await state();
    const body = activity([hash, `0x${"ab".repeat(32)}`, "not-a-hash"]);
    for (const signature of [
      undefined,
      "",
      "nope",
      sign(body, "another-secret"),
      sign(`${body} `),
      sign(body).replace(/^./, (c) => (c === "0" ? "1" : "0")),
    ]) {
      const res = await hook(body, signature);
      expect(res.status, `${signature}: ${res.text}`).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect(await state()).toEqual(before);

    const first = await hook(body, sign(body));
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({
      received: true,
      checked: [
        { transaction_hash: hash, batch_id: batchId, status: "confirmed" },
        { transaction_hash: `0x${"ab".repeat(32)}`, batch_id: null, status: null },
      ],
      skipped: 1,
    });
    // The same delivery again (Alchemy retries): the same answer, and nothing changed.
    const replay = await hook(body, sign(body));
    expect(replay.body).toEqual(first.body);
    expect(await state()).toEqual(before);
    expect((await proofOf(key, proof.receipt_id)).body.transaction_hash).toBe(hash);
    // Signed, but not Alchemy's shape: 422 naming the field, nothing read.
    const bad = JSON.stringify({
      webhookId: "wh",
      id: "x",
      createdAt: "now",
      type: "ADDRESS_ACTIVITY",
      event: {},
    });
    const refused = await hook(bad, sign(bad));
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain("body.event.activity");
  });

  it("sealers racing (this process's and the stack's cron): every receipt lands in exactly one batch, sealed over exactly the leaves it claimed", async () => {
    const saved = process.env.COORD_SETTLEMENT_BATCH_SIZE;
    // This process seals batches of 5 at most (the stack's cron, 16, races it on the same receipts).
    process.env.COORD_SETTLEMENT_BATCH_SIZE = "5";
    try {
      // Results filed as the completion files them (the result item listed as unbatched), while four sealers run.
      const fake = Array.from({ length: 30 }, () => {
        const jobId = newId("job");
        const doc = {
          receipt: { receipt_id: `rcpt_${jobId.slice(4)}` },
          signature: randomBytes(16).toString("hex"),
        };
        return { jobId, leaf: `0x${jsonSha256(doc)}`, doc };
      });
      const sealer = async () => {
        for (let i = 0; i < 8; i++) {
          await sealDue(new Date(Date.now() + 3_600_000));
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const file = async (f: (typeof fake)[number], i: number) => {
        await new Promise((r) => setTimeout(r, i * 5));
        const result = {
          outputJson: "{}",
          receiptJson: JSON.stringify(f.doc),
        };
        await transact({ result: resultPut(f.jobId, result, unbatchedListing(f.jobId, new Date())) });
      };
      await Promise.all([...fake.map(file), sealer(), sealer(), sealer(), sealer()]);

      // Each receipt is claimed by one batch, and that batch is sealed over exactly the leaves that name it.
      const refs = await eventually(async () => {
        await sealDue(new Date(Date.now() + 3_600_000));
        const all = await leavesOf(fake.map((f) => f.jobId));
        return all.length === fake.length && all.every((r) => r.batchId) ? all : undefined;
      }, 15_000);
      for (const f of fake) expect(refs.find((r) => r.jobId === f.jobId)?.leaf).toBe(f.leaf);
      const byBatch = new Map<string, string[]>();
      for (const r of refs)
        byBatch.set(r.batchId as string, [...(byBatch.get(r.batchId as string) ?? []), r.leaf]);
      const inTrees = new Map<string, number>();
      for (const [batchId, ours] of byBatch) {
        const b = await getBatch(batchId);
        expect(b?.status).not.toBe("sealing");
        const tree = (await getTreeLeaves(batchId)) ?? [];
        expect(tree.length).toBe(b?.leafCount);
        expect(buildTree(tree).root).toBe(b?.root);
        for (const l of ours) expect(tree).toContain(l);
        for (const l of tree) inTrees.set(l, (inTrees.get(l) ?? 0) + 1);
      }
      for (const f of fake) expect(inTrees.get(f.leaf), f.jobId).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.COORD_SETTLEMENT_BATCH_SIZE;
      else process.env.COORD_SETTLEMENT_BATCH_SIZE = saved;
    }
  });

  it("a table from before receipts waited on their result item keeps every leaf: a claimed one still names its batch, an unclaimed one is sealed", async () => {
    // Two results as the old layout left them: the receipt on the result item, its leaf in an item of its own.
    const old = Array.from({ length: 2 }, () => {
      const jobId = newId("job");
      const doc = {
        receipt: { receipt_id: `rcpt_${jobId.slice(4)}` },
        signature: randomBytes(16).toString("hex"),
      };
      return { jobId, receiptId: doc.receipt.receipt_id, doc, leaf: `0x${jsonSha256(doc)}` };
    });
    const [claimed, unclaimed] = old as [(typeof old)[0], (typeof old)[0]];
    const claimedBatch = newId("batch");
    for (const o of old) {
      const result = { outputJson: "{}", receiptJson: JSON.stringify(o.doc) };
      await transact({ result: resultPut(o.jobId, result) });
      await ddb().send(
        new PutCommand({
          TableName: stack.tableName,
          Item: {
            PK: `SETTLELEAF#${o.receiptId}`,
            SK: "LEAF",
            entity: "settlementLeaf",
            receiptId: o.receiptId,
            jobId: o.jobId,
            leaf: o.leaf,
            recordedAt: new Date().toISOString(),
            ...(o === claimed ? { batchId: claimedBatch } : {}),
          },
        }),
      );
    }
    expect(await moveSettlementLeaves(ddb(), stack.tableName)).toBe(2);
    for (const o of old) expect(await getItem(`SETTLELEAF#${o.receiptId}`, "LEAF")).toBeUndefined();
    const moved = await leavesOf([claimed.jobId, unclaimed.jobId]);
    const a = moved.find((l) => l.jobId === claimed.jobId);
    const b = moved.find((l) => l.jobId === unclaimed.jobId);
    expect(a).toMatchObject({ receiptId: claimed.receiptId, leaf: claimed.leaf, batchId: claimedBatch });
    const sealed = await eventually(async () => {
      await sealDue(new Date(Date.now() + 3_600_000));
      const [l] = await leavesOf([unclaimed.jobId]);
      return l?.batchId;
    }, 15_000);
    expect(b?.leaf).toBe(unclaimed.leaf);
    expect(await getTreeLeaves(sealed)).toContain(unclaimed.leaf);
    // Once moved, a table is not scanned again.
    expect(await moveSettlementLeaves(ddb(), stack.tableName)).toBe(0);
  });
});

/** The proof once anchored by a transaction other than those in `not` (mined or not). */
function anchoredBy(key: string, receiptId: string, not: string[] = []): Promise<Proof> {
  return eventually(
    async () => {
      const p = (await proofOf(key, receiptId)).body;
      return p.status !== "pending" && !not.includes(p.transaction_hash as string) ? p : undefined;
    },
    30_000,
    200,
  );
}

/** The hash of an EIP-1559 transaction as the node reports it, had it been signed at `nonce`. */
function signedHash(tx: Awaited<ReturnType<typeof rpc.getTransaction>>, nonce: number): Hex {
  return keccak256(
    serializeTransaction(
      {
        type: "eip1559",
        chainId: chain.chainId,
        nonce,
        to: tx.to,
        value: tx.value,
        gas: tx.gas,
        data: tx.input,
        maxFeePerGas: tx.maxFeePerGas,
        maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
        accessList: tx.accessList,
      },
      { r: tx.r, s: tx.s, yParity: tx.yParity ?? 0 },
    ),
  );
}

describe("a stuck anchoring transaction", () => {
  it("is replaced at its nonce by one offering more (settlement.replaced.v1), and the proof names the one mined", async () => {
    // The chain stops mining: the batch's anchor waits in the node's pool, as one with too low a fee would.
    expect(await call("miner_stop")).toBe(true);
    let done: { client: { key: string }; receiptIds: string[] };
    let stuck: Proof;
    let replacement: Proof;
    try {
      done = await completedJobs(2);
      const id = done.receiptIds[0] as string;
      stuck = await anchoredBy(done.client.key, id);
      // Read while the node still holds it (a replacement takes its place in the pool).
      const before = await rpc.getTransaction({ hash: stuck.transaction_hash as Hex });
      replacement = await anchoredBy(done.client.key, id, [stuck.transaction_hash as string]);
      expect(replacement).toMatchObject({ status: "anchored", batch_id: stuck.batch_id, root: stuck.root });

      // Same account, nonce and calldata; at least 12.5% more on the fee cap and on the tip. The nonce is the one
      // signed, checked by rebuilding the transaction's hash: ganache renumbers a pooled replacement in its answers.
      const after = await rpc.getTransaction({ hash: replacement.transaction_hash as Hex });
      expect(after.from).toBe(before.from);
      expect(signedHash(after, before.nonce)).toBe(replacement.transaction_hash);
      expect(after.input).toBe(before.input);
      expect((after.maxFeePerGas ?? 0n) * 8n).toBeGreaterThanOrEqual((before.maxFeePerGas ?? 0n) * 9n);
      expect((after.maxPriorityFeePerGas ?? 0n) * 8n).toBeGreaterThanOrEqual(
        (before.maxPriorityFeePerGas ?? 0n) * 9n,
      );
      const replaced = (await batchEvents(stuck.batch_id as string)).find(
        ([t, d]) => t === "settlement.replaced.v1" && d.transaction_hash === replacement.transaction_hash,
      );
      expect(replaced?.[1]).toMatchObject({
        batch_id: stuck.batch_id,
        root: stuck.root,
        replaces: stuck.transaction_hash,
        nonce: before.nonce,
        max_fee_per_gas: String(after.maxFeePerGas),
        reason: "stuck",
      });
    } finally {
      await call("miner_start");
    }

    // Mining again: the batch is confirmed by one of the transactions it sent at that nonce, checked on chain.
    for (const id of done.receiptIds) {
      const p = await confirmed(done.client.key, id);
      const batch = await getBatch(p.batch_id as string);
      expect([batch?.txHash, ...(batch?.replaced ?? [])]).toContain(stuck.transaction_hash);
      expect(batch?.txHash).toBe(p.transaction_hash);
      const receipt = (await api<Obj>("GET", `/v1/receipts/${id}`, { key: done.client.key })).body;
      await expectOnChain(p, receipt);
    }
  }, 60_000);

  it("when a transaction it replaced is what was mined, that one anchors the batch", async () => {
    const { client, receiptIds } = await completedJobs(1);
    const id = receiptIds[0] as string;
    const mined = await confirmed(client.key, id);
    // As the batch would stand had the mined transaction been replaced by one that never made it into a block
    // (rewritten on its version: the cron may be marking it final meanwhile).
    const lost = `0x${randomBytes(32).toString("hex")}`;
    const b = await eventually(async () => {
      const now = await getBatch(mined.batch_id as string);
      if (!now) throw new Error("no batch");
      const asReplaced = {
        ...now,
        status: "anchored" as const,
        version: now.version + 1,
        txHash: lost,
        replaced: [mined.transaction_hash as string],
        blockNumber: undefined,
        blockHash: undefined,
        confirmedAt: undefined,
        final: undefined,
      };
      return (await putBatchIfVersion(asReplaced, now.version)) ? now : undefined;
    });

    const again = await eventually(async () => {
      const now = await getBatch(b.id);
      return now?.status === "confirmed" ? now : undefined;
    }, 20_000);
    expect(again).toMatchObject({
      txHash: mined.transaction_hash,
      replaced: [lost],
      blockHash: mined.block_hash,
    });
    const confirmations = (await batchEvents(b.id)).filter(([t]) => t === "settlement.confirmed.v1");
    expect(confirmations.at(-1)?.[1]).toMatchObject({ transaction_hash: mined.transaction_hash });
    expect((await proofOf(client.key, id)).body).toMatchObject({ transaction_hash: mined.transaction_hash });
  }, 40_000);
});

describe("a reorg", () => {
  it("un-confirms the batch (settlement.reverted.v1), which is re-anchored, and the proof then names the new transaction", async () => {
    // Before the receipts exist, so that their batch's anchor is mined after it.
    const snapshot = (await call("evm_snapshot")) as string;
    const { client, receiptIds } = await completedJobs(3);
    const first = await Promise.all(receiptIds.map((id) => confirmed(client.key, id)));
    const receipts = await Promise.all(
      receiptIds.map(async (id) => (await api<Obj>("GET", `/v1/receipts/${id}`, { key: client.key })).body),
    );
    for (const [i, p] of first.entries()) await expectOnChain(p, receipts[i]);

    // The chain drops every block since the snapshot, the anchors among them, and goes on.
    expect(await call("evm_revert", [snapshot])).toBe(true);
    await call("evm_mine");
    await call("evm_mine");

    for (const [i, old] of first.entries()) {
      const now = await confirmed(client.key, receiptIds[i] as string, old.transaction_hash as string);
      // Same batch, same root, same path: a new transaction in a new block.
      expect(now).toMatchObject({ batch_id: old.batch_id, root: old.root, proof: old.proof, leaf: old.leaf });
      expect(now.transaction_hash).not.toBe(old.transaction_hash);
      await expectOnChain(now, receipts[i]);
      // The old proof no longer checks out against the chain.
      const stale = await verifyProofOnChain(old, { rpcUrl: chain.rpcUrl, anchorFrom: chain.anchorAddress });
      expect(stale.valid).toBe(false);

      const events = await batchEvents(old.batch_id as string);
      const reverted = events.find(
        ([t, d]) => t === "settlement.reverted.v1" && d.transaction_hash === old.transaction_hash,
      );
      expect(reverted?.[1]).toMatchObject({ batch_id: old.batch_id, root: old.root, reason: "reorged" });
      const after = events
        .slice(events.indexOf(reverted as [string, Obj]) + 1)
        .map(([t, d]) => [t, d.transaction_hash]);
      // Anchored anew by that transaction (or by one it replaced, had the chain been slow to mine it).
      const sentBy = after.filter(([t]) => t === "settlement.anchored.v1" || t === "settlement.replaced.v1");
      expect(sentBy.map(([, hash]) => hash)).toContain(now.transaction_hash);
      expect(after).toContainEqual(["settlement.confirmed.v1", now.transaction_hash]);
    }
  }, 60_000);
});

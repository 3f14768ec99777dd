import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import {
  api,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

type Check = {
  ok: boolean;
  accounts: number;
  entries: number;
  sum_of_entries: number;
  mismatches: { account_id: string; available: number; entries_available: number }[];
  unstable: string[];
};

const check = async () => {
  const res = await api<Check>("GET", "/v1/admin/ledger/check", { key: stack.adminKey });
  expect(res.status).toBe(200);
  return res.body;
};

/** Moves an account's balance behind the ledger's back (as a bug or a hand edit would), then back. */
const nudge = (accountId: string, delta: number) =>
  ddb().send(
    new UpdateCommand({
      TableName: stack.tableName,
      Key: { PK: `ACCOUNT#${accountId}`, SK: "ACCOUNT" },
      UpdateExpression: "SET available = available + :d, version = version + :one",
      ExpressionAttributeValues: { ":d": delta, ":one": 1 },
    }),
  );

describe("the ledger check", () => {
  it("finds every balance equal to its entries and all entries summing to zero after jobs, failures, cancels and adjustments", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient(5_000_000);
    const miner = await registeredMiner({ region, concurrency: 3 });
    const [done, failed, cancelled] = await Promise.all(
      [0, 1, 2].map(() => submitEcho(client, { constraints, max_price: 100_000 })),
    );
    const held = (await pollJobs(miner, { wait_seconds: 5, max_jobs: 3 })).jobs;
    const token = (id: string) => held.find((j) => j.job_id === id)?.claim_token;
    await minerCall(miner, String(done?.body.id), "start", { claim_token: token(String(done?.body.id)) });
    expect(
      (
        await minerCall(miner, String(done?.body.id), "result", {
          claim_token: token(String(done?.body.id)),
          output: {},
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await minerCall(miner, String(failed?.body.id), "fail", {
          claim_token: token(String(failed?.body.id)),
          error_code: "boom",
          retryable: false,
        })
      ).status,
    ).toBe(200);
    expect((await api("POST", `/v1/jobs/${cancelled?.body.id}/cancel`, { key: client.key })).status).toBe(
      200,
    );
    expect(
      (
        await api("POST", `/v1/admin/accounts/${client.id}/adjust`, {
          key: stack.adminKey,
          body: { amount: -1234, reason: "test debit" },
        })
      ).status,
    ).toBeLessThan(300);

    const result = await check();
    expect(result.sum_of_entries).toBe(0);
    expect(result.accounts).toBeGreaterThan(2);
    expect(result.entries).toBeGreaterThan(6);
    const ours = [client.id, miner.accountId];
    expect(result.mismatches.filter((m) => ours.includes(m.account_id))).toEqual([]);
    // Nothing else on the shared stack breaks the ledger either (tests only move money through the API).
    expect(result.mismatches).toEqual([]);
  });

  it("names an account whose balance moved without a ledger entry", async () => {
    const client = await fundedClient(1_000_000);
    await nudge(client.id, 5);
    try {
      const result = await check();
      expect(result.ok).toBe(false);
      expect(result.mismatches).toContainEqual(
        expect.objectContaining({
          account_id: client.id,
          available: 1_000_005,
          entries_available: 1_000_000,
        }),
      );
      // The entries themselves still balance: the money was made outside them.
      expect(result.sum_of_entries).toBe(0);
    } finally {
      await nudge(client.id, -5);
    }
  });
});

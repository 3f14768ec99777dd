import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { ddb } from "../core/db/client.ts";
import { TransactionRefused, transact } from "../core/db/transaction.ts";
import { getItem, stack } from "./fixture.ts";

const key = (name: string) => ({ PK: `TXTEST#${Math.random().toString(36).slice(2)}#${name}`, SK: "TXTEST" });

describe("a transaction of named items", () => {
  it("a refusal names the item that refused (and its old image, when asked), and writes nothing", async () => {
    const counter = key("counter");
    await ddb().send(new PutCommand({ TableName: stack.tableName, Item: { ...counter, n: 5 } }));
    const fresh = key("fresh");
    const ledger = [key("a"), key("b")];
    let caught: unknown;
    try {
      await transact({
        fresh: { Put: { TableName: stack.tableName, Item: { ...fresh, v: 1 } } },
        // A group of two under one name; the second refuses.
        ledger: [
          { Put: { TableName: stack.tableName, Item: { ...ledger[0], v: 1 } } },
          {
            ConditionCheck: {
              TableName: stack.tableName,
              Key: ledger[1] as Record<string, string>,
              ConditionExpression: "attribute_exists(PK)",
            },
          },
        ],
        skipped: undefined,
        counter: {
          Update: {
            TableName: stack.tableName,
            Key: counter,
            UpdateExpression: "SET n = n + :one",
            ConditionExpression: "n < :max",
            ExpressionAttributeValues: { ":one": 1, ":max": 5 },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          },
        },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TransactionRefused);
    const refused = caught as TransactionRefused;
    expect([...refused.refused].sort()).toEqual(["counter", "ledger"]);
    expect(refused.refusedBy("fresh")).toBe(false);
    expect(refused.oldImage("counter")).toMatchObject({ n: 5 });
    expect(refused.oldImage("ledger")).toBeUndefined();
    expect(refused.conflicted).toBe(false);
    expect(refused.jobChanged).toBe(false);
    expect(await getItem(fresh.PK, fresh.SK)).toBeUndefined();
    expect(await getItem(counter.PK, counter.SK)).toMatchObject({ n: 5 });
  });

  it("commits every item when no condition refuses, in the order given", async () => {
    const a = key("a");
    const b = key("b");
    await transact({
      a: { Put: { TableName: stack.tableName, Item: { ...a, v: 1 } } },
      b: [{ Put: { TableName: stack.tableName, Item: { ...b, v: 2 } } }],
    });
    expect(await getItem(a.PK, a.SK)).toMatchObject({ v: 1 });
    expect(await getItem(b.PK, b.SK)).toMatchObject({ v: 2 });
  });
});

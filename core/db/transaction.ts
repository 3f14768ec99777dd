import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, type TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { ddb } from "./client.ts";

/** One action of a TransactWriteItems. */
export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/**
 * A transaction's items by name (in the order given): a refusal says which named item refused, never a position. A
 * name may stand for several items (a posting's account update and ledger entry); an undefined entry is left out.
 */
export type NamedItems = Record<string, TransactItem | readonly TransactItem[] | undefined>;

/** The transaction was refused: which named items' conditions failed, and what they held then, when they said. */
export class TransactionRefused extends Error {
  constructor(
    /** The names whose condition failed. */
    readonly refused: ReadonlySet<string>,
    /** The old image of a refusing item, by name (items that asked: ReturnValuesOnConditionCheckFailure). */
    private readonly images: ReadonlyMap<string, Record<string, unknown>>,
    /** Whether another transaction touched one of the items meanwhile (TransactionConflict). */
    readonly conflicted: boolean,
  ) {
    super(
      `transaction refused by ${[...refused].join(", ") || (conflicted ? "a conflict" : "nothing named")}`,
    );
    this.name = "TransactionRefused";
  }

  refusedBy(name: string): boolean {
    return this.refused.has(name);
  }

  oldImage(name: string): Record<string, unknown> | undefined {
    return this.images.get(name);
  }

  /** The job item refused (its state or version moved): the caller may read it again and retry. */
  get jobChanged(): boolean {
    return this.refusedBy("job");
  }
}

/** Runs the items as one TransactWriteItems; a cancellation becomes a TransactionRefused naming the refusers. */
export async function transact(items: NamedItems, opts: { token?: string } = {}): Promise<void> {
  const flat: { name: string; item: TransactItem }[] = [];
  for (const [name, value] of Object.entries(items)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value as TransactItem]) flat.push({ name, item });
  }
  try {
    await ddb().send(
      new TransactWriteCommand({ TransactItems: flat.map((f) => f.item), ClientRequestToken: opts.token }),
    );
  } catch (err) {
    const reasons = (
      err as { CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] }
    ).CancellationReasons;
    if ((err as Error).name !== "TransactionCanceledException" || !reasons) throw err;
    const refused = new Set<string>();
    const images = new Map<string, Record<string, unknown>>();
    reasons.forEach((r, i) => {
      const name = flat[i]?.name;
      if (name === undefined || r.Code !== "ConditionalCheckFailed") return;
      refused.add(name);
      // Returned items come back marshalled, even through the document client.
      if (r.Item && !images.has(name)) images.set(name, unmarshall(r.Item));
    });
    throw new TransactionRefused(
      refused,
      images,
      reasons.some((r) => r.Code === "TransactionConflict"),
    );
  }
}

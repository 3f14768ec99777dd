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
  const command = new TransactWriteCommand({
    TransactItems: flat.map((f) => f.item),
    ClientRequestToken: opts.token,
  });
  try {
    await retryingConflicts(() => ddb().send(command));
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

/** Whether a cancelled transaction lost only to another transaction on one of its items (nothing was refused). */
export function onlyConflicted(err: unknown): boolean {
  const reasons = (err as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
  if ((err as Error)?.name !== "TransactionCanceledException" || !reasons) return false;
  return (
    reasons.some((r) => r.Code === "TransactionConflict") &&
    !reasons.some((r) => r.Code === "ConditionalCheckFailed")
  );
}

/**
 * Runs `send` again, after a short random pause, while DynamoDB cancels it for a conflict alone: two transactions that
 * touch one item at once (a busy client's account, a miner's) are not serialized by DynamoDB but refused, and a
 * cancelled transaction wrote nothing, so sending it again is safe. DynamoDB Local serializes transactions instead,
 * so offline this never fires; the policy has its own unit test.
 */
export async function retryingConflicts<T>(
  send: () => Promise<T>,
  opts: { attempts?: number; baseMs?: number } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 6;
  const baseMs = opts.baseMs ?? 10;
  for (let i = 1; ; i++) {
    try {
      return await send();
    } catch (err) {
      if (i >= attempts || !onlyConflicted(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * baseMs * 2 ** i));
    }
  }
}

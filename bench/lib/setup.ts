import type { LocalStack } from "../../local/stack.ts";
import { call, type Http } from "./http.ts";

export interface Account {
  id: string;
  key: string;
}

/** An account and a root key, through the admin API. */
export async function createAccount(
  http: Http,
  stack: LocalStack,
  kind: "client" | "miner",
): Promise<Account> {
  const name = `bench-${kind}-${Math.random().toString(36).slice(2, 10)}`;
  const acct = await call(() =>
    http.post<{ id: string }>("/v1/admin/accounts", { name, kind }, { key: stack.adminKey }),
  );
  if (acct.status !== 201) throw new Error(`create account: ${acct.status} ${JSON.stringify(acct.body)}`);
  const key = await call(() =>
    http.post<{ key: string }>(`/v1/admin/accounts/${acct.body.id}/keys`, {}, { key: stack.adminKey }),
  );
  if (key.status !== 201) throw new Error(`create key: ${key.status} ${JSON.stringify(key.body)}`);
  return { id: acct.body.id, key: key.body.key };
}

/** A client account credited through the ledger (admin adjust). */
export async function fundedClient(
  http: Http,
  stack: LocalStack,
  amount = 1_000_000_000_000,
): Promise<Account> {
  const client = await createAccount(http, stack, "client");
  const res = await call(() =>
    http.post(
      `/v1/admin/accounts/${client.id}/adjust`,
      { amount, reason: "benchmark funding" },
      { key: stack.adminKey },
    ),
  );
  if (res.status >= 300) throw new Error(`adjust: ${res.status} ${JSON.stringify(res.body)}`);
  return client;
}

export interface Miner {
  id: string;
  key: string;
  headers: Record<string, string>;
}

/** A miner account with one registered miner running echo. */
export async function registeredMiner(http: Http, stack: LocalStack, concurrency: number): Promise<Miner> {
  const acct = await createAccount(http, stack, "miner");
  const res = await call(() =>
    http.post<{ miner_id: string }>(
      "/v1/miners/register",
      {
        name: `bench-${Math.random().toString(36).slice(2, 10)}`,
        services: ["echo"],
        concurrency,
        prices: { echo: 50 },
      },
      { key: acct.key },
    ),
  );
  if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.miner_id, key: acct.key, headers: { "x-miner-id": res.body.miner_id } };
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

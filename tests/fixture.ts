import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { inject } from "vitest";
import { ddb } from "../core/db/client.ts";

/** The one shared fixture: the running local stack, an HTTP helper and direct table access. */
export const stack = inject("stack");

export interface Res<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(`${stack.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export async function createAccount(kind: "client" | "miner" | "admin", name = `${kind}-${Math.random()}`) {
  const acct = await api<{ id: string }>("POST", "/v1/admin/accounts", {
    key: stack.adminKey,
    body: { name, kind },
  });
  if (acct.status !== 201) throw new Error(`account: ${acct.status} ${acct.text}`);
  const key = await api<{ key: string; key_id: string }>("POST", `/v1/admin/accounts/${acct.body.id}/keys`, {
    key: stack.adminKey,
    body: {},
  });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${key.text}`);
  return { id: acct.body.id, key: key.body.key, keyId: key.body.key_id };
}

export async function getItem(PK: string, SK: string) {
  const out = await ddb().send(new GetCommand({ TableName: stack.tableName, Key: { PK, SK } }));
  return out.Item;
}

export async function queryPk(PK: string) {
  const out = await ddb().send(
    new QueryCommand({
      TableName: stack.tableName,
      KeyConditionExpression: "PK = :pk",
      ExpressionAttributeValues: { ":pk": PK },
    }),
  );
  return out.Items ?? [];
}

/** Polls `fn` until it returns a truthy value or the timeout passes (for asynchronous, event-driven effects). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

import {
  CreateKeyInput,
  delegateKey,
  ListKeysQuery,
  listKeys,
  RotateKeyInput,
  revokeKey,
  rotateKey,
} from "../../../core/accounts/keys.ts";
import { ctxOf, requireScope } from "../auth.ts";
import { readJson } from "../body.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const canRead = requireScope("keys:read");
const canWrite = requireScope("keys:write");
const reads = rateLimit("read");
const writes = rateLimit("write");

/** A key holder's own keys. */
export const apiKeys = documentedRoutes("/v1/keys", "keys")
  .get(
    "/",
    {
      summary: "The caller's account's API keys (never the key itself); needs keys:read",
      auth: "any",
      query: ListKeysQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    canRead,
    reads,
    async (c) => c.json(await listKeys(c.var.principal.accountId, c.req.query())),
  )
  .post(
    "/",
    {
      summary:
        "Mint a key delegated from the caller's key: a subset of its scopes, expiring no later (shown once); needs keys:write",
      auth: "any",
      body: CreateKeyInput,
      responses: {
        "201": "created: {key, key_id, ...}",
        "403": "a scope the caller's key lacks",
        "422": "an expiry past the caller's key's",
      },
    },
    canWrite,
    writes,
    async (c) => {
      c.header("Cache-Control", "no-store");
      return c.json(await delegateKey(await readJson(c), ctxOf(c)), 201);
    },
  )
  .post(
    "/:key_id/revoke",
    {
      summary: "Revoke a key and every key delegated from it; needs keys:write",
      auth: "any",
      responses: { "200": "the revoked key" },
    },
    canWrite,
    writes,
    async (c) => c.json(await revokeKey(c.req.param("key_id"), ctxOf(c), "owner")),
  )
  .delete(
    "/:key_id",
    {
      summary: "Same as POST /v1/keys/{key_id}/revoke",
      auth: "any",
      responses: { "200": "the revoked key" },
    },
    canWrite,
    writes,
    async (c) => c.json(await revokeKey(c.req.param("key_id"), ctxOf(c), "owner")),
  )
  .post(
    "/:key_id/rotate",
    {
      summary:
        "Replace a key with a new one (shown once); the old one works for grace_seconds more; needs keys:write",
      auth: "any",
      body: RotateKeyInput,
      responses: {
        "201": "the new key and the previous one",
        "409": "the key is not active or was rotated already",
      },
    },
    canWrite,
    writes,
    async (c) => {
      c.header("Cache-Control", "no-store");
      return c.json(await rotateKey(c.req.param("key_id"), await readJson(c), ctxOf(c), "owner"), 201);
    },
  ).app;

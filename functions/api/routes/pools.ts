import {
  AddMemberInput,
  addMember,
  CreatePoolInput,
  createPool,
  getPool,
  ListPoolsQuery,
  listMembers,
  listPoolMiners,
  listPools,
  removeMember,
  UpdatePoolInput,
  updatePool,
} from "../../../core/pools/pools.ts";
import { ctxOf, requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/*
 * Private pools (docs/pools.md). Miner accounts own pools and attach their miners; client accounts are members whose
 * jobs may target a pool. A pool the caller neither owns nor belongs to is 404; an owner-only action by a member is
 * 403.
 */
const kinds: ("client" | "miner")[] = ["client", "miner"];
const read = [requireAuth({ kinds, scope: "pools:read" }), rateLimit("read")] as const;
const write = [requireAuth({ kinds, scope: "pools:write" }), rateLimit("write")] as const;

export const pools = documentedRoutes("/v1/pools", "pools")
  .post(
    "/",
    {
      summary: "Create a private pool (miner accounts; Idempotency-Key); needs pools:write",
      auth: "any",
      body: CreatePoolInput,
      responses: { "201": "the pool", "403": "not a miner account" },
    },
    ...write,
    async (c) => {
      const { pool, replayed } = await createPool(c.var.principal, await readJson(c), ctxOf(c), {
        idempotencyKey: c.req.header("idempotency-key"),
      });
      if (replayed) c.header("Idempotent-Replayed", "true");
      return c.json(pool, 201);
    },
  )
  .get(
    "/",
    {
      summary: "Pools the caller owns or belongs to, newest first; needs pools:read",
      auth: "any",
      query: ListPoolsQuery,
      responses: { "200": "{items, next_cursor}" },
    },
    ...read,
    async (c) => c.json(await listPools(c.var.principal, c.req.query())),
  )
  .get(
    "/:id",
    { summary: "A pool the caller owns or belongs to (404 otherwise)", auth: "any" },
    ...read,
    async (c) => c.json(await getPool(c.var.principal, c.req.param("id"))),
  )
  .patch(
    "/:id",
    {
      summary: "Rename the pool or change whether its miners also take public jobs (owner)",
      auth: "any",
      body: UpdatePoolInput,
      responses: { "200": "the pool", "403": "not the owner" },
    },
    ...write,
    async (c) => c.json(await updatePool(c.var.principal, c.req.param("id"), await readJson(c), ctxOf(c))),
  )
  .get(
    "/:id/members",
    { summary: "The pool's members (owner)", auth: "any", query: ListPoolsQuery },
    ...read,
    async (c) => c.json(await listMembers(c.var.principal, c.req.param("id"), c.req.query())),
  )
  .post(
    "/:id/members",
    {
      summary: "Add a client account: its jobs may target the pool (owner)",
      auth: "any",
      body: AddMemberInput,
      responses: { "201": "added", "200": "already a member", "422": "unknown or non-client account" },
    },
    ...write,
    async (c) => {
      const { status, member } = await addMember(
        c.var.principal,
        c.req.param("id"),
        await readJson(c),
        ctxOf(c),
      );
      return c.json(member, status);
    },
  )
  .delete(
    "/:id/members/:account_id",
    {
      summary: "Remove a member (owner), or leave the pool (the member itself)",
      auth: "any",
      responses: { "204": "removed", "404": "not a member" },
    },
    ...write,
    async (c) => {
      await removeMember(c.var.principal, c.req.param("id"), c.req.param("account_id"), ctxOf(c));
      return c.body(null, 204);
    },
  )
  .get(
    "/:id/miners",
    { summary: "The miners attached to the pool (owner)", auth: "any", query: ListPoolsQuery },
    ...read,
    async (c) => c.json(await listPoolMiners(c.var.principal, c.req.param("id"), c.req.query())),
  ).app;

import { Hono } from "hono";
import {
  accountView,
  CreateAccountInput,
  CreateKeyInput,
  createAccount,
  createApiKey,
  getAccount,
} from "../../../core/accounts/accounts.ts";
import { adminOnly } from "../auth.ts";
import { readJson } from "../body.ts";
import type { AppEnv } from "../env.ts";
import { documented } from "../openapi.ts";

documented({
  method: "post",
  path: "/v1/admin/accounts",
  summary: "Create an account",
  tag: "admin",
  auth: "admin",
  body: CreateAccountInput,
  responses: { "201": "created" },
});
documented({
  method: "get",
  path: "/v1/admin/accounts/{id}",
  summary: "An account and its balance",
  tag: "admin",
  auth: "admin",
});
documented({
  method: "post",
  path: "/v1/admin/accounts/{id}/keys",
  summary: "Mint an API key (shown once)",
  tag: "admin",
  auth: "admin",
  body: CreateKeyInput,
  responses: { "201": "created" },
});

export const admin = new Hono<AppEnv>()
  .use(adminOnly)
  .post("/accounts", async (c) => {
    const account = await createAccount(await readJson(c), {
      principal: c.var.principal,
      correlationId: c.var.requestId,
    });
    return c.json(accountView(account), 201);
  })
  .get("/accounts/:id", async (c) => c.json(accountView(await getAccount(c.req.param("id")))))
  .post("/accounts/:id/keys", async (c) => {
    const issued = await createApiKey(c.req.param("id"), await readJson(c), {
      principal: c.var.principal,
      correlationId: c.var.requestId,
    });
    return c.json(
      {
        key: issued.key,
        key_id: issued.keyId,
        account_id: issued.accountId,
        kind: issued.kind,
        scopes: issued.scopes,
        created_at: issued.createdAt,
      },
      201,
    );
  });

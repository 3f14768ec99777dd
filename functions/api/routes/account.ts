import { Hono } from "hono";
import { accountView, getAccount } from "../../../core/accounts/accounts.ts";
import { requireAuth } from "../auth.ts";
import type { AppEnv } from "../env.ts";
import { documented } from "../openapi.ts";

documented({
  method: "get",
  path: "/v1/account",
  summary: "The caller's account and balance",
  tag: "account",
  auth: "any",
});

export const account = new Hono<AppEnv>()
  .use(requireAuth({ kinds: ["client", "miner", "admin"], scope: "account:read" }))
  .get("/", async (c) => c.json(accountView(await getAccount(c.var.principal.accountId))));

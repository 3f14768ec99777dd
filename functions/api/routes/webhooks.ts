import { getOwnJob } from "../../../core/jobs/read.ts";
import {
  getDelivery,
  ListDeliveriesQuery,
  listDeliveries,
  redeliver,
} from "../../../core/webhooks/deliveries.ts";
import {
  CreateEndpointInput,
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  UpdateEndpointInput,
  updateEndpoint,
} from "../../../core/webhooks/endpoints.ts";
import {
  getAccountSecretInfo,
  RotateSecretInput,
  revealAccountSecret,
  rotateAccountSecret,
} from "../../../core/webhooks/secrets.ts";
import { WEBHOOK_EVENT_TYPES } from "../../../events/rules.ts";
import { sqsTaskQueue } from "../../queues/webhooks-tasks.ts";
import { requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import type { AppEnv } from "../env.ts";
import { once } from "../idempotent.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

/*
 * Client webhooks (outgoing). Every route carries its own auth, rather than the sub-app: the inbound provider
 * webhooks (Stripe, chain) will share the /v1/webhooks prefix and must stay unauthenticated.
 */
const read = [requireAuth({ kinds: ["client"], scope: "webhooks:read" }), rateLimit("read")] as const;
const write = [requireAuth({ kinds: ["client"], scope: "webhooks:write" }), rateLimit("write")] as const;

/** The job must be the caller's (404 otherwise); its id is the delivery target. */
async function ownJobTarget(c: { var: AppEnv["Variables"] }, jobId: string): Promise<string> {
  return (await getOwnJob(c.var.principal, jobId)).id;
}

/** The endpoint must be the caller's. */
async function ownEndpointTarget(c: { var: AppEnv["Variables"] }, id: string): Promise<string> {
  return (await getEndpoint(c.var.principal, id)).id;
}

/*
 * The four answers that show a `whsec_` secret (endpoint creation, endpoint and default secret rotation, the default
 * secret's reveal) are `Cache-Control: no-store`, like key minting; replayed under an Idempotency-Key they carry
 * `secret: null, secret_redacted: true` (core/idempotency `withoutSecret`).
 */
export const webhooks = documentedRoutes("/v1/webhooks", "webhooks")
  .get("/event-types", { summary: "Event types webhooks carry", auth: "client" }, ...read, (c) =>
    c.json({ items: WEBHOOK_EVENT_TYPES }),
  )
  .post(
    "/endpoints",
    {
      summary:
        "Register an endpoint (its whsec_ secret is shown once; Idempotency-Key: a replay has `secret: null, secret_redacted: true`)",
      auth: "client",
      body: CreateEndpointInput,
      responses: {
        "201": "the endpoint with `secret`",
        "422": "invalid or refused url (private, metadata, port 0...)",
      },
    },
    ...write,
    async (c) => {
      c.header("Cache-Control", "no-store");
      const { endpoint, replayed } = await createEndpoint(c.var.principal, await readJson(c), {
        idempotencyKey: c.req.header("idempotency-key"),
      });
      if (replayed) c.header("Idempotent-Replayed", "true");
      return c.json(endpoint, 201);
    },
  )
  .get("/endpoints", { summary: "Your endpoints", auth: "client" }, ...read, async (c) =>
    c.json(await listEndpoints(c.var.principal)),
  )
  .get("/endpoints/:id", { summary: "An endpoint", auth: "client" }, ...read, async (c) =>
    c.json(await getEndpoint(c.var.principal, c.req.param("id"))),
  )
  .patch(
    "/endpoints/:id",
    {
      summary: "Change url, description, event filter, or enable/disable",
      auth: "client",
      body: UpdateEndpointInput,
    },
    ...write,
    async (c) => {
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 200,
        body: await updateEndpoint(c.var.principal, c.req.param("id"), body),
      }));
    },
  )
  .delete("/endpoints/:id", { summary: "Remove an endpoint", auth: "client" }, ...write, (c) =>
    once(c, null, async () => {
      await deleteEndpoint(c.var.principal, c.req.param("id"));
      return { status: 204, body: null };
    }),
  )
  .post(
    "/endpoints/:id/secret/rotate",
    {
      summary: "New secret (shown once); the previous one keeps signing for overlap_seconds",
      auth: "client",
      body: RotateSecretInput,
      responses: { "200": "the endpoint with the new `secret`" },
    },
    ...write,
    async (c) => {
      c.header("Cache-Control", "no-store");
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 200,
        body: await rotateEndpointSecret(c.var.principal, c.req.param("id"), body),
      }));
    },
  )
  .get(
    "/endpoints/:id/deliveries",
    { summary: "The endpoint's delivery log, newest first", auth: "client", query: ListDeliveriesQuery },
    ...read,
    async (c) => c.json(await listDeliveries(await ownEndpointTarget(c, c.req.param("id")), c.req.query())),
  )
  .get(
    "/endpoints/:id/deliveries/:delivery_id",
    { summary: "One delivery with its attempts and payload", auth: "client" },
    ...read,
    async (c) =>
      c.json(await getDelivery(await ownEndpointTarget(c, c.req.param("id")), c.req.param("delivery_id"))),
  )
  .post(
    "/endpoints/:id/deliveries/:delivery_id/redeliver",
    {
      summary: "Send a delivery again (same webhook-id)",
      auth: "client",
      responses: { "202": "queued", "409": "an attempt is in progress, or the endpoint is disabled" },
    },
    ...write,
    (c) =>
      once(c, null, async () => ({
        status: 202,
        body: await redeliver(
          await ownEndpointTarget(c, c.req.param("id")),
          c.req.param("delivery_id"),
          sqsTaskQueue,
        ),
      })),
  )
  .get(
    "/jobs/:job_id/deliveries",
    { summary: "Deliveries to a job's webhook_url", auth: "client", query: ListDeliveriesQuery },
    ...read,
    async (c) => c.json(await listDeliveries(await ownJobTarget(c, c.req.param("job_id")), c.req.query())),
  )
  .get(
    "/jobs/:job_id/deliveries/:delivery_id",
    { summary: "One delivery to a job's webhook_url", auth: "client" },
    ...read,
    async (c) =>
      c.json(await getDelivery(await ownJobTarget(c, c.req.param("job_id")), c.req.param("delivery_id"))),
  )
  .post(
    "/jobs/:job_id/deliveries/:delivery_id/redeliver",
    { summary: "Send a job webhook again (same webhook-id)", auth: "client", responses: { "202": "queued" } },
    ...write,
    (c) =>
      once(c, null, async () => ({
        status: 202,
        body: await redeliver(
          await ownJobTarget(c, c.req.param("job_id")),
          c.req.param("delivery_id"),
          sqsTaskQueue,
        ),
      })),
  )
  .get(
    "/secret",
    {
      summary: "About the account's default secret (signs job webhook_url deliveries); never the secret",
      auth: "client",
    },
    ...read,
    async (c) => c.json(await getAccountSecretInfo(c.var.principal.accountId)),
  )
  .post(
    "/secret",
    {
      summary: "Show the account's default secret, once",
      auth: "client",
      responses: { "200": "`secret`", "409": "already shown: rotate" },
    },
    ...write,
    (c) => {
      c.header("Cache-Control", "no-store");
      return once(c, null, async () => ({
        status: 200,
        body: await revealAccountSecret(c.var.principal.accountId),
      }));
    },
  )
  .post(
    "/secret/rotate",
    {
      summary: "New default secret (shown once); the previous one keeps signing for overlap_seconds",
      auth: "client",
      body: RotateSecretInput,
    },
    ...write,
    async (c) => {
      c.header("Cache-Control", "no-store");
      const body = await readJson(c);
      return once(c, body, async () => ({
        status: 200,
        body: await rotateAccountSecret(c.var.principal.accountId, body),
      }));
    },
  ).app;

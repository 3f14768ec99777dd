import type { Context } from "hono";
import { cancelJob, retryJob } from "../../../core/jobs/lifecycle.ts";
import { jobView } from "../../../core/jobs/model.ts";
import {
  getResult,
  ListJobsQuery,
  listJobs,
  parseWait,
  preferWait,
  waitForJob,
} from "../../../core/jobs/read.ts";
import { SubmitInput, type SubmitResult, submitJob } from "../../../core/jobs/submit.ts";
import { resolveShortcut } from "../../../core/services/registry.ts";
import { ShortcutBody, submitShortcut } from "../../../core/services/shortcut.ts";
import { requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import type { AppEnv } from "../env.ts";
import { once } from "../idempotent.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";
import { jobEventsResponse } from "../sse.ts";

const read = [requireAuth({ kinds: ["client", "admin"], scope: "jobs:read" }), rateLimit("read")] as const;
const write = [requireAuth({ kinds: ["client"], scope: "jobs:write" }), rateLimit("write")] as const;
const submitting = [requireAuth({ kinds: ["client"], scope: "jobs:write" }), rateLimit("submit")] as const;

/** The submit answer (POST /v1/jobs and the typed shortcuts): 201 with the job, after `Prefer: wait=N` if asked. */
async function submitted(c: Context<AppEnv>, result: SubmitResult) {
  if (result.replayed) c.header("Idempotent-Replayed", "true");
  const wait = preferWait(c.req.header("prefer"));
  if (wait === undefined || result.replayed) return c.json(result.job, result.status);
  c.header("Preference-Applied", `wait=${wait}`);
  const job = await waitForJob(c.var.principal, result.job.id, wait, { untilTerminal: true });
  return c.json(jobView(job), 201);
}

export const jobs = documentedRoutes("/v1/jobs", "jobs")
  .post(
    "/",
    {
      summary: "Submit a job (Idempotency-Key, Prefer: wait=N)",
      auth: "client",
      work: "admit",
      body: SubmitInput,
      responses: {
        "201": "the job",
        "402": "balance cannot hold max_price",
        "422": "invalid request or input",
      },
    },
    ...submitting,
    async (c) =>
      submitted(
        c,
        await submitJob(c.var.principal, await readJson(c), {
          idempotencyKey: c.req.header("idempotency-key"),
          correlationId: c.var.requestId,
        }),
      ),
  )
  .get(
    "/",
    { summary: "List your jobs, newest first", auth: "client", query: ListJobsQuery },
    ...read,
    async (c) => c.json(await listJobs(c.var.principal, c.req.query())),
  )
  .get("/:id", { summary: "A job (?wait=N long-polls for a change)", auth: "client" }, ...read, async (c) => {
    const wait = parseWait(c.req.query("wait"), "query.wait");
    const version = c.req.query("version");
    const job = await waitForJob(c.var.principal, c.req.param("id"), wait ?? 0, {
      sinceVersion: version === undefined ? undefined : Number(version),
    });
    return c.json({ ...jobView(job), version: job.version });
  })
  .post(
    "/:id/cancel",
    {
      summary: "Cancel a queued or leased job",
      auth: "client",
      responses: { "200": "cancelled", "409": "already terminal" },
    },
    ...write,
    (c) =>
      once(c, null, async () => ({
        status: 200,
        body: await cancelJob(c.var.principal, c.req.param("id"), c.var.requestId),
      })),
  )
  .post(
    "/:id/retry",
    {
      summary: "Retry a failed or timed-out job (same id)",
      auth: "client",
      responses: { "200": "queued again", "409": "not failed" },
    },
    ...write,
    (c) =>
      once(c, null, async () => ({
        status: 200,
        body: await retryJob(c.var.principal, c.req.param("id"), c.var.requestId),
      })),
  )
  .get(
    "/:id/result",
    {
      summary: "Output or error once terminal",
      auth: "client",
      responses: { "200": "result", "425": "not terminal yet" },
    },
    ...read,
    async (c) => c.json(await getResult(c.var.principal, c.req.param("id"))),
  )
  // SSE for `Accept: text/event-stream` (Last-Event-ID resume), else JSON long-polled with ?after=&wait= (sse.ts).
  .get(
    "/:id/events",
    {
      summary:
        "The job's transition history; SSE with Accept: text/event-stream (Last-Event-ID), long-poll with ?after=&wait=",
      auth: "client",
    },
    ...read,
    (c) => jobEventsResponse(c),
  ).app;

// The shortcut is resolved first: an unknown one is 404 whatever the body.
export const shortcuts = documentedRoutes("/v1/services", "jobs").post(
  "/:service/:action",
  {
    summary:
      "Typed shortcut: submit a job of that service; the body is the service's input, with the job options of POST /v1/jobs (constraints, priority, max_price, ...) beside its fields (Idempotency-Key, Prefer: wait=N)",
    auth: "client",
    work: "admit",
    body: ShortcutBody,
    responses: {
      "201": "the job",
      "402": "balance cannot hold max_price",
      "404": "no such shortcut",
      "422": "invalid job option or input field (body.<field>)",
    },
  },
  ...submitting,
  async (c) => {
    const def = resolveShortcut(c.req.param("service"), c.req.param("action"));
    return submitted(
      c,
      await submitShortcut(c.var.principal, def, await readJson(c), {
        idempotencyKey: c.req.header("idempotency-key"),
        correlationId: c.var.requestId,
      }),
    );
  },
).app;

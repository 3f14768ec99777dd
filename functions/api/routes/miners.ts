import type { Context } from "hono";
import { upgradeRequired } from "../../../core/doorbell/session.ts";
import { MINER_STATUS_HINTS, PollInput, poll } from "../../../core/jobs/claim.ts";
import { drainMiner, HeartbeatInput, heartbeat } from "../../../core/jobs/lifecycle.ts";
import { jobView } from "../../../core/jobs/model.ts";
import {
  artifactLinks,
  completeJob,
  FailInput,
  failJob,
  ProgressInput,
  ResultInput,
  reportProgress,
  StartInput,
  startJob,
} from "../../../core/jobs/report.ts";
import { listMiners, minerView, RegisterInput, registerMiner } from "../../../core/miners/miners.ts";
import { createChallenge } from "../../../core/receipts/receipts.ts";
import { MINER_WORK, requireAuth } from "../auth.ts";
import { readJson } from "../body.ts";
import type { AppEnv } from "../env.ts";
import { documentedRoutes } from "../openapi.ts";
import { rateLimit } from "../ratelimit.ts";

const work = requireAuth(MINER_WORK);
const writes = rateLimit("write");

/** A miner's report on a job it holds: each takes the claim token and answers with the job. */
async function reported(c: Context<AppEnv>, jobId: string, report: typeof startJob) {
  const job = await report(c.var.principal, c.req.header("x-miner-id"), jobId, await readJson(c));
  return c.json(jobView(job));
}

export const miners = documentedRoutes("/v1/miners", "miners")
  .use(work)
  .post(
    "/register",
    {
      summary: "Register (or update, by name) a miner",
      auth: "miner",
      work: "upkeep",
      body: RegisterInput,
      responses: { "201": "registered" },
    },
    writes,
    async (c) => {
      const miner = await registerMiner(c.var.principal, await readJson(c), c.var.requestId);
      return c.json({ miner_id: miner.id, ...minerView(miner) }, 201);
    },
  )
  .post(
    "/challenge",
    {
      summary: "A single-use challenge to sign with the key a registration names (key_proof)",
      auth: "miner",
      work: "upkeep",
      responses: { "201": "{challenge, account_id, expires_at}" },
    },
    writes,
    async (c) => c.json(await createChallenge(c.var.principal), 201),
  )
  .get("/", { summary: "Your miners", auth: "miner" }, rateLimit("read"), async (c) =>
    c.json(await listMiners(c.var.principal, c.req.query())),
  )
  // A heartbeat is one write and may cost no other: its limit is kept in memory, per instance (poll class limits).
  .post(
    "/heartbeat",
    {
      summary: "Heartbeat (X-Miner-Id): renews leases, names tokens to stop",
      auth: "miner",
      work: "upkeep",
      body: HeartbeatInput,
    },
    rateLimit("poll", { local: true }),
    async (c) => c.json(await heartbeat(c.var.principal, c.req.header("x-miner-id"), await readJson(c))),
  )
  // An empty poll reads and writes nothing, and its limit costs nothing either: kept in memory, per instance.
  .post(
    "/poll",
    {
      summary: "Claim work (X-Miner-Id), long-poll up to wait_seconds",
      auth: "miner",
      work: "finish",
      body: PollInput,
      responses: {
        "200": "jobs",
        "204":
          "nothing now; see Retry-After-Ms. When the reason is the miner itself, `Coord-Miner-Status` says so (`offline`: heartbeat or register again at once, then poll; `draining`; `banned`) and `Coord-Hint` says what to do",
      },
    },
    rateLimit("poll", { local: true }),
    async (c) => {
      const result = await poll(c.var.principal, c.req.header("x-miner-id"), await readJson(c));
      if (result.jobs.length > 0) return c.json({ jobs: result.jobs });
      const ms = result.retryAfterMs ?? 1000;
      if (result.minerStatus) {
        c.header("Coord-Miner-Status", result.minerStatus);
        c.header("Coord-Hint", MINER_STATUS_HINTS[result.minerStatus]);
      }
      c.header("Retry-After-Ms", String(ms));
      c.header("Retry-After", String(Math.ceil(ms / 1000)));
      return c.body(null, 204);
    },
  )
  // Reached only by a request that did not ask to upgrade (the server hands upgrades to the doorbell itself).
  .get(
    "/connect",
    {
      summary:
        "The doorbell (X-Miner-Id): upgrades to a WebSocket carrying heartbeats, work rings and stop orders (docs/doorbell.md); without an upgrade, 426 naming the socket's URL",
      auth: "miner",
      responses: {
        "101": "switching to the doorbell",
        "426": "not an upgrade request: `url` names the socket",
      },
    },
    rateLimit("read"),
    async (c) => {
      c.header("Upgrade", "websocket");
      return upgradeRequired(c.var.principal, c.req.header("x-miner-id"), c.req.url);
    },
  )
  .post("/drain", { summary: "Stop taking new work", auth: "miner", work: "upkeep" }, writes, async (c) =>
    c.json(await drainMiner(c.var.principal, c.req.header("x-miner-id"))),
  )
  .post(
    "/:job_id/start",
    {
      summary: "Report start",
      auth: "miner",
      work: "finish",
      body: StartInput,
      responses: { "200": "ok", "409": "stale claim token" },
    },
    writes,
    (c) => reported(c, c.req.param("job_id"), startJob),
  )
  .post(
    "/:job_id/progress",
    {
      summary: "Report progress (renews the lease)",
      auth: "miner",
      work: "finish",
      body: ProgressInput,
      responses: { "200": "ok", "409": "stale claim token" },
    },
    writes,
    (c) => reported(c, c.req.param("job_id"), reportProgress),
  )
  .post(
    "/:job_id/result",
    {
      summary: "Return the output",
      auth: "miner",
      work: "finish",
      body: ResultInput,
      responses: { "200": "completed", "409": "stale claim token or terminal job" },
    },
    writes,
    (c) => reported(c, c.req.param("job_id"), completeJob),
  )
  .post(
    "/:job_id/artifacts",
    {
      summary:
        "Fresh presigned links for a held job's input artifacts and output slots, valid until the lease ends (a stale claim gets none)",
      auth: "miner",
      work: "upkeep",
      body: StartInput,
      responses: { "200": "{inputs, outputs, expires_at}", "409": "stale claim token or terminal job" },
    },
    writes,
    async (c) =>
      c.json(
        await artifactLinks(
          c.var.principal,
          c.req.header("x-miner-id"),
          c.req.param("job_id"),
          await readJson(c),
        ),
      ),
  )
  .post(
    "/:job_id/fail",
    {
      summary: "Report a failure",
      auth: "miner",
      work: "finish",
      body: FailInput,
      responses: { "200": "failed or requeued", "409": "stale claim token" },
    },
    writes,
    (c) => reported(c, c.req.param("job_id"), failJob),
  ).app;

import {
  type Command,
  jsonArg,
  num,
  printFields,
  printJson,
  printTable,
  type RunContext,
  readInputFile,
  str,
  UsageError,
} from "../command.ts";
import { type Api, ApiError, type Response, sleep } from "../http.ts";
import { progressMode, progressView, TERMINAL } from "../progress.ts";

export { TERMINAL };

type Job = Record<string, unknown> & { id: string; status: string; version?: number };

const JOB_FIELDS = [
  "id",
  "status",
  "service",
  "attempt",
  "max_attempts",
  "priority",
  "max_price",
  "price",
  "units",
  "progress",
  "progress_message",
  "miner_id",
  "created_at",
  "started_at",
  "finished_at",
  "error",
];

export function printJob(ctx: RunContext, job: Job) {
  if (ctx.json) return printJson(ctx.io, job);
  printFields(
    ctx.io,
    job,
    JOB_FIELDS.filter((k) => k in job && (job[k] !== null || ["status", "error"].includes(k))),
  );
}

/** Worth trying again: the network, a 5xx or a 429 (after the transport's own retries of the request). */
function transient(err: unknown): boolean {
  if (err instanceof ApiError) return err.status >= 500 || err.status === 429;
  return err instanceof TypeError;
}

/** How long following goes on through failures in a row before it gives up with the last one. */
const TROUBLE_LIMIT_MS = 5 * 60_000;

export interface FollowOptions {
  /** Stop at this time (ms since the epoch) even if the job is not terminal; default: follow until it is. */
  deadline?: number;
  /** The job as already known (a submit's answer): shown first, and following resumes from its version. */
  first?: Job;
  onSnapshot?: (job: Job) => void;
  onTrouble?: (message: string) => void;
}

/**
 * Follows a job until it is terminal (or the deadline passes) by long-polling `GET /v1/jobs/{id}?wait=&version=`
 * (at most 60 s a request), each answer a whole snapshot of the job as soon as its version moves: every status
 * change and progress report. The first read is immediate. Each request stands alone (the version says where to
 * resume), so a dropped connection, a 5xx or a 429 costs nothing but a pause: following goes on with backoff
 * (1 s to 10 s) and gives up only after five minutes of failures in a row (or at the deadline). Resolves with the
 * last snapshot.
 */
export async function followJob(api: Api, id: string, opts: FollowOptions = {}): Promise<Job> {
  let job = opts.first;
  if (job) opts.onSnapshot?.(job);
  let troubleSince: number | undefined;
  let failures = 0;
  for (;;) {
    if (job && TERMINAL.has(job.status)) return job;
    const left = opts.deadline === undefined ? 60 : (opts.deadline - Date.now()) / 1000;
    if (job && left <= 0) return job;
    const wait = job ? Math.max(0, Math.min(60, Math.ceil(left))) : 0;
    const asked = Date.now();
    let next: Job;
    try {
      next = (
        await api.get<Job>(`/v1/jobs/${encodeURIComponent(id)}`, { query: { wait, version: job?.version } })
      ).body;
    } catch (err) {
      if (!transient(err)) throw err;
      troubleSince ??= Date.now();
      const untilDeadline =
        opts.deadline === undefined ? Number.POSITIVE_INFINITY : opts.deadline - Date.now();
      // Out of time (--wait) or out of patience: the last snapshot if there is one, else the failure.
      if (untilDeadline <= 0 && job) return job;
      if (untilDeadline <= 0 || Date.now() - troubleSince > TROUBLE_LIMIT_MS) throw err;
      const delay = Math.min(10_000, 1000 * 2 ** failures++, Math.max(0, untilDeadline));
      const what = err instanceof ApiError ? `HTTP ${err.status}` : "connection lost";
      opts.onTrouble?.(`${what}; following again in ${Math.round(delay / 1000)} s...`);
      await sleep(delay);
      continue;
    }
    troubleSince = undefined;
    failures = 0;
    const moved = !job || next.version !== job.version || next.status !== job.status;
    job = next;
    if (moved) opts.onSnapshot?.(job);
    // A server that answered a long-poll at once with nothing new (no long-poll support): do not spin.
    else if (wait > 0 && Date.now() - asked < 200) await sleep(1000);
  }
}

/** Follows a job with the progress display this invocation calls for (stderr; nothing with --json). */
async function followShown(ctx: RunContext, id: string, opts: FollowOptions & { startedAt: number }) {
  const view = progressView(ctx.io, progressMode(ctx.io, ctx.json), { startedAt: opts.startedAt });
  try {
    return await followJob(ctx.api, id, {
      ...opts,
      onSnapshot: (job) => {
        view.update(job);
        opts.onSnapshot?.(job);
      },
      onTrouble: (message) => view.trouble(message),
    });
  } finally {
    view.done();
  }
}

function seconds(ctx: RunContext, name: string): number | undefined {
  const n = num(ctx.opts, name);
  if (n !== undefined && n < 0) throw new UsageError(`--${name} must be at least 0`);
  return n;
}

const submit: Command = {
  name: "jobs submit",
  summary: "Submit a job",
  args: ["<service>"],
  auth: true,
  options: {
    input: { type: "string", value: "JSON", description: "The job's input as JSON" },
    "input-file": {
      type: "string",
      value: "FILE",
      description: "Read the input JSON from FILE ('-' for stdin)",
    },
    priority: { type: "string", value: "N", description: "0 (lowest) to 9; default 5" },
    "max-price": {
      type: "string",
      value: "N",
      description: "Most you will pay, micro-credits (held at submit)",
    },
    ttl: { type: "string", value: "S", description: "Seconds the job may wait in the queue" },
    timeout: { type: "string", value: "S", description: "Seconds the job may run once claimed" },
    "max-attempts": { type: "string", value: "N", description: "Claims before the job fails (1-10)" },
    constraints: {
      type: "string",
      value: "JSON",
      description: 'Matching constraints, e.g. \'{"regions":["eu-west"],"min_vram_mb":16000}\'',
    },
    "webhook-url": { type: "string", value: "URL", description: "Where to POST the job's events" },
    metadata: { type: "string", value: "JSON", description: "String-to-string metadata kept with the job" },
    "idempotency-key": {
      type: "string",
      value: "K",
      description: "Replays the first response for the same key",
    },
    wait: {
      type: "string",
      value: "S",
      description: "Wait up to S seconds for a terminal state, showing its progress on stderr",
    },
  },
  details: [
    "--input-file - reads the input from stdin. Each submit carries an Idempotency-Key (--idempotency-key, else a",
    "fresh one) sent again on each retry, so a retried submit never makes a second job.",
    "With --wait the job is followed as it runs: on a terminal a live line (spinner, status, progress bar,",
    "message, time), otherwise a line on stderr each time the status or progress changes; then the job is printed",
    "(with --json only the final job, as JSON, and no progress lines). See also coord jobs watch.",
  ].join("\n"),
  examples: [
    `coord jobs submit echo --input '{"hello":"world"}'`,
    `coord jobs submit echo --input '{"sleep_ms":2000}' --priority 9 --wait 30`,
    "coord jobs submit whisper --input-file audio-job.json --max-price 50000 --idempotency-key upload-42",
  ],
  async run(ctx) {
    const [service] = ctx.args;
    const inline = str(ctx.opts, "input");
    const file = str(ctx.opts, "input-file");
    if (inline !== undefined && file !== undefined)
      throw new UsageError("give --input or --input-file, not both");
    const input =
      file !== undefined
        ? jsonArg(await readInputFile(file, ctx.io), `--input-file ${file}`)
        : inline !== undefined
          ? jsonArg(inline, "--input")
          : {};
    const constraints = str(ctx.opts, "constraints");
    const metadata = str(ctx.opts, "metadata");
    const body = {
      service,
      input,
      ...(constraints !== undefined ? { constraints: jsonArg(constraints, "--constraints") } : {}),
      ...(metadata !== undefined ? { metadata: jsonArg(metadata, "--metadata") } : {}),
      priority: num(ctx.opts, "priority", "body.priority"),
      max_price: num(ctx.opts, "max-price", "body.max_price"),
      ttl_seconds: num(ctx.opts, "ttl", "body.ttl_seconds"),
      timeout_seconds: num(ctx.opts, "timeout", "body.timeout_seconds"),
      max_attempts: num(ctx.opts, "max-attempts", "body.max_attempts"),
      webhook_url: str(ctx.opts, "webhook-url"),
    };
    const wait = seconds(ctx, "wait");
    const started = Date.now();
    // One key for every attempt of this submit (the transport resends it on a lost answer, a 5xx or a 429): the
    // coordinator replays the first answer rather than making a second job.
    const idempotencyKey = str(ctx.opts, "idempotency-key") ?? crypto.randomUUID();
    let res: Response<Job>;
    try {
      res = await ctx.api.post<Job>("/v1/jobs", body, {
        headers: { "idempotency-key": idempotencyKey },
        idempotent: true,
      });
    } catch (err) {
      // Whether the job was made is unknown: the same key tells, without making a second one.
      if (transient(err) && str(ctx.opts, "idempotency-key") === undefined)
        ctx.io.stderr(
          `note: the submit may have gone through; to find out without a second job, run it again with --idempotency-key ${idempotencyKey}\n`,
        );
      throw err;
    }
    let job = res.body;
    if (!ctx.json && res.headers.get("idempotent-replayed") === "true")
      ctx.io.stderr("note: replayed the first response for this idempotency key\n");
    if (wait !== undefined && !TERMINAL.has(job.status))
      job = await followShown(ctx, job.id, {
        first: job,
        deadline: started + wait * 1000,
        startedAt: started,
      });
    printJob(ctx, job);
  },
};

const get: Command = {
  name: "jobs get",
  summary: "Show a job",
  args: ["<job_id>"],
  auth: true,
  options: {
    wait: {
      type: "string",
      value: "S",
      description: "Wait up to S seconds for a terminal state, showing its progress on stderr",
    },
  },
  examples: ["coord jobs get job_01hx...", "coord jobs get job_01hx... --wait 120 --json"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const wait = seconds(ctx, "wait");
    const started = Date.now();
    const job =
      wait === undefined
        ? (await ctx.api.get<Job>(`/v1/jobs/${encodeURIComponent(id)}`)).body
        : await followShown(ctx, id, { deadline: started + wait * 1000, startedAt: started });
    printJob(ctx, job);
  },
};

const watch: Command = {
  name: "jobs watch",
  summary: "Follow a job until it ends, showing its progress; exit 0 if it completed, 1 if not",
  details: [
    "Follows the job (long-polling GET /v1/jobs/{id}?wait=&version=, resuming across dropped connections) until it",
    "is terminal. On a terminal stderr shows a live line (spinner, status, progress bar, message, time); otherwise",
    "a line each time the status or progress changes. At the end the result is printed as coord jobs result does:",
    "the output JSON of a completed job on stdout (exit 0), or the status and error of one that ended otherwise",
    "(exit 1). With --json stdout carries one JSON line per snapshot of the job as it changes, then one line",
    "with the result ({job_id, status, output, error, ...}); no progress on stderr.",
  ].join("\n"),
  args: ["<job_id>"],
  auth: true,
  examples: [
    "coord jobs watch job_01hx...",
    "coord jobs watch job_01hx... > output.json && echo done",
    "coord jobs watch job_01hx... --json | tail -n 1 | jq .output",
  ],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const started = Date.now();
    const job = await followShown(ctx, id, {
      startedAt: started,
      onSnapshot: ctx.json ? (j) => ctx.io.stdout(`${JSON.stringify(j)}\n`) : undefined,
    });
    const res = await ctx.api.get<Record<string, unknown>>(
      `/v1/jobs/${encodeURIComponent(job.id ?? id)}/result`,
    );
    const completed = res.body.status === "completed";
    if (ctx.json) ctx.io.stdout(`${JSON.stringify(res.body)}\n`);
    else if (completed) printJson(ctx.io, res.body.output);
    else printFields(ctx.io, res.body, ["job_id", "status", "error", "finished_at"]);
    return completed ? 0 : 1;
  },
};

const listCmd: Command = {
  name: "jobs list",
  summary: "List your jobs, newest first",
  auth: true,
  options: {
    status: {
      type: "string",
      value: "S",
      description: "queued, assigned, running, completed, failed, cancelled, expired or timed_out",
    },
    service: { type: "string", value: "ID", description: "Only jobs of this service" },
    limit: { type: "string", value: "N", description: "Page size, 1-100 (default 50)" },
    cursor: { type: "string", value: "C", description: "Continue from a previous page's next_cursor" },
    all: { type: "boolean", description: "Follow cursors to the end (progress on stderr)" },
  },
  examples: ["coord jobs list", "coord jobs list --status failed --all --json"],
  async run(ctx) {
    const all = ctx.opts.all === true;
    const jobs: Job[] = [];
    let cursor = str(ctx.opts, "cursor");
    let next: string | null = null;
    for (let page = 1; ; page++) {
      const res = await ctx.api.get<{ jobs: Job[]; next_cursor: string | null }>("/v1/jobs", {
        query: {
          status: str(ctx.opts, "status"),
          service: str(ctx.opts, "service"),
          limit: str(ctx.opts, "limit"),
          cursor,
        },
      });
      jobs.push(...res.body.jobs);
      next = res.body.next_cursor;
      if (!all || !next) break;
      ctx.io.stderr(`fetched ${jobs.length} jobs (page ${page}), following the cursor...\n`);
      cursor = next;
    }
    if (all) ctx.io.stderr(`fetched ${jobs.length} jobs in all\n`);
    if (ctx.json) return printJson(ctx.io, { jobs, next_cursor: all ? null : next });
    printTable(ctx.io, jobs, ["id", "status", "service", "attempt", "price", "created_at"]);
    if (next && !all) ctx.io.stderr(`more: coord jobs list --cursor ${next}  (or --all)\n`);
  },
};

const cancel: Command = {
  name: "jobs cancel",
  summary: "Cancel a queued or running job (a miner holding it stops at its next heartbeat)",
  args: ["<job_id>"],
  auth: true,
  examples: ["coord jobs cancel job_01hx..."],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const path = `/v1/jobs/${encodeURIComponent(id)}/cancel`;
    printJob(ctx, (await ctx.api.post<Job>(path, {}, { idempotent: true })).body);
  },
};

const retry: Command = {
  name: "jobs retry",
  summary: "Retry a failed or timed-out job (same id, a fresh attempt budget)",
  args: ["<job_id>"],
  auth: true,
  examples: ["coord jobs retry job_01hx..."],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const path = `/v1/jobs/${encodeURIComponent(id)}/retry`;
    printJob(ctx, (await ctx.api.post<Job>(path, {}, { idempotent: true })).body);
  },
};

const result: Command = {
  name: "jobs result",
  summary: "A finished job's output (exit 1 if the job did not complete)",
  details:
    "Prints the output JSON of a completed job on stdout. For a job that ended otherwise (failed, cancelled, expired,\n" +
    "timed_out) it prints the status and error and exits 1. A job still in progress is an error (HTTP 425).",
  args: ["<job_id>"],
  auth: true,
  examples: ["coord jobs result job_01hx... > output.json", "coord jobs result job_01hx... --json"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const res = await ctx.api.get<Record<string, unknown>>(`/v1/jobs/${encodeURIComponent(id)}/result`);
    const completed = res.body.status === "completed";
    if (ctx.json) printJson(ctx.io, res.body);
    else if (completed) printJson(ctx.io, res.body.output);
    else printFields(ctx.io, res.body, ["job_id", "status", "error", "finished_at"]);
    return completed ? 0 : 1;
  },
};

type JobEvent = Record<string, unknown> & { seq: number; status?: string };

const events: Command = {
  name: "jobs events",
  summary: "A job's transition history, oldest first (--follow: until it ends)",
  details:
    "With --follow the command long-polls for new events (GET /v1/jobs/{id}/events?after=SEQ&wait=30) and prints\n" +
    "each as it happens, until the job reaches a terminal state. With --json it prints one JSON event per line.",
  args: ["<job_id>"],
  auth: true,
  options: {
    follow: { type: "boolean", short: "f", description: "Keep printing new events until the job ends" },
  },
  examples: ["coord jobs events job_01hx...", "coord jobs events job_01hx... --follow --json"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const path = `/v1/jobs/${encodeURIComponent(id)}/events`;
    const columns = ["seq", "type", "status", "attempt", "occurred_at"];
    if (ctx.opts.follow !== true) {
      const res = await ctx.api.get<{ events: JobEvent[] }>(path);
      if (ctx.json) return printJson(ctx.io, res.body);
      return printTable(ctx.io, res.body.events, columns);
    }
    let after = 0;
    const widths = [4, 22, 10, 8, 24];
    if (!ctx.json)
      ctx.io.stdout(`${columns.map((c, i) => c.toUpperCase().padEnd(widths[i] ?? 0)).join("  ")}\n`);
    for (;;) {
      const asked = Date.now();
      const res = await ctx.api.get<{ events: JobEvent[] }>(path, { query: { after, wait: 30 } });
      const fresh = res.body.events.filter((e) => e.seq > after);
      for (const e of fresh) {
        after = Math.max(after, e.seq);
        if (ctx.json) ctx.io.stdout(`${JSON.stringify(e)}\n`);
        else
          ctx.io.stdout(
            `${columns
              .map((c, i) => String(e[c] ?? "-").padEnd(widths[i] ?? 0))
              .join("  ")
              .trimEnd()}\n`,
          );
        if (e.status && TERMINAL.has(e.status)) return;
      }
      // A server that answered at once with nothing new (no long-poll support): do not spin.
      if (fresh.length === 0 && Date.now() - asked < 1000) await sleep(1000);
    }
  },
};

export const jobCommands: Command[] = [submit, get, watch, listCmd, cancel, retry, result, events];

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
import { type Api, sleep } from "../http.ts";

export const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "timed_out"]);

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

/**
 * Waits up to `seconds` for the job to reach a terminal state, by long-polling `GET /v1/jobs/{id}?wait=` (at most
 * 60 s per request, resuming from the version last seen).
 */
export async function waitTerminal(api: Api, id: string, seconds: number, first?: Job): Promise<Job> {
  const deadline = Date.now() + seconds * 1000;
  let job = first;
  while (!job || !TERMINAL.has(job.status)) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    if (job && left <= 0) break;
    const res = await api.get<Job>(`/v1/jobs/${encodeURIComponent(id)}`, {
      query: { wait: Math.max(0, Math.min(60, left)), version: job?.version },
    });
    job = res.body;
  }
  return job;
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
    wait: { type: "string", value: "S", description: "Wait up to S seconds for a terminal state" },
  },
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
    const res = await ctx.api.post<Job>("/v1/jobs", body, {
      headers: {
        "idempotency-key": str(ctx.opts, "idempotency-key"),
        prefer: wait !== undefined ? `wait=${Math.min(60, Math.ceil(wait))}` : undefined,
      },
    });
    let job = res.body;
    const left = wait === undefined ? 0 : wait - (Date.now() - started) / 1000;
    if (!TERMINAL.has(job.status) && left >= 1) job = await waitTerminal(ctx.api, job.id, left, job);
    if (!ctx.json && res.headers.get("idempotent-replayed") === "true")
      ctx.io.stderr("note: replayed the first response for this idempotency key\n");
    printJob(ctx, job);
  },
};

const get: Command = {
  name: "jobs get",
  summary: "Show a job",
  args: ["<job_id>"],
  auth: true,
  options: {
    wait: { type: "string", value: "S", description: "Wait up to S seconds for a terminal state" },
  },
  examples: ["coord jobs get job_01hx...", "coord jobs get job_01hx... --wait 120 --json"],
  async run(ctx) {
    const [id = ""] = ctx.args;
    const wait = seconds(ctx, "wait");
    const job =
      wait === undefined
        ? (await ctx.api.get<Job>(`/v1/jobs/${encodeURIComponent(id)}`)).body
        : await waitTerminal(ctx.api, id, wait);
    printJob(ctx, job);
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
    printJob(ctx, (await ctx.api.post<Job>(`/v1/jobs/${encodeURIComponent(id)}/cancel`)).body);
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
    printJob(ctx, (await ctx.api.post<Job>(`/v1/jobs/${encodeURIComponent(id)}/retry`)).body);
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

export const jobCommands: Command[] = [submit, get, listCmd, cancel, retry, result, events];

import { randomBytes } from "node:crypto";
import * as v from "valibot";
import { queuedCounter } from "../accounts/store.ts";
import { type ClaimArtifacts, claimArtifacts } from "../artifacts/references.ts";
import { config } from "../config.ts";
import type { Principal } from "../context.ts";
import { forgetMiner, rememberMiner } from "../miners/cache.ts";
import { getMiner, type Miner, minerForPoll } from "../miners/miners.ts";
import { takeSlot } from "../miners/store.ts";
import { setting } from "../settings.ts";
import { parse } from "../validate.ts";
import { recentInput } from "./changes.ts";
import { type ClaimOutcome, Matcher } from "./matcher.ts";
import { type Job, JobItem } from "./model.ts";
import { getInputs, readyQueuePage } from "./store.ts";
import { applyTransition, TransactionRefused } from "./transition.ts";

export const PollInput = v.optional(
  v.object({
    wait_seconds: v.optional(
      v.pipe(v.number(), v.minValue(0), v.maxValue(20, "wait_seconds is at most 20")),
      0,
    ),
    max_jobs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64))),
  }),
  {},
);

export interface Assignment {
  job_id: string;
  claim_token: string;
  service: string;
  input: unknown;
  attempt: number;
  max_attempts: number;
  lease_expires_at: string;
  timeout_at: string;
  heartbeat_interval_seconds: number;
  max_price: number;
  unit_price: number;
  constraints: Job["constraints"];
  /** Presigned links for the input's artifacts and the job's output slots, valid until the lease ends. */
  artifacts?: ClaimArtifacts;
}

/** How many queued jobs one poll may look at per service before giving up on finding one it can run. */
const scanBudget = () => setting("COORD_MATCH_SCAN_LIMIT");
const PAGE = 25;

/**
 * Claimable jobs of one service across the given shards (those marked or announced), lazily, in priority-then-fair-age
 * order: a k-way merge of the shards' sorted ready queues, paging deeper only while the caller keeps asking (head-of-line jobs this
 * miner cannot run do not hide the ones it can), up to the scan budget.
 */
async function* candidates(
  service: string,
  shardList: number[],
  found: (shard: number) => void,
): AsyncGenerator<Job> {
  const shards = shardList.map((shard) => ({
    shard,
    buffer: [] as Record<string, unknown>[],
    next: undefined as Record<string, unknown> | undefined,
    done: false,
  }));
  const fill = async (s: (typeof shards)[number]) => {
    if (s.buffer.length > 0 || s.done) return;
    const page = await readyQueuePage(service, s.shard, PAGE, s.next);
    s.buffer.push(...page.items);
    if (s.buffer.length > 0) found(s.shard);
    s.next = page.next;
    s.done = !s.next;
  };
  let budget = scanBudget();
  while (budget-- > 0) {
    await Promise.all(shards.map(fill));
    let best: (typeof shards)[number] | undefined;
    for (const s of shards) {
      const head = s.buffer[0];
      if (head && (!best || String(head.GSI1SK) < String(best.buffer[0]?.GSI1SK))) best = s;
    }
    const item = best?.buffer.shift();
    if (!item) return;
    yield v.parse(JobItem, item);
  }
}

/** How many of the best candidates a poll shuffles before trying them (see `spread`). */
const claimSpread = () => setting("COORD_CLAIM_SPREAD");

/**
 * Reorders a candidate stream in windows of `width`, shuffled within each window. Many miners polling at once would
 * otherwise all race for the same head job, and all but one would pay for a cancelled transaction; spreading them
 * over the best few costs at most a swap of neighbours of equal priority. The width may change as the stream is
 * read: a poll goes in strict order until it loses a race, and spreads from then on.
 */
export async function* spread<T>(
  source: AsyncIterable<T>,
  width: number | (() => number),
  group: (item: T) => unknown = () => 0,
): AsyncGenerator<T> {
  const k = typeof width === "number" ? () => width : width;
  let window: T[] = [];
  const flush = function* () {
    for (let i = window.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [window[i], window[j]] = [window[j] as T, window[i] as T];
    }
    yield* window;
    window = [];
  };
  for await (const item of source) {
    // Never across groups (priorities): a higher-priority job always comes first.
    if (window.length > 0 && group(window[0] as T) !== group(item)) yield* flush();
    window.push(item);
    if (window.length >= k()) yield* flush();
  }
  yield* flush();
}

/** A claimed job for a poll's answer; `input` when the claimer has it at hand (a submit's direct hand-off). */
export type Claimed = { job: Job; token: string; input?: { value: unknown } };

/** What a claim of `job` for `miner` sets on the job: a fresh claim token, the lease, the execution deadline. */
export function claimChanges(job: Job, miner: Miner, now: Date) {
  const token = `ct_${randomBytes(18).toString("base64url")}`;
  const lease = new Date(now.getTime() + config.leaseSeconds * 1000).toISOString();
  const timeoutAt = new Date(now.getTime() + job.timeoutSeconds * 1000).toISOString();
  const changes: Partial<Job> = {
    attempt: job.attempt + 1,
    claimToken: token,
    minerId: miner.id,
    minerAccountId: miner.accountId,
    heldBy: job.heldBy?.includes(miner.accountId) ? job.heldBy : [...(job.heldBy ?? []), miner.accountId],
    unitPrice: miner.prices[job.service] ?? 0,
    assignedAt: now.toISOString(),
    startedAt: undefined,
    leaseExpiresAt: lease,
    timeoutAt,
    progress: undefined,
    progressMessage: undefined,
  };
  return {
    token,
    changes,
    /** The slot item the claim's transaction must include. */
    slot: takeSlot(miner, job, token, lease),
    event: { miner_id: miner.id, lease_expires_at: lease, timeout_at: timeoutAt },
  };
}

/** One claim: the claim transition of `job` for `miner`, conditional on the job and on the miner's slot. */
async function claimJob(job: Job, miner: Miner): Promise<ClaimOutcome<Claimed>> {
  const now = new Date();
  const claim = claimChanges(job, miner, now);
  try {
    const next = await applyTransition(job, "claim", {
      changes: claim.changes,
      with: { slot: claim.slot, queued: queuedCounter(job.accountId, -1) },
      event: claim.event,
      at: now,
    });
    return { claimed: { job: next, token: claim.token } };
  } catch (err) {
    if (!(err instanceof TransactionRefused)) throw err;
    // Refused on the miner's item: it is full (or no longer online). Otherwise someone else claimed the job, or it
    // changed: the matcher tries the next candidate.
    return err.refusedBy("slot") ? { full: true } : { lost: true };
  }
}

/** The instance's matcher (matcher.ts): candidates in queue order, spread over the best few once contended. */
const matcher = new Matcher<Claimed>({
  candidates: (service, shards, contended, found) =>
    spread(
      candidates(service, shards, found),
      () => (contended() ? claimSpread() : 1),
      (j) => j.priority,
    ),
  claim: claimJob,
});

/**
 * A waiting poll of this instance that can take `job` at once (see Matcher.handOff), for a submit to claim the job in
 * its own transaction; undefined when no poll here waits with nothing to do.
 */
export function waitingPollFor(job: Job) {
  return matcher.handOff(job);
}

async function withInputs(claimed: Claimed[]): Promise<Assignment[]> {
  if (claimed.length === 0) return [];
  const inputs = new Map<string, unknown>();
  for (const c of claimed) {
    const text = c.input ? undefined : recentInput(c.job.id);
    if (c.input) inputs.set(c.job.id, c.input.value);
    else if (text !== undefined) inputs.set(c.job.id, JSON.parse(text));
  }
  const missing = claimed.filter((c) => !inputs.has(c.job.id));
  if (missing.length > 0)
    for (const [id, input] of await getInputs(missing.map((c) => c.job.id))) inputs.set(id, input);
  const now = Date.now();
  const links = await Promise.all(claimed.map(({ job }) => claimArtifacts(job, inputs.get(job.id), now)));
  return claimed.map(({ job, token }, i) => ({
    job_id: job.id,
    claim_token: token,
    service: job.service,
    input: inputs.get(job.id) ?? null,
    ...(links[i] ? { artifacts: links[i] } : {}),
    attempt: job.attempt,
    max_attempts: job.maxAttempts,
    lease_expires_at: job.leaseExpiresAt as string,
    timeout_at: job.timeoutAt as string,
    heartbeat_interval_seconds: config.heartbeatSeconds,
    max_price: job.maxPrice,
    unit_price: job.unitPrice ?? 0,
    constraints: job.constraints,
  }));
}

export interface PollResult {
  jobs: Assignment[];
  /** When nothing was found: how long the miner should wait before polling again. */
  retryAfterMs?: number;
  /**
   * Why the miner was given nothing, when the reason is the miner itself rather than the queue: `offline` (the
   * sweep marked it silent: it must heartbeat, or register again, before it gets work), `draining`, `banned`.
   */
  minerStatus?: "offline" | "draining" | "banned";
}

/** What a miner that is not online must do to get work again (the poll's `Coord-Hint`). */
export const MINER_STATUS_HINTS: Record<NonNullable<PollResult["minerStatus"]>, string> = {
  offline:
    "this miner is marked offline (no heartbeat for a while) and gets no work: heartbeat now (POST /v1/miners/heartbeat), or register again, then poll",
  draining: "this miner is draining (it asked to, or an operator drained it) and gets no new work",
  banned: "this miner is banned and gets no work",
};

/**
 * A miner's poll: claims up to its free slots of jobs it can run, waiting up to `wait_seconds` for work. A draining
 * or offline miner gets nothing. Each claim is one conditional transaction (job queued at the version we read,
 * miner below its concurrency), so two miners never hold the same job and no miner exceeds its concurrency.
 */
/** The answer to a miner that is not online: nothing, and why (the 204's Coord-Miner-Status). */
function notOnline(miner: Miner): PollResult {
  return {
    jobs: [],
    retryAfterMs: config.heartbeatSeconds * 1000,
    minerStatus: miner.banned ? "banned" : miner.status === "draining" ? "draining" : "offline",
  };
}

export async function poll(
  principal: Principal,
  minerId: string | undefined,
  raw: unknown,
): Promise<PollResult> {
  const body = parse(PollInput, raw, "body");
  // An eventually consistent read (half the cost): a poll only needs the miner's capabilities and a hint of its
  // status; the claim transaction itself checks that the miner is online and below its concurrency.
  let miner = await minerForPoll(principal, minerId);
  // Before telling a miner it is not online, make sure (a heartbeat a moment ago may not be visible yet).
  if (miner.status !== "online" || miner.banned) miner = await getMiner(principal, minerId);
  if (miner.status !== "online" || miner.banned) return notOnline(miner);
  // The cached `active` may be behind (a result reported to another instance): ask for up to the concurrency and
  // let the claim's slot condition stop at full, which then re-reads the miner.
  const free = Math.min(miner.concurrency, body.max_jobs ?? Number.POSITIVE_INFINITY);
  const deadline = Date.now() + Math.min(body.wait_seconds, config.maxWaitSeconds) * 1000;
  for (;;) {
    const { claimed, full } = await matcher.request(miner, free, Math.max(0, deadline - Date.now()));
    if (claimed.length > 0) return { jobs: await withInputs(claimed) };
    if (full) {
      // Refused on the miner's item: full or no longer online. Look again, fresh, and answer from that.
      forgetMiner(miner.id);
      miner = await getMiner(principal, minerId);
      if (miner.status !== "online" || miner.banned) return notOnline(miner);
      if (miner.active >= miner.concurrency) return { jobs: [], retryAfterMs: 1000 };
      rememberMiner(miner);
    }
    // Nothing within the wait (the matcher held the poll until its deadline), or full for now.
    if (!full || deadline - Date.now() <= 0) return { jobs: [], retryAfterMs: 1000 };
  }
}

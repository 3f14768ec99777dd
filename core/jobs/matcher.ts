import { AsyncLocalStorage } from "node:async_hooks";
import { mismatch } from "../matching/constraints.ts";
import { capabilities, type Miner } from "../miners/miners.ts";
import { setting } from "../settings.ts";
import { queueShards } from "./item.ts";
import type { Job } from "./model.ts";
import { clearIfUnchanged, type Mark, readSummary, type Summary } from "./queue-summary.ts";
import { onWork } from "./wakeup.ts";

/**
 * The instance's matcher: the exclusive hand-off of ready jobs to waiting polls.
 *
 * Every poll (waiting or not) registers as a waiter. One match round at a time scans each service's ready queue once,
 * in queue order (priority, then fair-share time), and offers each job to exactly one waiter that can run it, the
 * longest-waiting first; claims of different jobs for different waiters run in parallel. So however many polls wait
 * in an instance, a ready job costs one claim attempt there, not one per waiter, and the queue is read once per
 * round, not once per poll. Rounds run when a poll arrives, when work is announced in this instance (a submit, the
 * stream marking a service ready, a requeue) and, while anyone waits, every COORD_POLL_RECHECK_MS against the cached
 * queue summary (which carries work between instances: an empty summary means a round reads nothing).
 *
 * The claim itself is the same conditional transaction as always (job queued at the version read, miner online and
 * below its concurrency), so correctness never depends on the matcher: instances race only for the jobs both see,
 * and a lost race spreads the next picks over the best few candidates (`claimSpread`).
 */

export type ClaimOutcome<C> = { claimed: C } | { lost: true } | { full: true };

/** A waiting poll reserved for a submit's direct hand-off (`Matcher.handOff`). */
export interface HandOff<C> {
  miner: Miner;
  /** The submit's outcome: the waiter got the job, its miner was full, or the submit went another way. */
  done: (outcome: ClaimOutcome<C> | "released") => void;
}

interface Waiter<C> {
  miner: Miner;
  caps: ReturnType<typeof capabilities>;
  want: number;
  claimed: C[];
  /** The miner's item refused a claim: it is full or no longer online. */
  full: boolean;
  /** A claim for this waiter is in flight. */
  busy: boolean;
  /** The wait is over (deadline); finish as soon as no claim is in flight and a round has looked. */
  expired: boolean;
  rounds: number;
  done: boolean;
  /** Runs a function in the poll's own async context (its request id, logs, meters): claims are the poll's work. */
  run: <R>(fn: () => R) => R;
  resolve: (r: { claimed: C[]; full: boolean }) => void;
  timer?: NodeJS.Timeout;
}

export interface MatcherDeps<C> {
  /**
   * Candidate jobs of a service's given queue shards in queue order (lazily, paging deeper only while asked); `found`
   * is told each shard that had any entry.
   */
  candidates: (
    service: string,
    shards: number[],
    contended: () => boolean,
    found: (shard: number) => void,
  ) => AsyncIterable<Job>;
  /** One conditional claim of `job` for `miner`. */
  claim: (job: Job, miner: Miner) => Promise<ClaimOutcome<C>>;
  /** Which queue shards may have ready jobs, and when each was marked (queue-summary.ts). */
  summary?: (opts: { cachedOnly?: boolean }) => Promise<Summary>;
  /** A round found a mark's shards empty: clear it unless it moved since it was read. */
  clear?: (service: string, mark: Mark) => Promise<void>;
  /** Subscribes to this instance's work announcements (wakeup.ts). */
  onWork?: (listener: (service: string, shard?: number) => void) => void;
  /** How many shards a queue has. */
  shards?: () => number;
}

/** Claims in flight at once within a round. */
const MAX_INFLIGHT = 16;
const recheckMs = () => setting("COORD_POLL_RECHECK_MS");

export class Matcher<C> {
  private waiters: Waiter<C>[] = [];
  private running = false;
  private again = false;
  private recheck?: NodeJS.Timeout;
  /**
   * Queue shards announced in this instance since the last round (by service; "all": shard unknown): looked at even
   * before the summary says so, and a round whose every service was announced needs no summary read.
   */
  private hinted = new Map<string, Set<number> | "all">();

  constructor(private readonly deps: MatcherDeps<C>) {
    (deps.onWork ?? onWork)((service, shard) => {
      const known = this.hinted.get(service);
      if (shard === undefined) this.hinted.set(service, "all");
      else if (known !== "all") this.hinted.set(service, (known ?? new Set()).add(shard));
      this.kick();
    });
  }

  /** Waits up to `waitMs` for up to `want` jobs for `miner`; at least one round looks before it gives up. */
  request(miner: Miner, want: number, waitMs: number): Promise<{ claimed: C[]; full: boolean }> {
    return new Promise((resolve) => {
      const w: Waiter<C> = {
        miner,
        caps: capabilities(miner),
        want,
        claimed: [],
        full: false,
        busy: false,
        expired: false,
        rounds: 0,
        done: false,
        run: AsyncLocalStorage.snapshot(),
        resolve,
      };
      w.timer = setTimeout(() => {
        w.expired = true;
        this.settle(w);
      }, waitMs);
      this.waiters.push(w);
      this.kick();
    });
  }

  /**
   * A waiting poll that can run `job` now, for a submit to hand the job to directly (the submit's own transaction
   * claims it: no ready-queue entry, no claim transaction). Only a waiter with nothing to do qualifies: it has been
   * through a round that found nothing it could run (so the job jumps no queued job it could have had), is not
   * claiming and has a free slot. The waiter is reserved until `done` says how the submit went.
   */
  handOff(job: Job): HandOff<C> | undefined {
    const w = this.waiters.find(
      (x) =>
        !x.done &&
        !x.busy &&
        !x.full &&
        !x.expired &&
        x.rounds > 0 &&
        x.claimed.length < x.want &&
        x.miner.services.includes(job.service) &&
        !mismatch({ service: job.service, constraints: job.constraints, max_price: job.maxPrice }, x.caps),
    );
    if (!w) return undefined;
    w.busy = true;
    return {
      miner: w.miner,
      done: (outcome) => {
        w.busy = false;
        if (outcome !== "released") {
          if ("claimed" in outcome) w.claimed.push(outcome.claimed);
          else if ("full" in outcome)
            for (const x of this.waiters) if (x.miner.id === w.miner.id) x.full = true;
        }
        this.settle(w);
      },
    };
  }

  /** Runs a round now, or right after the one in progress. */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        const live = this.waiters.filter((w) => !w.done);
        // The shared scan runs in the context of the longest-waiting poll, each claim in its own poll's.
        const first = live[0];
        await (first ? first.run(() => this.round(live)) : this.round(live)).catch(() => {
          // A failed read ends this round; the waiters stay and the next round (recheck) tries again.
        });
        for (const w of live) {
          w.rounds++;
          this.settle(w);
        }
      } while (this.again && this.waiters.length > 0);
    } finally {
      this.running = false;
      this.scheduleRecheck();
    }
  }

  private scheduleRecheck(): void {
    if (this.recheck || this.waiters.length === 0) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      if (this.waiters.length > 0) this.kick();
    }, recheckMs());
    this.recheck.unref?.();
  }

  /** Finishes a waiter that has work, is full, or whose wait is over (never while its claim is in flight). */
  private settle(w: Waiter<C>): void {
    if (w.done || w.busy) return;
    const over = w.expired && w.rounds > 0;
    if (w.claimed.length === 0 && !w.full && !over) return;
    w.done = true;
    clearTimeout(w.timer);
    this.waiters = this.waiters.filter((x) => x !== w);
    w.resolve({ claimed: w.claimed, full: w.full });
  }

  private async round(live: Waiter<C>[]): Promise<void> {
    if (live.length === 0) return;
    const hinted = this.hinted;
    this.hinted = new Map();
    const wanted = [...new Set(live.flatMap((w) => w.miner.services))];
    // Every service this round could serve was announced here: what the summary adds can wait for the next read.
    const summary = await (this.deps.summary ?? readSummary)({
      cachedOnly: wanted.every((s) => hinted.has(s)),
    });
    const shardCount = (this.deps.shards ?? queueShards)();
    for (const service of wanted) {
      const marks = summary.get(service) ?? [];
      const hint = hinted.get(service);
      const shards = new Set<number>(marks.flatMap((m) => m.shards));
      if (hint === "all") for (let i = 0; i < shardCount; i++) shards.add(i);
      else for (const i of hint ?? []) shards.add(i);
      if (shards.size === 0) continue;
      const open = (w: Waiter<C>) =>
        !w.done && !w.full && w.claimed.length < w.want && w.miner.services.includes(service);
      if (!live.some(open)) continue;
      const inflight = new Set<Promise<void>>();
      let contended = false;
      /** Shards that had any entry: their marks stay. */
      const seen = new Set<number>();
      const pick = (job: Job) =>
        live.find(
          (w) =>
            open(w) &&
            !w.busy &&
            !mismatch(
              { service: job.service, constraints: job.constraints, max_price: job.maxPrice },
              w.caps,
            ),
        );
      /** Jobs whose claim was refused by the waiter's miner (full): offered again to another waiter. */
      const again: Job[] = [];
      const offer = async (job: Job): Promise<"offered" | "nobody" | "done"> => {
        let w = pick(job);
        // Everyone who could take it is busy claiming: wait for those claims, then look again.
        if (!w && inflight.size > 0 && live.some((x) => open(x) && x.busy)) {
          await Promise.all(inflight);
          w = pick(job);
        }
        if (!w) return live.some(open) ? "nobody" : "done";
        const waiter = w;
        waiter.busy = true;
        const attempt = waiter
          .run(() => this.deps.claim(job, waiter.miner))
          .then(
            (outcome) => {
              if ("claimed" in outcome) waiter.claimed.push(outcome.claimed);
              else if ("full" in outcome) {
                // Every waiter of that miner would be refused the same way; the job goes to someone else.
                for (const x of live) if (x.miner.id === waiter.miner.id) x.full = true;
                again.push(job);
              } else contended = true;
            },
            () => {
              contended = true;
            },
          );
        const tracked = attempt.finally(() => {
          waiter.busy = false;
          inflight.delete(tracked);
        });
        inflight.add(tracked);
        if (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight);
        return "offered";
      };
      const order = [...shards].sort((a, b) => a - b);
      const found = (shard: number) => seen.add(shard);
      for await (const job of this.deps.candidates(service, order, () => contended, found)) {
        if (job.status !== "queued") continue; // a stale index entry: nothing to claim
        if (job.queueDeadline <= new Date().toISOString()) continue; // the deadline sweep expires it
        if ((await offer(job)) === "done") break;
      }
      // Jobs a full miner's waiter could not take, to the waiters left (each round, every miner is refused once).
      for (;;) {
        await Promise.all(inflight);
        if (again.length === 0 || !live.some(open)) break;
        for (const job of again.splice(0)) if ((await offer(job)) === "done") break;
      }
      await Promise.all(inflight);
      // A mark whose shards all came back empty is cleared (conditional on the mark, so a job made ready meanwhile
      // keeps it). Not one whose shard had jobs, even if the round took them all: a job made ready during the scan may
      // sort before where it had got to (fair share gives a backlogged account's next job an earlier time), and its
      // mark may already be the one read, so clearing then could strand it.
      for (const mark of marks) {
        if (mark.shards.some((sh) => seen.has(sh) || !shards.has(sh))) continue;
        await (this.deps.clear ?? clearIfUnchanged)(service, mark);
      }
    }
  }
}

import { QuotaExceededError } from "../errors.ts";

/** Default cap on an account's jobs waiting in the queue; override with COORD_MAX_QUEUED_PER_ACCOUNT. */
export const DEFAULT_MAX_QUEUED_PER_ACCOUNT = 10_000;

/** Seconds a refused submitter is told to wait before trying again (queued work drains in the meantime). */
const QUOTA_RETRY_AFTER_SECONDS = 5;

export function maxQueuedPerAccount(): number {
  const raw = process.env.COORD_MAX_QUEUED_PER_ACCOUNT?.trim();
  if (!raw) return DEFAULT_MAX_QUEUED_PER_ACCOUNT;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`COORD_MAX_QUEUED_PER_ACCOUNT must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * Refuses (429 `quota_exceeded`, with Retry-After) a submit that would take an account past its queued-jobs quota.
 * The caller counts what the account has queued now (`queuedNow`) and how many jobs it is about to add.
 */
export function assertQueuedQuota(accountId: string, queuedNow: number, adding = 1): void {
  const limit = maxQueuedPerAccount();
  if (queuedNow + adding > limit) {
    throw new QuotaExceededError(
      `account ${accountId} has ${queuedNow} queued jobs; at most ${limit} may be queued`,
      {
        limit,
        current: queuedNow,
        retry_after_seconds: QUOTA_RETRY_AFTER_SECONDS,
      },
    );
  }
}

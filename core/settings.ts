/**
 * Every numeric setting read from the environment, defined once with its default and bounds. `setting()` reads and
 * checks one (each call: tests and the benchmarks change the environment); `assertSettings()` checks them all at
 * start (the app's creation, which is a Lambda's cold start, and `npm start`), so that a typo such as
 * `COORD_QUEUE_SHARDS=four` stops the coordinator with a message naming it instead of silently breaking claims.
 */
interface NumericSetting {
  default: number;
  min: number;
  max: number;
  integer?: boolean;
  what: string;
}

export const SETTINGS = {
  COORD_LEASE_SECONDS: {
    default: 60,
    min: 1,
    max: 86_400,
    integer: true,
    what: "lease length of a claimed job",
  },
  COORD_HEARTBEAT_SECONDS: { default: 10, min: 1, max: 3600, integer: true, what: "heartbeat interval" },
  COORD_MAX_WAIT_SECONDS: { default: 60, min: 0, max: 900, what: "longest wait of any request" },
  COORD_EVENT_RETENTION_DAYS: { default: 30, min: 1, max: 3650, integer: true, what: "event retention" },
  COORD_QUEUE_SHARDS: { default: 4, min: 1, max: 64, integer: true, what: "ready-queue shards per service" },
  COORD_DEADLINE_SHARDS: { default: 4, min: 1, max: 64, integer: true, what: "deadline-index shards" },
  COORD_MINER_SHARDS: { default: 4, min: 1, max: 64, integer: true, what: "miner-status index shards" },
  COORD_SUMMARY_CACHE_MS: { default: 250, min: 0, max: 60_000, what: "queue summary cache" },
  COORD_POLL_RECHECK_MS: { default: 250, min: 10, max: 60_000, what: "matcher recheck period" },
  COORD_MATCH_SCAN_LIMIT: { default: 200, min: 1, max: 10_000, integer: true, what: "jobs a round inspects" },
  COORD_CLAIM_SPREAD: {
    default: 4,
    min: 1,
    max: 64,
    integer: true,
    what: "candidates spread after a lost race",
  },
  COORD_FAIR_QUANTUM_MS: { default: 1000, min: 0, max: 3_600_000, what: "fair-share quantum" },
  COORD_SWEEP_SECONDS: { default: 1, min: 0.1, max: 3600, what: "local sweep period" },
  COORD_KEY_CACHE_SECONDS: { default: 5, min: 0, max: 5, what: "verified-key cache bound" },
  COORD_MINER_CACHE_SECONDS: { default: 30, min: 0, max: 60, what: "miner capability cache" },
  COORD_STANDING_CACHE_MS: { default: 1000, min: 0, max: 10_000, what: "account standing cache (submit)" },
  COORD_METRICS_FLUSH_SECONDS: { default: 10, min: 0, max: 60, what: "event counter flush period" },
  COORD_IDLE_HEARTBEAT_SECONDS: {
    default: 60,
    min: 1,
    max: 540,
    integer: true,
    what: "heartbeat interval of a miner on the doorbell that holds no job",
  },
  COORD_RING_FANOUT: {
    default: 2,
    min: 1,
    max: 50,
    integer: true,
    what: "connected idle miners rung per job that becomes ready",
  },
  COORD_DDB_ADMIT_CONCURRENCY: {
    default: 4,
    min: 1,
    max: 1000,
    integer: true,
    what: "DynamoDB requests of work in flight in one process at which a submit's requests wait (core/db/work-class.ts)",
  },
  COORD_PLATFORM_FEE_BPS: {
    default: 1000,
    min: 0,
    max: 5000,
    integer: true,
    what: "platform fee in basis points of a job's price, taken from the miner's earning",
  },
  COORD_LOW_BALANCE_THRESHOLD: {
    default: 1_000_000,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    integer: true,
    what: "available micro-credits under which an account without its own threshold gets account.low_balance.v1",
  },
  COORD_SETTLEMENT_BATCH_SIZE: {
    default: 256,
    min: 1,
    // The sealed batch's leaves are one item (64 hex characters each): 4096 of them stay well under 400 KB.
    max: 4096,
    integer: true,
    what: "receipts per settlement batch: a full batch is sealed as soon as this many wait",
  },
  COORD_SETTLEMENT_BATCH_SECONDS: {
    default: 60,
    min: 0.1,
    max: 86_400,
    what: "age of the oldest waiting receipt at which the waiting ones are sealed, however few",
  },
  COORD_CHAIN_CONFIRMATIONS: {
    default: 2,
    min: 1,
    max: 1000,
    integer: true,
    what: "blocks (the anchoring transaction's own included) after which a batch is confirmed",
  },
  COORD_CHAIN_FINALITY_BLOCKS: {
    default: 64,
    min: 1,
    max: 100_000,
    integer: true,
    what: "depth after which a confirmed batch is no longer re-checked for reorgs",
  },
  COORD_CHAIN_REPLACE_SECONDS: {
    default: 180,
    min: 1,
    max: 86_400,
    what: "age of a still unmined anchoring transaction at which it is replaced at its nonce with a higher fee",
  },
  COORD_CHAIN_MAX_FEE_GWEI: {
    default: 500,
    min: 0.000001,
    max: 1_000_000,
    what: "most an anchoring transaction may offer per gas (gwei): first sends and fee bumps stop there",
  },
  COORD_ARTIFACT_RETENTION_HOURS: {
    default: 168,
    min: 1,
    max: 87_600,
    what: "how long an artifact (an upload, a job's output) can be read after it was created",
  },
  COORD_UPLOAD_URL_SECONDS: {
    default: 3600,
    min: 1,
    max: 604_800,
    integer: true,
    what: "validity of an upload's presigned PUT URL",
  },
  COORD_UPLOAD_MAX_MB: {
    default: 5120,
    min: 1,
    max: 5120,
    what: "largest upload (MiB; one presigned PUT, S3's single-request limit at most)",
  },
  COORD_ARTIFACT_DOWNLOAD_SECONDS: {
    default: 900,
    min: 1,
    max: 604_800,
    integer: true,
    what: "validity of a client's presigned download URL (a miner's ends with its lease)",
  },
  COORD_LOCAL_CHAIN_BLOCK_SECONDS: {
    default: 1,
    min: 0,
    max: 60,
    what: "block interval of the local chain `npm start` runs (0: a block per transaction)",
  },
} as const satisfies Record<string, NumericSetting>;

export type SettingName = keyof typeof SETTINGS;

function problem(name: SettingName, raw: string): string | undefined {
  const spec: NumericSetting = SETTINGS[name];
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) return `${name} must be a number, got ${JSON.stringify(raw)}`;
  if (spec.integer && !Number.isInteger(n))
    return `${name} must be a whole number, got ${JSON.stringify(raw)}`;
  if (n < spec.min || n > spec.max)
    return `${name} (${spec.what}) must be from ${spec.min} to ${spec.max}, got ${JSON.stringify(raw)}`;
  return undefined;
}

/** The setting's value (its default when unset or empty); a malformed or out-of-range value throws, naming it. */
export function setting(name: SettingName): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return SETTINGS[name].default;
  const bad = problem(name, raw);
  if (bad) throw new Error(bad);
  return Number(raw);
}

/** Checks every numeric setting at once; throws one error listing each bad one. */
export function assertSettings(env: NodeJS.ProcessEnv = process.env): void {
  const bad = (Object.keys(SETTINGS) as SettingName[])
    .map((name) =>
      env[name] === undefined || env[name] === "" ? undefined : problem(name, String(env[name])),
    )
    .filter((p): p is string => p !== undefined);
  if (bad.length > 0) throw new Error(`invalid configuration:\n  ${bad.join("\n  ")}`);
}

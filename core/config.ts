/**
 * Runtime configuration, read once from the environment. On AWS the stack sets these; the local runtime sets them
 * for the handlers it runs in-process.
 */
function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

export const config = {
  get tableName() {
    return process.env.COORD_TABLE_NAME ?? "coordinator";
  },
  get region() {
    return process.env.AWS_REGION ?? "us-east-1";
  },
  /** Set by the local runtime; unset on AWS. */
  get dynamoEndpoint() {
    return process.env.COORD_DYNAMO_ENDPOINT;
  },
  get sqsEndpoint() {
    return process.env.COORD_SQS_ENDPOINT;
  },
  get leaseSeconds() {
    return int("COORD_LEASE_SECONDS", 60);
  },
  get heartbeatSeconds() {
    return int("COORD_HEARTBEAT_SECONDS", 10);
  },
  /**
   * The longest any request may wait (`Prefer: wait`, `?wait`, miner long-polls). Locally 60 s; on AWS the stack
   * sets 25 s, under API Gateway's 30 s integration limit.
   */
  get maxWaitSeconds() {
    return int("COORD_MAX_WAIT_SECONDS", 60);
  },
  /** How long outbox/event items are kept (they double as job event history). */
  get eventRetentionDays() {
    return int("COORD_EVENT_RETENTION_DAYS", 30);
  },
};

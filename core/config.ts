import { setting } from "./settings.ts";

/**
 * Runtime configuration, read once from the environment. On AWS the stack sets these; the local runtime sets them
 * for the handlers it runs in-process.
 */

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
    return setting("COORD_LEASE_SECONDS");
  },
  get heartbeatSeconds() {
    return setting("COORD_HEARTBEAT_SECONDS");
  },
  /**
   * The longest any request may wait (`Prefer: wait`, `?wait`, miner long-polls). Locally 60 s; on AWS the stack
   * sets 25 s, under API Gateway's 30 s integration limit.
   */
  get maxWaitSeconds() {
    return setting("COORD_MAX_WAIT_SECONDS");
  },
  /** How long outbox/event items are kept (they double as job event history). */
  get eventRetentionDays() {
    return setting("COORD_EVENT_RETENTION_DAYS");
  },
};

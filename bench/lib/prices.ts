/**
 * List prices assumed for the cost estimates (AWS us-east-1, on-demand, no free tier, checked against the public
 * price pages as of 2024-2025). Change them here; every figure is derived from these and from observed counts.
 */
export const PRICES = {
  /** DynamoDB on-demand, per write / read request unit (after the November 2024 price cut). */
  dynamoWru: 0.625 / 1e6,
  dynamoRru: 0.125 / 1e6,
  /** Lambda: per request, and per GB-second on arm64 (x86_64 is 0.0000166667). */
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecondArm64: 0.0000133334,
  lambdaGbSecondX86: 0.0000166667,
  /** API Gateway HTTP API, per request (first 300 M a month; each 512 KB counts as one). */
  httpApiRequest: 1.0 / 1e6,
  /** EventBridge custom events published (PutEvents), per 64 KB event. Deliveries to SQS targets are free. */
  eventBridgeEvent: 1.0 / 1e6,
  /** SQS standard queue, per request (64 KB chunk). */
  sqsRequest: 0.4 / 1e6,
  /** CloudWatch Logs ingestion (standard class), per GB. */
  cloudWatchLogsGb: 0.5,
  /**
   * API Gateway WebSocket API, per message sent or received (first billion a month), metered in 32 KB increments
   * (a 33 KB message counts as two). Messages the backend sends through the @connections API count too.
   */
  wsMessage: 1.0 / 1e6,
  /** API Gateway WebSocket API, per connection-minute (a socket open for a minute, whether or not it carries anything). */
  wsConnectionMinute: 0.25 / 1e6,
} as const;

/** The size of one billed WebSocket message increment, bytes. */
export const WS_MESSAGE_INCREMENT_BYTES = 32 * 1024;

/** WebSocket messages billed for one message of `bytes` (32 KB increments, at least one). */
export function wsMessages(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / WS_MESSAGE_INCREMENT_BYTES));
}

/**
 * Function memory from stacks/ (api.ts: 1024 MB; stream, queue consumers and cron: 512 MB), all arm64; `ws`: the
 * WebSocket API's route Lambda ($connect, $default, $disconnect), not in stacks/ yet: 512 MB assumed.
 */
export const MEMORY_GB = { api: 1, stream: 0.5, consumer: 0.5, cron: 0.5, ws: 0.5 } as const;

/** Assumptions that the local stack cannot measure. */
export const ASSUMED = {
  /** One PutEvents round trip inside the stream handler on AWS (the local bus publishes in-process). */
  putEventsMs: 20,
  /** Lambda's own START/END/REPORT log lines per invocation, bytes. */
  platformLogBytes: 330,
  /** SQS requests per message an EventBridge rule delivers: SendMessage + ReceiveMessage + DeleteMessage (unbatched). */
  sqsRequestsPerMessage: 3,
  /** A queue consumer invocation for one message, ms (no job event is routed to a queue yet). */
  consumerMs: 20,
} as const;

/** Lambda duration cost: billed per 1 ms, at `gb` memory, on arm64. */
export function lambdaDuration(ms: number, gb: number): number {
  return (Math.ceil(ms) / 1000) * gb * PRICES.lambdaGbSecondArm64;
}

export const PRICE_NOTES = [
  "DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read request units",
  "Lambda arm64: $0.20 per million requests + $0.0000133334 per GB-second (x86_64: $0.0000166667)",
  "API Gateway HTTP API: $1.00 per million requests",
  "EventBridge: $1.00 per million custom events published",
  "SQS standard: $0.40 per million requests",
  "CloudWatch Logs: $0.50 per GB ingested",
  "API Gateway WebSocket: $1.00 per million messages (32 KB increments), $0.25 per million connection-minutes",
  "Memory from stacks/: API 1024 MB, stream handler / consumers / cron 512 MB; the WebSocket route Lambda 512 MB (assumed); all arm64",
  `Not measurable locally, assumed: ${ASSUMED.putEventsMs} ms per PutEvents call in the stream handler, ${ASSUMED.platformLogBytes} bytes of Lambda platform log lines per invocation, ${ASSUMED.sqsRequestsPerMessage} SQS requests per delivered message`,
  "Not included: free tiers, DynamoDB storage and backups, data transfer, CloudWatch metrics and alarms",
];

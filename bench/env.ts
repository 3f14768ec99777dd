/**
 * Imported first by every benchmark entry point, before anything reads the environment: the capacity meter
 * (core/db/client.ts) must be on before the first DynamoDB client is built.
 */
process.env.COORD_MEASURE_CAPACITY = "1";
// Per-key rate limits stay on (their conditional writes are part of what a request costs), with buckets large
// enough that a benchmark key is never refused.
for (const routeClass of ["SUBMIT", "POLL", "READ", "WRITE", "ADMIN"]) {
  process.env[`COORD_RATE_${routeClass}`] ??= "1000000/1000000";
}

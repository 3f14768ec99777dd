import { API_ENTRY } from "./entries.ts";
import { createFunction, type FunctionContext } from "./functions.ts";

/**
 * Stage-wide throttling in front of every route. The per-key limits of the app itself are finer (bursts of 100 per
 * key); this only caps what one stage can push into Lambda and DynamoDB, well above any single key's allowance.
 */
const THROTTLE = { burst: 2000, ratePerSecond: 1000 };

/**
 * API Gateway ends an HTTP API integration at 30 s; the function's timeout sits just below so that no invocation
 * outlives its request. The app must bound its own waits (`Prefer: wait=N`, miner long-polls) well below this.
 */
const API_TIMEOUT = "29 seconds";

/**
 * The HTTP API (payload format 2.0) with a single `$default` route to the Hono app: routing, auth, validation and
 * problem+json errors all live in the app (functions/api), so the gateway needs no per-route configuration.
 */
export function createApi(context: FunctionContext) {
  const handler = createFunction(API_ENTRY, context, {
    description: "Coordinator HTTP API (Hono)",
    // CPU scales with memory on Lambda: 1 GB keeps p99 latency and cold starts low for the request path.
    memory: "1024 MB",
    timeout: API_TIMEOUT,
    // Every wait the app offers (Prefer: wait, ?wait, miner long-polls) is clamped below the gateway's 30 s.
    environment: { COORD_MAX_WAIT_SECONDS: "25" },
  });
  const api = new sst.aws.ApiGatewayV2("Api", {
    // CORS, if ever wanted, belongs to the Hono app so that the local stack and AWS behave the same.
    cors: false,
    accessLog: { retention: "1 month" },
    transform: {
      stage: (args) => {
        args.defaultRouteSettings = {
          throttlingBurstLimit: THROTTLE.burst,
          throttlingRateLimit: THROTTLE.ratePerSecond,
        };
      },
    },
  });
  api.route("$default", handler.arn);
  return { api, handler };
}

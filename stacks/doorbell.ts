import { DOORBELL_ENTRY } from "./entries.ts";
import { createFunction, type FunctionContext } from "./functions.ts";

/**
 * Stage-wide throttling of doorbell messages (connects and frames): an idle miner sends a heartbeat a minute by
 * default, so this admits a fleet of tens of thousands with room for reconnect storms, and caps what a runaway
 * client can push into Lambda and DynamoDB.
 */
const THROTTLE = { burst: 2000, ratePerSecond: 1000 };

/** API Gateway ends a WebSocket integration at 29 s, like an HTTP one; a frame's work is a heartbeat. */
const DOORBELL_TIMEOUT = "29 seconds";

/**
 * The miners' doorbell on AWS: an API Gateway WebSocket API whose `$connect`, `$disconnect` and `$default` routes go
 * to one function (functions/ws/handler.ts), which runs the same session code as the offline server. The stream
 * handler rings through the same API, so it is handed `withDoorbell` too: the management endpoint as
 * `COORD_DOORBELL_ENDPOINT`, and the link, which grants `execute-api:ManageConnections` on the API's connections.
 */
export function createDoorbell(context: FunctionContext) {
  const api = new sst.aws.ApiGatewayWebSocket("Doorbell", {
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
  const withDoorbell = (ctx: FunctionContext): FunctionContext => ({
    environment: { ...ctx.environment, COORD_DOORBELL_ENDPOINT: api.managementEndpoint },
    link: [...ctx.link, api],
  });
  const handler = createFunction(DOORBELL_ENTRY, withDoorbell(context), {
    description: "Miner doorbell: WebSocket connect, disconnect and frames (heartbeats)",
    // Frames are small and a heartbeat's deadline has slack (the idle interval): half the HTTP API's memory.
    memory: "512 MB",
    timeout: DOORBELL_TIMEOUT,
  });
  for (const route of ["$connect", "$disconnect", "$default"]) api.route(route, handler.arn);
  return { api, handler, withDoorbell };
}

import type { Principal } from "../../core/context.ts";

/** Variables every request carries through the Hono app. */
export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
    /** The request body parsed once by the body gate (body-limit.ts): a JSON object, or undefined when empty. */
    body: Record<string, unknown> | undefined;
    /** The body's bytes as received (signature checks of inbound webhooks need them exactly). */
    rawBody: Uint8Array | undefined;
  };
};

import type { Principal } from "../../core/context.ts";

/** Variables every request carries through the Hono app. */
export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
  };
};

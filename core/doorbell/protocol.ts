import * as v from "valibot";
import { HeartbeatFields, type StopOrder } from "../jobs/lifecycle.ts";

/**
 * The doorbell's messages (docs/doorbell.md): JSON text frames. A miner says hello, then heartbeats; the
 * coordinator answers the hello with a welcome and each heartbeat with its answer, and sends rings ("work may be
 * available for a service you run": claim through `POST /v1/miners/poll`) and stop orders for jobs the miner must
 * drop at once. A ring is a hint, never a claim. A heartbeat frame has the HTTP heartbeat's fields.
 */
export const MinerMessage = v.variant("type", [
  /** The first frame after connecting: answered with the welcome (the same on every server, AWS included). */
  v.object({ type: v.literal("hello") }),
  v.object({ type: v.literal("heartbeat"), ...HeartbeatFields }),
]);
export type MinerMessage = v.InferOutput<typeof MinerMessage>;

/** The largest frame a miner may send (a heartbeat listing 64 jobs is about 8 KB). */
export const MAX_MINER_FRAME_BYTES = 32 * 1024;

export type CoordinatorMessage =
  | {
      type: "welcome";
      miner_id: string;
      connection_id: string;
      /** Heartbeat this often while holding no job; `busy_heartbeat_interval_seconds` while holding some. */
      heartbeat_interval_seconds: number;
      busy_heartbeat_interval_seconds: number;
      lease_seconds: number;
      /** Work may already be waiting: poll now. */
      work: boolean;
    }
  | {
      type: "heartbeat";
      status: string;
      held: { job_id: string; claim_token: string }[];
      lease_expires_at: string;
      stop: StopOrder[];
      heartbeat_interval_seconds: number;
      /** Work may be waiting for a service the miner runs (a ring lost meanwhile is made good here). */
      work: boolean;
    }
  | { type: "work"; service: string; job_id: string }
  | { type: "stop"; stop: StopOrder[] }
  | { type: "error"; code: string; detail: string; errors?: { path: string; message: string }[] };

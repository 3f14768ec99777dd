import { sweep } from "../../core/jobs/lifecycle.ts";
import { log } from "../log.ts";

/** Backstop for every deadline: queue TTL, execution timeout, lease lapse, silent miners. */
export const handler = async () => {
  const counts = await sweep();
  if (Object.keys(counts).length) log.info("sweep", { counts });
  return counts;
};

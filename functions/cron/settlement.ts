import { settle } from "../../core/settlement/anchoring.ts";
import { log } from "../log.ts";

/** Seals due settlement batches, anchors pending ones on chain, re-checks anchored ones (confirm, or revert on reorg). */
export const handler = async () => {
  const { counts, errors } = await settle();
  if (Object.keys(counts).length) log.info("settlement", { counts });
  // The next run retries: a node that is down or refuses delays anchoring, it loses nothing.
  if (errors.length) log.warn("settlement: the chain refused or failed", { errors });
  return counts;
};

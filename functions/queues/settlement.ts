import * as v from "valibot";
import { recordLeaf } from "../../core/settlement/batching.ts";
import { EVENT_SCHEMAS } from "../../events/catalog.ts";
import { makeConsumer } from "./consumer.ts";

/** Each issued receipt becomes a leaf of the open settlement batch, once (a redelivery finds it recorded). */
export const handler = makeConsumer(async (event) => {
  if (event.type !== "receipt.issued.v1") return;
  const data = v.parse(EVENT_SCHEMAS["receipt.issued.v1"], event.data);
  await recordLeaf({ receiptId: data.receipt_id, jobId: data.job_id, leaf: data.receipt_sha256 });
});

import { recordAudit } from "../../core/audit/audit.ts";
import { makeConsumer } from "./consumer.ts";

export const handler = makeConsumer((event) => recordAudit(event));

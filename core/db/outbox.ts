import * as v from "valibot";
import { EVENT_SCHEMAS, type EventData, type EventType } from "../../events/catalog.ts";
import { config } from "../config.ts";
import type { Ctx } from "../context.ts";
import { newId } from "../ids.ts";
import { keys } from "./keys.ts";
import type { TransactItem } from "./transaction.ts";

/** The caller behind an event, as the envelope carries it: ids only, never a key. */
export interface Actor {
  account_id: string;
  key_id: string;
}

export function actorOf(ctx: Ctx): Actor | undefined {
  return ctx.principal ? { account_id: ctx.principal.accountId, key_id: ctx.principal.keyId } : undefined;
}

export type { TransactItem } from "./transaction.ts";

export interface OutboxEvent<T extends EventType = EventType> {
  type: T;
  /** Partition key of the subject (e.g. `JOB#job_...`), so the event sits beside it as its history. */
  subjectPk: string;
  subject: string;
  /** Ordering within the subject: the subject's new version for versioned items. */
  seq?: number;
  accountId?: string;
  correlationId?: string;
  /** Who caused it: `actorOf(ctx)`. The audit trail records it. */
  actor?: Actor;
  data: EventData<T>;
  at?: Date;
  /** A given id (an event first published from an item's image, filed here under the same id). Default: a new one. */
  id?: string;
  /**
   * Already published (from the subject item's own stream image, core/jobs/in-place.ts): the item is history only,
   * and the relay skips it.
   */
  relayed?: boolean;
}

/**
 * The outbox item for an event, to put in the same TransactWriteItems as the state change it describes. The stream
 * relay publishes it; it stays as the subject's event history until `expiresAt`.
 */
export function outboxPut<T extends EventType>(event: OutboxEvent<T>): TransactItem {
  v.parse(EVENT_SCHEMAS[event.type], event.data);
  const at = event.at ?? new Date();
  const id = event.id ?? newId("evt", at.getTime());
  const seq = event.seq === undefined ? `${at.toISOString()}#${id}` : String(event.seq).padStart(10, "0");
  return {
    Put: {
      TableName: config.tableName,
      Item: {
        ...keys.event(event.subjectPk, seq),
        entity: "event",
        eventId: id,
        type: event.type,
        subject: event.subject,
        accountId: event.accountId,
        correlationId: event.correlationId,
        actor: event.actor,
        occurredAt: at.toISOString(),
        data: event.data,
        ...(event.relayed ? { relayed: true } : {}),
        expiresAt: Math.floor(at.getTime() / 1000) + config.eventRetentionDays * 86400,
      },
      ConditionExpression: "attribute_not_exists(PK)",
    },
  };
}

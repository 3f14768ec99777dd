import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import * as v from "valibot";
import { config } from "../config.ts";
import { ddb } from "../db/client.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../db/transaction.ts";

/**
 * The payments store: Stripe Checkout sessions the coordinator created (`PAYMENT#<session id>`) and every Stripe
 * webhook event it accepted (`STRIPE#<event id>`, kept 30 days: Stripe retries for 3). The one module with DynamoDB
 * commands for them; the webhook's transactions use its named items.
 */
export const SESSION_STATUSES = ["pending", "credited", "flagged", "expired", "failed"] as const;

export const SessionItem = v.object({
  id: v.string(),
  accountId: v.string(),
  /** In the currency's minor units (cents), as Stripe counts. */
  amount: v.number(),
  currency: v.string(),
  credits: v.number(),
  status: v.picklist(SESSION_STATUSES),
  createdAt: v.string(),
  updatedAt: v.string(),
  creditedAt: v.optional(v.string()),
  paymentIntent: v.optional(v.string()),
  stripeEventId: v.optional(v.string()),
  /** Credits taken back by refunds so far (Stripe reports refunds cumulatively). */
  refundedCredits: v.optional(v.number()),
});
export type Session = v.InferOutput<typeof SessionItem>;

const EVENT_KEEP_SECONDS = 30 * 86400;

export async function putSession(session: Session): Promise<void> {
  await ddb().send(
    new PutCommand({
      TableName: config.tableName,
      Item: { ...keys.paymentSession(session.id), entity: "paymentSession", ...session },
      ConditionExpression: "attribute_not_exists(PK)",
    }),
  );
}

export async function getSession(id: string): Promise<Session | undefined> {
  const out = await ddb().send(
    new GetCommand({ TableName: config.tableName, Key: keys.paymentSession(id), ConsistentRead: true }),
  );
  return out.Item ? v.parse(SessionItem, out.Item) : undefined;
}

/** The session a payment intent paid, if the coordinator credited it. */
export async function sessionOfPaymentIntent(paymentIntentId: string): Promise<Session | undefined> {
  const out = await ddb().send(
    new GetCommand({
      TableName: config.tableName,
      Key: keys.paymentIntent(paymentIntentId),
      ConsistentRead: true,
    }),
  );
  return out.Item ? getSession(String(out.Item.sessionId)) : undefined;
}

/** The pointer from a payment intent to its session, written when the session is credited. */
export function paymentIntentPointer(paymentIntentId: string, sessionId: string): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: { ...keys.paymentIntent(paymentIntentId), entity: "paymentIntent", sessionId },
    },
  };
}

/** Moves the session's refunded credits from what was read to `to` (a concurrent refund event refuses it). */
export function sessionRefunded(session: Session, to: number, at: Date): TransactItem {
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.paymentSession(session.id),
      UpdateExpression: "SET refundedCredits = :to, updatedAt = :at",
      ConditionExpression:
        session.refundedCredits === undefined
          ? "attribute_not_exists(refundedCredits)"
          : "refundedCredits = :was",
      ExpressionAttributeValues: {
        ":to": to,
        ":at": at.toISOString(),
        ...(session.refundedCredits === undefined ? {} : { ":was": session.refundedCredits }),
      },
    },
  };
}

/** The Stripe event, recorded once: refused when its id was recorded before (a redelivery). */
export function eventRecord(
  event: { id: string; type: string },
  outcome: string,
  sessionId: string | undefined,
  at: Date,
): TransactItem {
  return {
    Put: {
      TableName: config.tableName,
      Item: {
        ...keys.stripeEvent(event.id),
        entity: "stripeEvent",
        eventId: event.id,
        type: event.type,
        outcome,
        sessionId,
        receivedAt: at.toISOString(),
        expiresAt: Math.floor(at.getTime() / 1000) + EVENT_KEEP_SECONDS,
      },
      ConditionExpression: "attribute_not_exists(PK)",
    },
  };
}

/** A session's move out of `pending` (so that of all the events that could move it, exactly one does). */
export function sessionLeavesPending(
  id: string,
  to: Session["status"],
  at: Date,
  extra: Record<string, string | undefined> = {},
): TransactItem {
  const set = Object.entries(extra).filter(([, val]) => val !== undefined);
  return {
    Update: {
      TableName: config.tableName,
      Key: keys.paymentSession(id),
      UpdateExpression: ["SET #s = :to, updatedAt = :at", ...set.map((_, i) => `#x${i} = :x${i}`)].join(", "),
      ConditionExpression: "#s = :pending",
      ExpressionAttributeNames: { "#s": "status", ...Object.fromEntries(set.map(([k], i) => [`#x${i}`, k])) },
      ExpressionAttributeValues: {
        ":to": to,
        ":at": at.toISOString(),
        ":pending": "pending",
        ...Object.fromEntries(set.map(([, val], i) => [`:x${i}`, val])),
      },
    },
  };
}

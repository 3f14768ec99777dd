import { randomBytes } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { api, createAccount, isolated, queryPk, submitEcho } from "./fixture.ts";
import { sessionEvent, signedStripeRequest, stripeSession } from "./stripe-events.ts";

const stripe = inject("stripe");
type Obj = Record<string, unknown>;

async function topUp(client: { key: string }, body: Obj = {}) {
  return api<Obj>("POST", "/v1/payments/checkout", {
    key: client.key,
    body: {
      amount: 500,
      success_url: "https://example.com/ok",
      cancel_url: "https://example.com/no",
      ...body,
    },
  });
}

/** Delivers an event signed as Stripe signs it, or as the options spoil it. */
function deliver(evt: Obj, opts: Parameters<typeof signedStripeRequest>[1] = {}) {
  return api<Obj>("POST", "/v1/webhooks/stripe", signedStripeRequest(evt, opts));
}

const event = sessionEvent;

const available = async (client: { key: string }) =>
  Number((await api<Obj>("GET", "/v1/account", { key: client.key })).body.available);

describe("top-ups through Stripe Checkout", () => {
  it("creates a Checkout Session through the SDK for the caller's account and records it pending", async () => {
    const client = await createAccount("client");
    const res = await topUp(client, { amount: 1234, currency: "EUR" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      amount: 1234,
      currency: "eur",
      credits: 1234 * 11000,
      status: "pending",
    });
    expect(String(res.body.url)).toMatch(/^https:\/\/checkout\.stripe\.com\//);
    const s = await stripeSession(String(res.body.id));
    expect(s).toMatchObject({
      client_reference_id: client.id,
      amount_total: 1234,
      currency: "eur",
      metadata: { purpose: "coordinator_top_up", account_id: client.id },
    });
  });

  it("refuses a bad amount, currency or return URL, naming the field", async () => {
    const client = await createAccount("client");
    for (const [body, field] of [
      [{ amount: 10 }, "body.amount"],
      [{ amount: 5.5 }, "body.amount"],
      [{ currency: "xyz" }, "body.currency"],
      [{ success_url: "javascript:alert(1)" }, "body.success_url"],
    ] as const) {
      const res = await topUp(client, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(JSON.stringify(res.body), JSON.stringify(body)).toContain(field);
    }
  });

  it("credits a paid session exactly once: redelivered, both success events, in either order", async () => {
    const client = await createAccount("client");
    const first = await topUp(client);
    const s1 = await stripeSession(String(first.body.id));
    const completed = event("checkout.session.completed", s1);
    expect((await deliver(completed)).body).toMatchObject({ received: true, outcome: "credited" });
    expect((await deliver(completed)).body).toMatchObject({ outcome: "duplicate" });
    expect((await deliver(event("checkout.session.async_payment_succeeded", s1))).body).toMatchObject({
      outcome: "already_settled",
    });
    expect(await available(client)).toBe(500 * 10000);

    // The other order, and all of it at once.
    const second = await topUp(client);
    const s2 = await stripeSession(String(second.body.id));
    const late = event("checkout.session.async_payment_succeeded", s2);
    const early = event("checkout.session.completed", s2);
    const outcomes = await Promise.all([late, late, early, late, early].map((e) => deliver(e)));
    expect(outcomes.every((r) => r.status === 200)).toBe(true);
    expect(outcomes.filter((r) => r.body.outcome === "credited")).toHaveLength(1);
    expect(await available(client)).toBe(2 * 500 * 10000);
  });

  it("waits for an unpaid completion, and marks an expired or failed session without crediting", async () => {
    const client = await createAccount("client");
    const s = await stripeSession(String((await topUp(client)).body.id));
    expect(
      (await deliver(event("checkout.session.completed", s, { payment_status: "unpaid" }))).body,
    ).toMatchObject({
      outcome: "awaiting_payment",
    });
    expect((await deliver(event("checkout.session.async_payment_failed", s))).body).toMatchObject({
      outcome: "failed",
    });
    expect((await deliver(event("checkout.session.async_payment_succeeded", s))).body).toMatchObject({
      outcome: "already_settled",
    });
    const e = await stripeSession(String((await topUp(client)).body.id));
    expect((await deliver(event("checkout.session.expired", e))).body).toMatchObject({ outcome: "expired" });
    expect(await available(client)).toBe(0);
  });

  it("flags a paid session whose amount, currency or account differs from the checkout, and credits nothing", async () => {
    const client = await createAccount("client");
    const s = await stripeSession(String((await topUp(client)).body.id));
    expect(
      (await deliver(event("checkout.session.completed", s, { amount_total: 99_999 }))).body,
    ).toMatchObject({
      outcome: "flagged",
    });
    expect((await deliver(event("checkout.session.completed", s))).body).toMatchObject({
      outcome: "already_settled",
    });
    expect(await available(client)).toBe(0);
    const flagged = (await queryPk(`ACCOUNT#${client.id}`)).filter(
      (i) => i.type === "payment.reconcile_failed.v1",
    );
    expect(flagged).toHaveLength(1);
    expect(flagged[0]?.data).toMatchObject({ expected: { amount: 500 }, received: { amount: 99_999 } });
  });

  it("refuses a stale or future timestamp, a wrong secret and a changed body with 400, recording nothing", async () => {
    const client = await createAccount("client");
    const s = await stripeSession(String((await topUp(client)).body.id));
    const evt = event("checkout.session.completed", s);
    const now = Math.floor(Date.now() / 1000);
    const spoiled = [
      await deliver(evt, { timestamp: now - 400 }),
      await deliver(evt, { timestamp: now + 400 }),
      await deliver(evt, { secret: "whsec_wrong" }),
      await deliver(evt, { body: JSON.stringify({ ...evt, type: "checkout.session.expired" }) }),
      await api<Obj>("POST", "/v1/webhooks/stripe", {
        raw: JSON.stringify(evt),
        headers: { "content-type": "application/json" },
      }),
    ];
    for (const r of spoiled) {
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: "bad_signature" });
    }
    expect(await available(client)).toBe(0);
    // Nothing was recorded: the same event, signed right (with the previous secret of a rotation), credits.
    expect((await deliver(evt, { secret: stripe.previousWebhookSecret })).body).toMatchObject({
      outcome: "credited",
    });
    expect(await available(client)).toBe(500 * 10000);
  });

  it("a paid top-up that covers 10 jobs lets exactly 10 of 40 concurrent submits through", async () => {
    const client = await createAccount("client");
    const s = await stripeSession(String((await topUp(client)).body.id));
    expect((await deliver(event("checkout.session.completed", s))).body).toMatchObject({
      outcome: "credited",
    });
    const { constraints } = isolated();
    const submits = await Promise.all(
      Array.from({ length: 40 }, () => submitEcho(client, { constraints, max_price: (500 * 10000) / 10 })),
    );
    expect(submits.filter((r) => r.status === 201)).toHaveLength(10);
    expect(submits.filter((r) => r.status === 402)).toHaveLength(30);
    expect(await available(client)).toBe(0);
  });

  it("takes back what a refund refunds, once per refunded amount, whatever the order, even below zero", async () => {
    const client = await createAccount("client");
    const s = await stripeSession(String((await topUp(client)).body.id));
    expect((await deliver(event("checkout.session.completed", s))).body).toMatchObject({
      outcome: "credited",
    });
    // A charge as Stripe reports it: `amount_refunded` is the total refunded so far.
    const charge = (refunded: number) => ({
      id: "ch_test",
      object: "charge",
      amount: 500,
      amount_refunded: refunded,
      currency: "usd",
      payment_intent: `pi_${String(s.id)}`,
      refunded: refunded === 500,
    });
    const part = event("charge.refunded", {});
    (part.data as Obj).object = charge(200);
    const full = event("charge.refunded", {});
    (full.data as Obj).object = charge(500);
    expect((await deliver(part)).body).toMatchObject({ outcome: "refunded" });
    expect((await deliver(part)).body).toMatchObject({ outcome: "duplicate" });
    expect(await available(client)).toBe(300 * 10000);
    // Spent meanwhile: the full refund takes the balance below zero, and submits are refused.
    const { constraints } = isolated();
    expect((await submitEcho(client, { constraints, max_price: 3_000_000 })).status).toBe(201);
    expect((await deliver(full)).body).toMatchObject({ outcome: "refunded" });
    // An older refund event arriving late moves nothing.
    const late = event("charge.refunded", {});
    (late.data as Obj).object = charge(200);
    expect((await deliver(late)).body).toMatchObject({ outcome: "already_settled" });
    // 5,000,000 credited, 2,000,000 and 3,000,000 taken back, 3,000,000 held by the job: -3,000,000 available.
    expect(await available(client)).toBe(-3_000_000);
    expect((await submitEcho(client, { constraints, max_price: 1 })).status).toBe(402);
    const refunds = (await queryPk(`ACCOUNT#${client.id}`)).filter((i) => i.type === "payment.refunded.v1");
    expect(refunds.map((r) => (r.data as Obj).credits).sort()).toEqual([2_000_000, 3_000_000].sort());
  });

  it("records and ignores a session the coordinator did not create, and events it does not handle", async () => {
    const foreign = {
      id: `cs_test_${randomBytes(8).toString("hex")}`,
      object: "checkout.session",
      amount_total: 500,
    };
    expect((await deliver(event("checkout.session.completed", foreign))).body).toMatchObject({
      outcome: "not_ours",
    });
    expect((await deliver(event("customer.created", {}))).body).toMatchObject({ outcome: "ignored" });
  });
});

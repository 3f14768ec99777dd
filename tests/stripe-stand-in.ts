import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A STAND-IN for Stripe's API (we cannot reach Stripe from here): the two calls the coordinator makes, in Stripe's
 * wire format, so that the real `stripe` SDK talks to it unchanged. `POST /v1/checkout/sessions` takes Stripe's
 * form encoding (`line_items[0][price_data][currency]=usd`, `metadata[purpose]=...`) and answers a
 * `checkout.session` object; `GET /v1/checkout/sessions/{id}` returns it. Anything else is Stripe's 404 error shape.
 * Requests without a `Bearer sk_...` key get Stripe's 401.
 */
export interface StandIn {
  url: string;
  sessions: Map<string, Record<string, unknown>>;
  close(): Promise<void>;
}

/** `a[b][0][c]=x` form fields into nested objects and arrays, as Stripe reads them. */
function decodeForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.replace(/\]/g, "").split("[");
    let node: Record<string, unknown> = root;
    path.forEach((part, i) => {
      if (i === path.length - 1) node[part] = value;
      else {
        node[part] ??= /^\d+$/.test(path[i + 1] as string) ? [] : {};
        node = node[part] as Record<string, unknown>;
      }
    });
  }
  return root;
}

const stripeError = (status: number, message: string, type = "invalid_request_error") => ({
  status,
  body: { error: { type, message } },
});

export async function startStripeStandIn(): Promise<StandIn> {
  const sessions = new Map<string, Record<string, unknown>>();
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const answer = ((): { status: number; body: unknown } => {
        if (!/^Bearer sk_/.test(req.headers.authorization ?? ""))
          return stripeError(401, "Invalid API Key provided");
        const url = new URL(req.url ?? "/", "http://stand-in");
        if (req.method === "POST" && url.pathname === "/v1/checkout/sessions") {
          const p = decodeForm(raw);
          const item = (p.line_items as Record<string, Record<string, unknown>>[] | undefined)?.[0];
          const price = item?.price_data as Record<string, unknown> | undefined;
          const amount = Number(price?.unit_amount) * Number(item?.quantity ?? 1);
          if (!price || !Number.isFinite(amount))
            return stripeError(400, "line_items[0][price_data] is required");
          const id = `cs_test_${randomBytes(12).toString("hex")}`;
          const session = {
            id,
            object: "checkout.session",
            mode: p.mode,
            status: "open",
            payment_status: "unpaid",
            amount_total: amount,
            currency: price.currency,
            client_reference_id: p.client_reference_id ?? null,
            metadata: p.metadata ?? {},
            success_url: p.success_url,
            cancel_url: p.cancel_url,
            payment_intent: null,
            url: `https://checkout.stripe.com/c/pay/${id}`,
            created: Math.floor(Date.now() / 1000),
            livemode: false,
          };
          sessions.set(id, session);
          return { status: 200, body: session };
        }
        const m = /^\/v1\/checkout\/sessions\/([^/]+)$/.exec(url.pathname);
        if (req.method === "GET" && m) {
          const s = sessions.get(m[1] as string);
          return s ? { status: 200, body: s } : stripeError(404, `No such checkout.session: '${m[1]}'`);
        }
        return stripeError(404, `Unrecognized request URL (${req.method}: ${url.pathname})`);
      })();
      res.writeHead(answer.status, {
        "content-type": "application/json",
        "request-id": `req_${randomBytes(6).toString("hex")}`,
      });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

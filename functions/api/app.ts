import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { CoordError } from "../../core/errors.ts";
import { creditRates } from "../../core/payments/config.ts";
import { assertSettings } from "../../core/settings.ts";
import { chainConfig } from "../../core/settlement/config.ts";
import { log } from "../log.ts";
import { bodyGate } from "./body-limit.ts";
import type { AppEnv } from "./env.ts";
import { problem, problemFromError } from "./problem.ts";
import { account } from "./routes/account.ts";
import { admin } from "./routes/admin.ts";
import { adminOps } from "./routes/admin-ops.ts";
import { artifacts, uploads } from "./routes/artifacts.ts";
import { dlq } from "./routes/dlq.ts";
import { health } from "./routes/health.ts";
import { jobs, shortcuts } from "./routes/jobs.ts";
import { apiKeys } from "./routes/keys.ts";
import { metricsRoute } from "./routes/metrics.ts";
import { miners } from "./routes/miners.ts";
import { payments, stripeWebhook } from "./routes/payments.ts";
import { adminPayouts, payouts } from "./routes/payouts.ts";
import { platform } from "./routes/platform.ts";
import { pools } from "./routes/pools.ts";
import { jobReceiptRoutes, receipts } from "./routes/receipts.ts";
import { registry } from "./routes/registry.ts";
import { chainWebhook, receiptProofs } from "./routes/settlement.ts";
import { webhooks } from "./routes/webhooks.ts";

/** Lambda's synchronous payload limit is 6 MB; we stop well before, leaving room for 256 KB inline payloads. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The whole HTTP API. The same app runs on Lambda (functions/api/handler.ts) and on Node (local/). */
export function createApp() {
  // A malformed numeric setting stops the app here (a Lambda's cold start, `npm start`), naming it.
  assertSettings();
  // The one non-numeric setting with a shape: a typo stops the start, naming it, not a checkout later (a 500).
  creditRates();
  // The same for the chain settings (a malformed key or URL), without reaching the chain.
  chainConfig();
  const app = new Hono<AppEnv>();

  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.info("request", {
      request_id: c.var.requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
      account_id: c.var.principal?.accountId,
    });
  });
  app.use(bodyGate(MAX_BODY_BYTES));

  app.route("/v1", health);
  app.route("/", metricsRoute);
  app.route("/v1/account", account);
  app.route("/v1/admin/dlq", dlq);
  app.route("/v1/admin/payouts", adminPayouts);
  app.route("/v1/admin/platform", platform);
  app.route("/v1/admin", admin);
  app.route("/v1/admin", adminOps);
  app.route("/v1/keys", apiKeys);
  app.route("/v1/registry", registry);
  app.route("/v1/jobs", jobs);
  app.route("/v1/jobs", jobReceiptRoutes);
  app.route("/v1/receipts", receipts);
  app.route("/v1/receipts", receiptProofs);
  app.route("/v1/services", shortcuts);
  app.route("/v1/miners", miners);
  app.route("/v1/pools", pools);
  // Before the client webhooks' routes: Stripe's and the chain's deliveries carry no key.
  app.route("/v1/webhooks/stripe", stripeWebhook);
  app.route("/v1/webhooks/chain", chainWebhook);
  app.route("/v1/webhooks", webhooks);
  app.route("/v1/payments", payments);
  app.route("/v1/uploads", uploads);
  app.route("/v1/artifacts", artifacts);
  app.route("/v1/payouts", payouts);

  app.notFound((c) => problem(c, 404, "not_found", `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    if (err instanceof CoordError) return problemFromError(c, err);
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return problem(c, status, status === 413 ? "payload_too_large" : "bad_request", err.message);
    }
    if (c.req.raw.signal.aborted || (err as { code?: string }).code === "ECONNRESET") {
      // The client went away mid-request (closed the socket, timed out): nobody reads this answer, nothing is wrong.
      log.info("client disconnected", { request_id: c.var.requestId, path: c.req.path, reason: String(err) });
      return problem(c, 400, "client_disconnected", "the client closed the connection");
    }
    log.error("unhandled error", {
      request_id: c.var.requestId,
      err: err instanceof Error ? err.stack : String(err),
    });
    return problem(c, 500, "internal", "internal error; the request id identifies it in our logs");
  });
  return app;
}

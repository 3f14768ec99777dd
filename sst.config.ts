/// <reference path="./.sst/platform/config.d.ts" />

/**
 * The AWS deployment (SST v3+ / v4 config). Each piece lives in stacks/ and is built from the same definitions the
 * local stack uses (core/db/table.ts, events/queues.ts, events/rules.ts, functions/cron/schedules.ts).
 * See docs/deploy.md. Stacks are imported inside run(), where SST's globals (`sst`, `aws`, `$app`...) exist.
 */
const PRODUCTION_STAGES = ["prod", "production"];

export default $config({
  app(input) {
    const production = PRODUCTION_STAGES.includes(input.stage);
    return {
      name: "coordinator",
      home: "aws",
      // Keep the table and queues of production if they ever leave the config; `sst remove` refuses to run there.
      removal: production ? "retain" : "remove",
      protect: production,
    };
  },
  async run() {
    const { createSecrets, secretEnvironment } = await import("./stacks/secrets.ts");
    const { createTable } = await import("./stacks/table.ts");
    const { createQueues, queueEnvironment, subscribeConsumers } = await import("./stacks/queues.ts");
    const { createBus } = await import("./stacks/bus.ts");
    const { createApi } = await import("./stacks/api.ts");
    const { createStreamHandler } = await import("./stacks/stream.ts");
    const { createDoorbell } = await import("./stacks/doorbell.ts");
    const { createCrons } = await import("./stacks/cron.ts");
    const { createArtifactBucket } = await import("./stacks/artifacts.ts");

    const prefix = `${$app.name}-${$app.stage}`;
    const secrets = createSecrets();
    const table = createTable();
    const artifacts = createArtifactBucket();
    const queues = createQueues(prefix);
    const { bus, deadLetters } = createBus(queues);

    // Every function gets the same view of the stack: what functions/ and core/config.ts read, and links (IAM
    // access plus `Resource.<Name>` for the secrets).
    const context = {
      environment: {
        COORD_TABLE_NAME: table.name,
        COORD_ARTIFACT_BUCKET: artifacts.name,
        COORD_BUS_NAME: bus.name,
        COORD_QUEUE_PREFIX: prefix,
        // Webhook tunables pass through from the deploying shell when set (docs/webhooks.md).
        ...(Object.fromEntries(
          Object.entries(process.env).filter(([k, v]) => k.startsWith("COORD_WEBHOOK_") && v !== undefined),
        ) as Record<string, string>),
        ...queueEnvironment(queues),
        // Secrets in the variables core/ reads. An environment variable (visible to whoever may read the function's
        // configuration) rather than the SDK's encrypted bundle, so that core/ needs no deploy-specific reader;
        // docs/decisions.md says why and what it costs.
        ...secretEnvironment(secrets),
      },
      // DLQs too: the admin DLQ routes peek and redrive them, consumers move poison messages there.
      link: [table, artifacts, bus, ...queues.flatMap((q) => [q.queue, q.dlq]), ...Object.values(secrets)],
    };

    const { api } = createApi(context);
    const doorbell = createDoorbell(context);
    // The stream handler rings connected miners through the doorbell's API (core/doorbell/ring.ts).
    const { failures } = createStreamHandler(table, doorbell.withDoorbell(context));
    subscribeConsumers(queues, context);
    createCrons(context);

    return {
      api: api.url,
      doorbell: doorbell.api.url,
      table: table.name,
      artifacts: artifacts.name,
      bus: bus.name,
      queues: Object.fromEntries(queues.map((q) => [q.def.name, q.queue.url])),
      deadLetterQueues: {
        ...Object.fromEntries(queues.map((q) => [q.def.name, q.dlq.url])),
        bus: deadLetters.url,
        stream: failures.url,
      },
    };
  },
});

/**
 * Offline synth check: `npx tsx stacks/synth.ts [stage]` (after `sst install`, no AWS account or network needed).
 *
 * Evaluates sst.config.ts the way `sst deploy` does, against Pulumi's mocks instead of AWS and a stand-in for the
 * SST CLI's RPC server (function builds are stubbed: `npm run build` checks the bundles). It then checks that the
 * resources the issue asks for exist and are wired as intended (DLQs and redrive, partial batch responses, the
 * stream mapping's bisect/retry/failure destination, one rule and target per bus rule, the API route, the doorbell's
 * WebSocket routes and the functions that reach its sockets, the crons, the runtime of every function) and prints
 * what a deploy would create. Exit code 1 on any failed check.
 *
 * It leans on SST internals (.sst/platform/src/shim, the RPC method names), so an SST upgrade may need a touch here.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { QUEUES } from "../events/queues.ts";
import { RULES } from "../events/rules.ts";
import { SCHEDULES } from "../functions/cron/schedules.ts";
import { LAMBDA } from "./entries.ts";
import { SECRET_ENV, SECRET_NAMES } from "./secrets.ts";
import { STREAM_READING } from "./stream.ts";

type Inputs = Record<string, unknown>;

/** Pulumi's wire form of a secret value (the function's environment holds secrets): its signature key and the value. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
function unsecret(value: unknown): unknown {
  return value && typeof value === "object" && SECRET_SIG in value
    ? (value as unknown as { value: unknown }).value
    : value;
}
interface Created {
  type: string;
  name: string;
  inputs: Inputs;
}

const root = resolve(import.meta.dirname, "..");
const platform = join(root, ".sst", "platform");
const stage = process.argv[2] ?? "ci";
const work = mkdtempSync(join(tmpdir(), "coord-synth-"));

/** Stand-in for the SST CLI's RPC server: the two methods the components we use call during a deploy. */
async function startRpc(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const msg = JSON.parse(body) as { id: unknown; method: string; params: Inputs[] };
      let result: unknown;
      let error: string | null = null;
      if (msg.method === "Runtime.Build") {
        const out = join(work, "build", String(msg.params[0]?.functionID));
        mkdirSync(out, { recursive: true });
        writeFileSync(join(out, "index.mjs"), "export const handler = async () => {};\n");
        result = { handler: "index.handler", out, errors: [], sourcemaps: [] };
      } else if (msg.method === "Provider.Aws.Bootstrap") {
        result = { asset: "synth-bootstrap-assets", assetEcrUrl: "", assetEcrRegistryId: "", state: "" };
      } else {
        error = `synth: unexpected RPC ${msg.method}`;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: msg.id, result, error }));
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("synth: no RPC port");
  process.env.SST_SERVER = `http://127.0.0.1:${address.port}`;
  return server;
}

async function synth(): Promise<{ created: Created[]; outputs: unknown }> {
  const pulumi = (await import(join(platform, "node_modules/@pulumi/pulumi/index.js"))) as typeof $util;
  const created: Created[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        created.push({ type: args.type, name: args.name, inputs: args.inputs });
        const arn = `arn:aws:synth:us-east-1:123456789012:${args.type.split(":")[1]}/${args.name}`;
        return {
          id: `${args.name}-id`,
          state: {
            ...args.inputs,
            arn,
            name: args.inputs.name ?? `${args.name}-${stage}`,
            url: `https://synth.invalid/${args.name}`,
            streamArn: `${arn}/stream/label`,
            executionArn: `${arn}/execution`,
            apiEndpoint: `https://${args.name}.synth.invalid`,
            invokeArn: `${arn}/invocations`,
            qualifiedArn: `${arn}:1`,
            base64: Buffer.alloc(32, 1).toString("base64"),
          },
        };
      },
      call(args) {
        if (args.token.includes("getPolicyDocument")) {
          return { json: JSON.stringify(args.inputs), statements: args.inputs.statements };
        }
        if (args.token.includes("getRegion"))
          return { name: "us-east-1", region: "us-east-1", id: "us-east-1" };
        if (args.token.includes("getCallerIdentity")) return { accountId: "123456789012" };
        if (args.token.includes("getPartition")) return { partition: "aws", dnsSuffix: "amazonaws.com" };
        return args.inputs;
      },
    },
    "coordinator",
    stage,
    false,
  );

  // The globals `sst deploy` gives sst.config.ts.
  const globals = globalThis as Record<string, unknown>;
  const shim = (await import(join(platform, "src/shim/run.js"))) as Inputs;
  Object.assign(globals, shim);
  // Provisional until the config's app() answers (components read it as they load).
  globals.$app = { name: "coordinator", stage, removal: "remove", protect: false, providers: {} };
  globals.sst = await import(join(platform, "src/components/index.ts"));
  globals.aws = await import(join(platform, "node_modules/@pulumi/aws/index.js"));
  globals.$dev = false;
  globals.$cli = {
    command: "deploy",
    rpc: process.env.SST_SERVER,
    paths: { home: join(work, "home"), root, work: join(root, ".sst"), platform },
    state: { version: {} },
  };
  // `sst deploy` hands the program each secret's value as SST_SECRET_<Name>; synth gives stand-ins, so that what
  // the functions get from the secrets (their environment) can be checked.
  for (const name of SECRET_NAMES) process.env[`SST_SECRET_${name}`] ??= `synth-${name}`;
  const { default: config } = (await import(join(root, "sst.config.ts"))) as {
    default: { app(input: { stage: string }): Inputs; run(): Promise<unknown> };
  };
  globals.$app = { ...(globals.$app as Inputs), ...config.app({ stage }), stage, providers: {} };
  const unwrap = (value: unknown) =>
    new Promise<unknown>((ok) => pulumi.output(value as $util.Input<Inputs>).apply((v) => ok(v)));
  const outputs = await unwrap(await config.run());
  // Let every pending apply register its resources (until none has appeared for a while: a loaded machine is slow to
  // run them, and a fixed pause once missed the last functions), then resolve their inputs.
  for (let quiet = 0, seen = -1, waited = 0; quiet < 3 && waited < 30_000; waited += 500) {
    await new Promise((ok) => setTimeout(ok, 500));
    quiet = created.length === seen ? quiet + 1 : 0;
    seen = created.length;
  }
  const resolved = await Promise.all(
    created.map(async (c) => ({ ...c, inputs: (await unwrap(c.inputs)) as Inputs })),
  );
  return { created: resolved, outputs };
}

function check(created: Created[]): string[] {
  const failures: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
  };
  const of = (type: string) => created.filter((c) => c.type === type);
  const named = (type: string, name: string) => of(type).find((c) => c.name === name);

  const queues = of("aws:sqs/queue:Queue");
  const mappings = of("aws:lambda/eventSourceMapping:EventSourceMapping");
  for (const def of QUEUES) {
    const queue = queues.find(
      (q) => typeof q.inputs.name === "string" && q.inputs.name.endsWith(`-${def.name}`),
    );
    const dlq = queues.find(
      (q) => typeof q.inputs.name === "string" && q.inputs.name.endsWith(`-${def.name}-dlq`),
    );
    expect(Boolean(queue && dlq), `queue ${def.name} and its DLQ`);
    const redrive = JSON.parse(String(queue?.inputs.redrivePolicy ?? "{}")) as Inputs;
    expect(redrive.maxReceiveCount === def.maxReceiveCount, `queue ${def.name} redrive maxReceiveCount`);
    expect(
      queue?.inputs.visibilityTimeoutSeconds === def.visibilityTimeoutSeconds,
      `queue ${def.name} visibility`,
    );
    const mapping = mappings.find((m) => String(m.inputs.eventSourceArn).endsWith(`/${queue?.name}`));
    expect(mapping?.inputs.batchSize === def.batchSize, `queue ${def.name} consumer batch size`);
    expect(
      JSON.stringify(mapping?.inputs.functionResponseTypes) === '["ReportBatchItemFailures"]',
      `queue ${def.name} consumer reports batch item failures`,
    );
  }

  const stream = mappings.find((m) => String(m.inputs.eventSourceArn).includes("/stream/"));
  expect(Boolean(stream), "table stream subscription");
  for (const key of [
    "batchSize",
    "bisectBatchOnFunctionError",
    "maximumRetryAttempts",
    "maximumRecordAgeInSeconds",
    "startingPosition",
  ] as const) {
    expect(stream?.inputs[key] === STREAM_READING[key], `stream subscription ${key}`);
  }
  expect(
    JSON.stringify(stream?.inputs.functionResponseTypes) === '["ReportBatchItemFailures"]',
    "stream subscription reports batch item failures",
  );
  const onFailure = (
    stream?.inputs.destinationConfig as { onFailure?: { destinationArn?: string } } | undefined
  )?.onFailure?.destinationArn;
  expect(Boolean(onFailure?.includes(":sqs/")), "stream subscription on-failure destination is a queue");
  expect(
    Boolean((stream?.inputs.filterCriteria as Inputs | undefined)?.filters),
    "stream subscription filters",
  );

  const table = of("aws:dynamodb/table:Table")[0];
  expect(table?.inputs.streamViewType === "NEW_AND_OLD_IMAGES", "table stream NEW_AND_OLD_IMAGES");
  expect((table?.inputs.ttl as Inputs | undefined)?.attributeName === "expiresAt", "table TTL on expiresAt");

  const rules = of("aws:cloudwatch/eventRule:EventRule");
  const targets = of("aws:cloudwatch/eventTarget:EventTarget");
  expect(of("aws:cloudwatch/eventBus:EventBus").length === 1, "one event bus");
  expect(
    rules.length === RULES.length && targets.length === RULES.length,
    "one rule and one target per bus rule",
  );
  for (const target of targets) {
    expect(Boolean(target.inputs.deadLetterConfig), `${target.name} has a dead-letter queue`);
  }
  const policies = of("aws:sqs/queuePolicy:QueuePolicy");
  expect(policies.length >= new Set(RULES.map((r) => r.target)).size, "rule target queues have policies");

  const routes = of("aws:apigatewayv2/route:Route");
  expect(
    routes.some((r) => r.inputs.routeKey === "$default"),
    "API $default route",
  );
  expect(of("aws:scheduler/schedule:Schedule").length === SCHEDULES.length, "one schedule per cron");
  // The doorbell: a WebSocket API with its three routes, and the functions that reach its sockets (env + IAM).
  const ws = of("aws:apigatewayv2/api:Api").find((a) => a.inputs.protocolType === "WEBSOCKET");
  expect(Boolean(ws), "doorbell WebSocket API");
  for (const key of ["$connect", "$disconnect", "$default"]) {
    expect(
      routes.some((r) => r.inputs.routeKey === key && r.inputs.apiId === `${ws?.name}-id`),
      `doorbell ${key} route`,
    );
  }
  for (const component of ["DoorbellHandler", "StreamHandler"]) {
    const fn = named("aws:lambda/function:Function", `${component}Function`);
    const env = (unsecret(fn?.inputs.environment) as { variables?: Inputs } | undefined)?.variables ?? {};
    expect(typeof env.COORD_DOORBELL_ENDPOINT === "string", `${component} env COORD_DOORBELL_ENDPOINT`);
    const role = JSON.stringify(named("aws:iam/role:Role", `${component}Role`)?.inputs ?? {});
    expect(role.includes("execute-api:ManageConnections"), `${component} may manage doorbell connections`);
  }

  for (const fn of of("aws:lambda/function:Function")) {
    const env = (unsecret(fn.inputs.environment) as { variables?: Inputs } | undefined)?.variables ?? {};
    expect(fn.inputs.runtime === LAMBDA.runtime, `${fn.name} runtime ${LAMBDA.runtime}`);
    expect(JSON.stringify(fn.inputs.architectures) === `["${LAMBDA.architecture}"]`, `${fn.name} arm64`);
    for (const name of [
      "COORD_TABLE_NAME",
      "COORD_BUS_NAME",
      "COORD_QUEUE_PREFIX",
      ...Object.values(SECRET_ENV),
    ]) {
      expect(env[name] !== undefined, `${fn.name} env ${name}`);
    }
  }
  for (const name of SECRET_NAMES) expect(Boolean(named("sst:sst:Secret", name)), `secret ${name}`);
  return failures;
}

const server = await startRpc();
try {
  const { created, outputs } = await synth();
  const counts = new Map<string, number>();
  for (const c of created.filter((c) => !c.type.startsWith("sst:"))) {
    counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
  }
  console.log(`Stage ${stage}: ${created.length} resources (components included)`);
  for (const [type, n] of [...counts].sort()) console.log(`  ${String(n).padStart(3)}  ${type}`);
  console.log(`Outputs: ${JSON.stringify(outputs, null, 2)}`);
  const failures = check(created);
  if (failures.length > 0) {
    console.error(`\nFailed checks:\n  ${failures.join("\n  ")}`);
    process.exitCode = 1;
  } else {
    console.log("\nAll checks passed.");
  }
} finally {
  server.close();
  rmSync(work, { recursive: true, force: true });
}
// Pulumi's mock runtime keeps handles open.
process.exit(process.exitCode ?? 0);

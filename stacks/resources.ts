/**
 * Compile-time check that the committed sst-env.d.ts (which types `Resource` from "sst" without a deploy) names
 * exactly the linkable components the stack creates. `sst deploy`/`sst dev` regenerate that file; when a queue or a
 * secret is added, either run one of them or add the entry by hand, and `npm run typecheck` says which.
 */
import type { Resource } from "sst";
import type { QueueName } from "../events/queues.ts";
import type { SecretName } from "./secrets.ts";

/** Type-level `pascal()` of stacks/entries.ts. */
type Pascal<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Capitalize<Head>}${Pascal<Tail>}`
  : Capitalize<S>;

type Expected =
  | "Api"
  | "Artifacts"
  | "ApiHandler"
  | "Bus"
  | "BusDlq"
  | "Doorbell"
  | "DoorbellHandler"
  | "StreamFailures"
  | "StreamHandler"
  | "Table"
  | SecretName
  | `${Pascal<QueueName>}${"Queue" | "Dlq" | "Consumer"}`;

/** Cron functions (`<Name>Cron`) come from SCHEDULES, which is not a literal type: tolerated, not required. */
type Tolerated = "App" | `${string}Cron`;

type Missing = Exclude<Expected, keyof Resource>;
type Stale = Exclude<keyof Resource, Expected | Tolerated>;

export const sstEnvInSync: [Missing | Stale] extends [never]
  ? true
  : { missingFromSstEnv: Missing; notInStack: Stale } = true;

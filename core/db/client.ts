import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { config } from "../config.ts";
import { currentWorkClass, dynamoGate } from "./work-class.ts";

let cached: DynamoDBDocumentClient | undefined;

/** One document client per process (Lambda instance), pointed at DynamoDB Local when configured. */
export function ddb(): DynamoDBDocumentClient {
  if (cached) return cached;
  const endpoint = config.dynamoEndpoint;
  const raw = new DynamoDBClient({
    region: config.region,
    ...(endpoint ? { endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
    maxAttempts: 5,
  });
  if (process.env.COORD_MEASURE_CAPACITY === "1") meterCapacity(raw);
  gate(raw);
  cached = DynamoDBDocumentClient.from(raw, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return cached;
}

/** Every request waits its turn at the process's gate, by the work class of what sent it (core/db/work-class.ts). */
function gate(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const release = await dynamoGate.acquire(currentWorkClass());
      try {
        return await next(args);
      } finally {
        release();
      }
    },
    // Outside the SDK's retries: a retried request keeps its slot rather than queueing again.
    { step: "initialize", name: "coordPriorityGate", priority: "high" },
  );
}

export function resetDdbClient(): void {
  cached = undefined;
}

// ---- opt-in capacity meter (benchmarks): COORD_MEASURE_CAPACITY=1 before the first ddb() call ----

/** Capacity one operation name consumed, as DynamoDB reported it (`ReturnConsumedCapacity: "INDEXES"`). */
export interface CapacityUse {
  calls: number;
  /** Calls that threw (e.g. a failed condition): DynamoDB reports no capacity for those, though it charges some. */
  errors: number;
  readUnits: number;
  writeUnits: number;
}

export interface CapacityRecord {
  /** The low-level operation, e.g. `GetItem`, `TransactWriteItems`. */
  operation: string;
  /** The command input (document form), for callers that attribute costs by key or index. */
  input: Record<string, unknown>;
  readUnits: number;
  writeUnits: number;
  /** The same units by where they were spent: `table` and each GSI by name. */
  byIndex: Record<string, number>;
  error?: string;
}

const METERED = new Set([
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactGetItems",
  "TransactWriteItems",
  "ExecuteStatement",
  "BatchExecuteStatement",
  "ExecuteTransaction",
]);
const READS = new Set(["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"]);

let usage = new Map<string, CapacityUse>();

/** Totals since the last reset; `listener` (if set) also sees every metered call. Empty unless metering is on. */
export const capacityMeter = {
  listener: undefined as ((record: CapacityRecord) => void) | undefined,
  snapshot(): Record<string, CapacityUse> {
    return Object.fromEntries([...usage].map(([op, u]) => [op, { ...u }]));
  },
  reset(): void {
    usage = new Map();
  },
};

function record(rec: CapacityRecord): void {
  const u = usage.get(rec.operation) ?? { calls: 0, errors: 0, readUnits: 0, writeUnits: 0 };
  u.calls++;
  if (rec.error) u.errors++;
  u.readUnits += rec.readUnits;
  u.writeUnits += rec.writeUnits;
  usage.set(rec.operation, u);
  capacityMeter.listener?.(rec);
}

interface Units {
  CapacityUnits?: number;
}
interface Consumed extends Units {
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
  Table?: Units;
  GlobalSecondaryIndexes?: Record<string, Units>;
}

function meterCapacity(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? "").replace(/Command$/, "");
      if (!METERED.has(operation)) return next(args);
      const input = { ReturnConsumedCapacity: "INDEXES", ...(args.input as Record<string, unknown>) };
      const rec: CapacityRecord = { operation, input, readUnits: 0, writeUnits: 0, byIndex: {} };
      const spend = (where: string, units: number | undefined) => {
        if (units) rec.byIndex[where] = (rec.byIndex[where] ?? 0) + units;
      };
      try {
        const out = await next({ ...args, input });
        const cc = (out.output as { ConsumedCapacity?: Consumed | Consumed[] }).ConsumedCapacity;
        for (const c of [cc ?? []].flat()) {
          const total = c.CapacityUnits ?? 0;
          if (c.ReadCapacityUnits !== undefined || c.WriteCapacityUnits !== undefined) {
            rec.readUnits += c.ReadCapacityUnits ?? 0;
            rec.writeUnits += c.WriteCapacityUnits ?? 0;
          } else if (READS.has(operation)) rec.readUnits += total;
          else rec.writeUnits += total;
          spend("table", c.Table?.CapacityUnits);
          for (const [name, u] of Object.entries(c.GlobalSecondaryIndexes ?? {}))
            spend(name, u.CapacityUnits);
        }
        return out;
      } catch (err) {
        rec.error = (err as Error).name;
        throw err;
      } finally {
        record(rec);
      }
    },
    { step: "initialize", name: "coordCapacityMeter" },
  );
}

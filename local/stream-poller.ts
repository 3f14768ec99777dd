import { readFileSync, writeFileSync } from "node:fs";
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { matchesStreamFilters } from "../functions/stream/filters.ts";

type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse>;

interface ShardState {
  iterator?: string;
  /** Last sequence number handed successfully to the handler. */
  checkpoint?: string;
  done: boolean;
  /** Consecutive failed attempts at the record after the checkpoint. */
  retries?: number;
}

/**
 * Plays the role of Lambda's DynamoDB stream event source mapping: reads every shard in order, hands batches to the
 * handler, and honours `batchItemFailures` by re-reading from the first failed record (with back-off). Checkpoints
 * persist to `checkpointFile` so that a restart resumes where it stopped instead of replaying or skipping.
 */
export class StreamPoller {
  private readonly client: DynamoDBStreamsClient;
  private readonly shards = new Map<string, ShardState>();
  private running = false;
  private loop?: Promise<void>;
  private lastDescribe = 0;
  private failures = 0;

  constructor(
    endpoint: string,
    private readonly streamArn: string,
    private readonly handler: StreamHandler,
    private readonly opts: {
      checkpointFile?: string;
      batchSize?: number;
      idleMs?: number;
      /** Like the event source mapping's maximumRetryAttempts: then the record is discarded (and reported). */
      maxRetries?: number;
      /** Like the on-failure destination: receives a record given up on, so that it is kept, not lost. */
      onDiscard?: (record: unknown) => Promise<void>;
      onError?: (e: unknown) => void;
    } = {},
  ) {
    this.client = new DynamoDBStreamsClient({
      endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    if (opts.checkpointFile) {
      try {
        const saved = JSON.parse(readFileSync(opts.checkpointFile, "utf8")) as {
          streamArn: string;
          shards: Record<string, string>;
        };
        if (saved.streamArn === streamArn) {
          for (const [id, seq] of Object.entries(saved.shards))
            this.shards.set(id, { checkpoint: seq, done: false });
        }
      } catch {
        // no checkpoint yet
      }
    }
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.client.destroy();
  }

  private saveCheckpoints(): void {
    if (!this.opts.checkpointFile) return;
    const shards: Record<string, string> = {};
    for (const [id, s] of this.shards) if (s.checkpoint) shards[id] = s.checkpoint;
    writeFileSync(this.opts.checkpointFile, JSON.stringify({ streamArn: this.streamArn, shards }));
  }

  private async describe(): Promise<void> {
    let start: string | undefined;
    do {
      const out = await this.client.send(
        new DescribeStreamCommand({ StreamArn: this.streamArn, ExclusiveStartShardId: start }),
      );
      for (const shard of out.StreamDescription?.Shards ?? []) {
        if (shard.ShardId && !this.shards.has(shard.ShardId)) this.shards.set(shard.ShardId, { done: false });
      }
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    this.lastDescribe = Date.now();
  }

  private async iteratorFor(shardId: string, s: ShardState): Promise<string | undefined> {
    const out = await this.client.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shardId,
        ...(s.checkpoint
          ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: s.checkpoint }
          : { ShardIteratorType: "TRIM_HORIZON" }),
      }),
    );
    return out.ShardIterator;
  }

  /** One pass over every open shard; returns how many records were handled. */
  async pollOnce(): Promise<number> {
    if (Date.now() - this.lastDescribe > 2000) await this.describe();
    let handled = 0;
    for (const [shardId, s] of this.shards) {
      if (s.done) continue;
      s.iterator ??= await this.iteratorFor(shardId, s);
      if (!s.iterator) {
        s.done = true;
        continue;
      }
      let out: Awaited<ReturnType<typeof this.getRecords>>;
      try {
        out = await this.getRecords(s.iterator);
      } catch (err) {
        if (err instanceof ExpiredIteratorException) {
          s.iterator = undefined;
          continue;
        }
        throw err;
      }
      const records = out.Records ?? [];
      if (records.length === 0) {
        s.iterator = out.NextShardIterator;
        if (!s.iterator) s.done = true;
        continue;
      }
      // After repeated failures, retry the failing record alone (bisect), then give up on it (on-failure).
      const batch = (s.retries ?? 0) >= 2 ? records.slice(0, 1) : records;
      let firstFailed: string | undefined;
      try {
        // Like the event source mapping's filter criteria: only matching records reach the handler.
        const delivered = batch.map(toLambdaRecord).filter((r) => matchesStreamFilters(r as DynamoDBRecord));
        const result = delivered.length
          ? await this.handler({ Records: delivered } as DynamoDBStreamEvent)
          : { batchItemFailures: [] };
        firstFailed = result?.batchItemFailures?.[0]?.itemIdentifier;
      } catch (err) {
        this.opts.onError?.(err);
        firstFailed = batch[0]?.dynamodb?.SequenceNumber;
      }
      if (firstFailed && (s.retries ?? 0) + 1 >= (this.opts.maxRetries ?? 5) && batch.length === 1) {
        this.opts.onError?.(
          new Error(
            `stream record ${firstFailed} moved to the failure queue after ${this.opts.maxRetries ?? 5} attempts`,
          ),
        );
        await this.opts.onDiscard?.(toLambdaRecord(batch[0] as _Record));
        s.checkpoint = firstFailed;
        s.iterator = undefined;
        s.retries = 0;
        this.saveCheckpoints();
        continue;
      }
      if (firstFailed) {
        s.retries =
          batch.length === records.length && records[0]?.dynamodb?.SequenceNumber !== firstFailed
            ? 1
            : (s.retries ?? 0) + 1;
        // Like Lambda with ReportBatchItemFailures: everything before the failed record is checkpointed, and the
        // batch is retried from the failed record.
        const idx = records.findIndex((r) => r.dynamodb?.SequenceNumber === firstFailed);
        const before = idx > 0 ? records[idx - 1]?.dynamodb?.SequenceNumber : undefined;
        if (before) s.checkpoint = before;
        s.iterator = undefined;
        this.failures++;
        handled += Math.max(idx, 0);
      } else if (batch.length < records.length) {
        s.checkpoint = batch.at(-1)?.dynamodb?.SequenceNumber ?? s.checkpoint;
        s.iterator = undefined;
        s.retries = 0;
        handled += batch.length;
      } else {
        s.checkpoint = records.at(-1)?.dynamodb?.SequenceNumber ?? s.checkpoint;
        s.iterator = out.NextShardIterator;
        if (!s.iterator) s.done = true;
        this.failures = 0;
        s.retries = 0;
        handled += records.length;
      }
      this.saveCheckpoints();
    }
    return handled;
  }

  private getRecords(iterator: string) {
    return this.client.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: this.opts.batchSize ?? 100 }),
    );
  }

  private async run(): Promise<void> {
    while (this.running) {
      let handled = 0;
      try {
        handled = await this.pollOnce();
      } catch (err) {
        this.opts.onError?.(err);
        this.failures++;
      }
      if (handled === 0) {
        const backoff =
          this.failures > 0 ? Math.min(100 * 2 ** this.failures, 5000) : (this.opts.idleMs ?? 50);
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  }
}

function toLambdaRecord(r: _Record) {
  return {
    eventID: r.eventID,
    eventName: r.eventName,
    eventVersion: r.eventVersion,
    eventSource: "aws:dynamodb",
    awsRegion: r.awsRegion ?? "us-east-1",
    dynamodb: {
      ApproximateCreationDateTime: r.dynamodb?.ApproximateCreationDateTime
        ? Math.floor(new Date(r.dynamodb.ApproximateCreationDateTime).getTime() / 1000)
        : undefined,
      Keys: r.dynamodb?.Keys,
      NewImage: r.dynamodb?.NewImage,
      OldImage: r.dynamodb?.OldImage,
      SequenceNumber: r.dynamodb?.SequenceNumber,
      SizeBytes: r.dynamodb?.SizeBytes,
      StreamViewType: r.dynamodb?.StreamViewType,
    },
  };
}

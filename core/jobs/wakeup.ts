import { EventEmitter } from "node:events";

/**
 * In-process work announcements. Within one instance, a submit (or the stream seeing a job become claimable, or a
 * requeue) tells the instance's matcher at once which queue shard has work (core/jobs/matcher.ts); across instances
 * the queue summary is what the matcher re-reads. It is a latency hint only: correctness never depends on it.
 */
const bus = new EventEmitter();
bus.setMaxListeners(0);

/** Work in `service`'s ready queue, in `shard` (undefined: any shard). */
export function notifyWork(service: string, shard?: number): void {
  bus.emit("work", service, shard);
}

/** Calls `listener` with the service (and shard) of every announcement in this instance (the matcher's wake-up). */
export function onWork(listener: (service: string, shard?: number) => void): void {
  bus.on("work", listener);
}

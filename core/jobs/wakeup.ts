import { EventEmitter } from "node:events";

/**
 * In-process wake-up for waiting polls. Within one instance, a submit (or the stream seeing a job become claimable)
 * wakes that instance's waiting polls at once; across instances the queue summary is what waiting polls re-read.
 * It is a latency hint only: correctness never depends on it.
 */
const bus = new EventEmitter();
bus.setMaxListeners(0);

export function notifyWork(service: string): void {
  bus.emit("work", service);
}

/** Calls `listener` with the service of every announcement in this instance (the matcher's wake-up). */
export function onWork(listener: (service: string) => void): void {
  bus.on("work", listener);
}

/** Resolves when work for one of `services` is announced, or after `ms`. */
export function waitForWork(services: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const onWork = (service: string) => {
      if (services.includes(service)) done();
    };
    const timer = setTimeout(() => done(), ms);
    function done() {
      clearTimeout(timer);
      bus.off("work", onWork);
      resolve();
    }
    bus.on("work", onWork);
  });
}

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Starts a test's HTTP stand-in on a free loopback port. `close` also drops its open connections (a streaming answer,
 * a kept-alive socket): a plain `server.close()` would wait for those, and a test's afterAll with it.
 */
export async function listenLocal(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

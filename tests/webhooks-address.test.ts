import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import {
  assertWebhookUrl,
  classifyAddress,
  classifyHostName,
  resolveAllowed,
  webhookUrlProblems,
} from "../core/webhooks/address.ts";
import { DEFAULT_RETRY_SCHEDULE, parseRetrySchedule, retryDelaySeconds } from "../core/webhooks/config.ts";
import { postWebhook } from "../core/webhooks/http.ts";
import { sign, signatureHeader, verifyWebhook } from "../sdk/webhooks.ts";

describe("webhook address policy", () => {
  it("classifies addresses: public, private, loopback, link-local, metadata, reserved (v4, v6, mapped)", () => {
    const cases: [string, string][] = [
      ["93.184.216.34", "public"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.32.0.1", "public"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "private"],
      ["127.0.0.1", "loopback"],
      ["127.255.0.9", "loopback"],
      ["169.254.169.254", "metadata"],
      ["169.254.170.2", "metadata"],
      ["100.100.100.200", "metadata"],
      ["169.254.1.1", "link_local"],
      ["0.0.0.0", "reserved"],
      ["224.0.0.1", "reserved"],
      ["255.255.255.255", "reserved"],
      ["2606:4700::1111", "public"],
      ["::1", "loopback"],
      ["::", "reserved"],
      ["fe80::1", "link_local"],
      ["fd00:ec2::254", "metadata"],
      ["fd12:3456::1", "private"],
      ["::ffff:169.254.169.254", "metadata"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["64:ff9b::a9fe:a9fe", "metadata"],
      ["2002:a9fe:a9fe::1", "metadata"],
      ["ff02::1", "reserved"],
    ];
    for (const [ip, cls] of cases) expect(classifyAddress(ip), ip).toBe(cls);
    expect(classifyHostName("LOCALHOST.")).toBe("loopback");
    expect(classifyHostName("api.localhost")).toBe("loopback");
    expect(classifyHostName("metadata.google.internal")).toBe("metadata");
    expect(classifyHostName("[::1]")).toBe("loopback");
    expect(classifyHostName("example.com")).toBeUndefined();
  });

  it("refuses loopback and private unless allowed; link-local and metadata stay refused even then", async () => {
    const to = (address: string) => async () => [{ address, family: address.includes(":") ? 6 : 4 }];
    await expect(resolveAllowed("a.test", { allowPrivate: false, resolve: to("10.0.0.1") })).rejects.toThrow(
      /private/,
    );
    await expect(
      resolveAllowed("a.test", { allowPrivate: true, resolve: to("10.0.0.1") }),
    ).resolves.toHaveLength(1);
    await expect(resolveAllowed("127.0.0.1", { allowPrivate: false })).rejects.toThrow(/loopback/);
    for (const bad of ["169.254.169.254", "fe80::1", "fd00:ec2::254"]) {
      await expect(resolveAllowed("a.test", { allowPrivate: true, resolve: to(bad) }), bad).rejects.toThrow();
    }
    // One bad answer among good ones refuses the host (the attacker picks which answer a client uses).
    const mixed = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "169.254.169.254", family: 4 },
    ];
    await expect(resolveAllowed("a.test", { allowPrivate: true, resolve: mixed })).rejects.toThrow(
      /metadata/,
    );
    expect(webhookUrlProblems("http://169.254.169.254/", true)[0]).toMatch(/metadata/);
    expect(webhookUrlProblems("http://localhost:3000/", false)[0]).toMatch(/loopback/);
    expect(webhookUrlProblems("http://localhost:3000/", true)).toEqual([]);
    expect(webhookUrlProblems("https://example.com/hook", false)).toEqual([]);
    // Port 0 (however written) is no port a webhook can be delivered to.
    expect(webhookUrlProblems("https://example.com:0/hook", false)).toEqual(["must not use port 0"]);
    expect(webhookUrlProblems("http://localhost:00/", true)).toEqual(["must not use port 0"]);
    expect(webhookUrlProblems("https://example.com:65535/hook", false)).toEqual([]);
    await expect(
      assertWebhookUrl("http://a.test/", "body.url", { allowPrivate: false, resolve: to("192.168.0.10") }),
    ).rejects.toMatchObject({ issues: [{ path: "body.url" }] });
  });

  it("at delivery, a name that re-binds to a metadata address is refused without a request; the checked address is the one used", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const rebound = await postWebhook(`http://rebind.test:${port}/`, {}, "{}", {
        allowPrivate: true,
        resolve: async () => [{ address: "169.254.169.254", family: 4 }],
      });
      expect(rebound).toMatchObject({ ok: false, retryable: false });
      expect(rebound.error).toMatch(/metadata/);
      // A name only our resolver knows: the connection goes to the address that was checked (pinned lookup).
      const pinned = await postWebhook(`http://pinned.test:${port}/`, {}, "{}", {
        allowPrivate: true,
        resolve: async () => [{ address: "127.0.0.1", family: 4 }],
      });
      expect(pinned).toMatchObject({ ok: true, status: 204, address: "127.0.0.1" });
      expect(hits).toBe(1);
    } finally {
      server.close();
    }
  });

  it("follows no redirect and gives up after the timeout", async () => {
    const server = createServer((req, res) => {
      if (req.url === "/slow") return; // never answers
      res.writeHead(302, { location: "http://169.254.169.254/" }).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const redirected = await postWebhook(`http://127.0.0.1:${port}/`, {}, "{}", { allowPrivate: true });
      expect(redirected).toMatchObject({ ok: false, status: 302, retryable: true });
      expect(redirected.error).toMatch(/redirect not followed/);
      const slow = await postWebhook(`http://127.0.0.1:${port}/slow`, {}, "{}", {
        allowPrivate: true,
        timeoutMs: 300,
      });
      expect(slow).toMatchObject({ ok: false, retryable: true });
      expect(slow.error).toMatch(/timed out/);
      expect(slow.durationMs).toBeLessThan(2000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("webhook retry schedule and signatures", () => {
  it("parses COORD_WEBHOOK_RETRY_SCHEDULE; the default retries within 10 s and for up to a day", () => {
    expect(parseRetrySchedule("1, 2.5,60")).toEqual([1, 2.5, 60]);
    for (const bad of ["", "1,,2", "a", "-1", "86401"]) expect(() => parseRetrySchedule(bad), bad).toThrow();
    expect((DEFAULT_RETRY_SCHEDULE[0] as number) * 1.2).toBeLessThanOrEqual(10);
    const total = DEFAULT_RETRY_SCHEDULE.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(20 * 3600);
    expect(total).toBeLessThanOrEqual(24 * 3600);
    // Jitter stays within +-20%; past the schedule there is no next attempt.
    expect(retryDelaySeconds(2, [10], () => 0)).toBeCloseTo(8);
    expect(retryDelaySeconds(2, [10], () => 1)).toBeCloseTo(12);
    expect(retryDelaySeconds(3, [10], () => 0.5)).toBeUndefined();
  });

  it("signs as Standard Webhooks does: HMAC-SHA256 of id.timestamp.body with the base64 secret", () => {
    // The test vector of the Standard Webhooks reference libraries.
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const ts = 1614265330;
    const body = '{"test": 2432232314}';
    expect(sign(secret, id, ts, body)).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(ts),
      "webhook-signature": signatureHeader(["whsec_b3RoZXI=", secret], id, ts, body),
    };
    expect(verifyWebhook(secret, headers, body, { now: ts + 10 })).toEqual({ test: 2432232314 });
    expect(() => verifyWebhook(secret, headers, body, { now: ts + 301 })).toThrow(/too old/);
  });
});

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../local/ports.ts";
import { npmStart, stopProcess } from "./npm-start.ts";

const dataDir = mkdtempSync(join(tmpdir(), "coord-restart-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const start = (port: number) =>
  npmStart({ PORT: String(port), COORD_DATA_DIR: dataDir, COORD_EPHEMERAL: "" }, 30_000);
const stop = stopProcess;

/** DynamoDB Local runs with `-dbPath <dataDir>/dynamodb`, so its command line names our data dir. */
function javaUsing(dir: string): string {
  try {
    return execFileSync("pgrep", ["-f", `DynamoDBLocal.*${dir}`], { encoding: "utf8" });
  } catch {
    return "";
  }
}

describe("npm start", () => {
  it("keeps data across a restart when not ephemeral, and SIGTERM leaves no Java behind", async () => {
    const port = await freePort();
    const first = await start(port);
    const url = `http://127.0.0.1:${port}`;
    const created = await fetch(`${url}/v1/admin/accounts`, {
      method: "POST",
      headers: { authorization: `Bearer ${first.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "survivor", kind: "client" }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(javaUsing(dataDir)).not.toBe("");
    expect(await stop(first.child)).toBe(0);
    expect(javaUsing(dataDir)).toBe("");

    const second = await start(port);
    try {
      // The generated bootstrap key is persisted with the data, so it is the same key after a restart.
      expect(second.adminKey).toBe(first.adminKey);
      const res = await fetch(`${url}/v1/admin/accounts/${id}`, {
        headers: { authorization: `Bearer ${second.adminKey}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id, name: "survivor" });
    } finally {
      await stop(second.child);
    }
  }, 90_000);

  it("refuses to start on a port that is taken, saying so", async () => {
    const port = await freePort();
    const { createServer } = await import("node:net");
    const blocker = createServer().listen(port, "0.0.0.0");
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "local/main.ts"], {
        env: { ...process.env, PORT: String(port), COORD_EPHEMERAL: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr?.on("data", (d: Buffer) => {
        err += d.toString();
      });
      const code = await new Promise((resolve) => child.once("exit", resolve));
      expect(code).toBe(1);
      expect(err).toContain(`port ${port} is already in use`);
    } finally {
      blocker.close();
    }
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { api, createAccount, eventually, fundedClient, isolated } from "./fixture.ts";
import { coordProcess, killAll } from "./processes.ts";

/*
 * The reference miner as operators run it: real `coord miner run` processes against the local stack (lease 3 s,
 * heartbeat 1 s), killed and stopped with real signals. No job is lost and none is done twice.
 */

afterAll(killAll);

type Job = { id: string; status: string; attempt: number; miner_id: string | null };

async function submitSleepy(key: string, constraints: Record<string, unknown>, sleepMs: number, n = 1) {
  const jobs: Job[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api<Job>("POST", "/v1/jobs", {
      key,
      body: { service: "echo", input: { i, sleep_ms: sleepMs }, constraints, max_price: 1_000_000 },
    });
    expect(res.status, res.text).toBe(201);
    jobs.push(res.body);
  }
  return jobs;
}

const getJob = async (key: string, id: string) => (await api<Job>("GET", `/v1/jobs/${id}`, { key })).body;

/** `coord miner run` in a region of its own test, echo only. */
function miner(key: string, region: string, name: string, extra: string[] = []) {
  return coordProcess(
    [
      "miner",
      "run",
      "--name",
      name,
      "--region",
      region,
      "--services",
      "echo",
      "--price",
      "echo=10",
      ...extra,
    ],
    { key },
  );
}

async function minerIdOf(key: string, name: string): Promise<string> {
  return eventually(async () => {
    const res = await api<{ miners: { id: string; name: string }[] }>("GET", "/v1/miners", { key });
    return res.body.miners.find((m) => m.name === name)?.id;
  });
}

describe("reference miner processes", () => {
  it("two miner processes share a queue: every job is done once, by one of them, and both take work", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const a = miner(account.key, region, "share-a");
    const b = miner(account.key, region, "share-b", ["--transport", "poll"]);
    await Promise.all([a.logged("miner.registered"), b.logged("miner.registered")]);
    const jobs = await submitSleepy(client.key, constraints, 1500, 6);
    const done = await eventually(async () => {
      const all = await Promise.all(jobs.map((j) => getJob(client.key, j.id)));
      return all.every((j) => j.status === "completed") ? all : undefined;
    }, 60_000);
    const [idA, idB] = await Promise.all([
      minerIdOf(account.key, "share-a"),
      minerIdOf(account.key, "share-b"),
    ]);
    expect(done.every((j) => j.attempt === 1)).toBe(true);
    expect(new Set(done.map((j) => j.miner_id))).toEqual(new Set([idA, idB]));
    a.child.kill("SIGTERM");
    b.child.kill("SIGTERM");
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    // Each process's own count agrees: six completions between them, none abandoned.
    const completed = [a, b].map((p) => p.logs().filter((l) => l.event === "job.completed").length);
    expect(completed.reduce((x, y) => x + y, 0)).toBe(6);
  });

  it("a miner killed with SIGKILL mid-job loses nothing: after the lease lapses another miner finishes the job", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const doomed = miner(account.key, region, "doomed");
    await doomed.logged("miner.registered");
    const [job] = await submitSleepy(client.key, constraints, 6_000);
    await doomed.logged("job.claimed", { job_id: job?.id });
    await eventually(async () =>
      (await getJob(client.key, job?.id as string)).status === "running" ? true : undefined,
    );
    doomed.child.kill("SIGKILL");
    expect((await doomed.exited).signal).toBe("SIGKILL");
    const survivor = miner(account.key, region, "survivor");
    const final = await eventually(async () => {
      const j = await getJob(client.key, job?.id as string);
      return j.status === "completed" ? j : undefined;
    }, 60_000);
    expect(final.attempt).toBe(2);
    expect(final.miner_id).toBe(await minerIdOf(account.key, "survivor"));
    survivor.child.kill("SIGTERM");
    expect((await survivor.exited).code).toBe(0);
  });

  it("SIGTERM drains: the jobs in flight finish and are paid, no new one is taken, and the process exits 0", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const draining = miner(account.key, region, "drainer", ["--concurrency", "2"]);
    await draining.logged("miner.registered");
    const jobs = await submitSleepy(client.key, constraints, 3000, 2);
    for (const j of jobs) await draining.logged("job.claimed", { job_id: j.id });
    draining.child.kill("SIGTERM");
    await draining.logged("miner.drained");
    // Submitted after the drain: the draining miner must leave it in the queue.
    const [late] = await submitSleepy(client.key, constraints, 0);
    const exit = await draining.exited;
    expect(exit.code, draining.stderr().slice(-2000)).toBe(0);
    for (const j of jobs)
      expect(await getJob(client.key, j.id)).toMatchObject({ status: "completed", attempt: 1 });
    expect(draining.logs().filter((l) => l.event === "job.claimed")).toHaveLength(2);
    expect((await getJob(client.key, late?.id as string)).status).toBe("queued");
    expect(draining.stdout()).toMatch(/completed\s+2/);
  });

  it("a client's coord jobs submit --wait (input on stdin) runs to completion, and its receipt verifies offline in another process", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const account = await createAccount("miner");
    const worker = miner(account.key, region, "for-client");
    await worker.logged("miner.registered");
    const input = { greeting: "from a process", sleep_ms: 1200 };
    const submit = coordProcess(
      [
        ...["jobs", "submit", "echo", "--input-file", "-", "--wait", "60", "--json"],
        ...["--max-price", "1000000", "--constraints", JSON.stringify(constraints)],
      ],
      { key: client.key, stdin: JSON.stringify(input) },
    );
    const done = await submit.finished;
    expect(done.code, done.stderr).toBe(0);
    const job = JSON.parse(done.stdout) as Job;
    expect(job.status).toBe("completed");
    // The miner process co-signed it with the key it made on its first run.
    const doc = await eventually(async () => {
      const res = await api<{ receipt: { miner_signature: unknown } }>("GET", `/v1/jobs/${job.id}/receipt`, {
        key: client.key,
      });
      return res.status === 200 ? res.body : undefined;
    });
    expect(doc.receipt.miner_signature).not.toBeNull();
    const dir = mkdtempSync(join(tmpdir(), "coord-receipt-"));
    writeFileSync(join(dir, "receipt.json"), JSON.stringify(doc));
    writeFileSync(join(dir, "keys.json"), JSON.stringify((await api("GET", "/v1/receipts/keys")).body));
    // Offline: the coordinator's address is one nothing listens on.
    const verify = coordProcess(
      ["receipts", "verify", join(dir, "receipt.json"), "--keys", join(dir, "keys.json"), "--json"],
      { env: { COORD_URL: "http://127.0.0.1:9" } },
    );
    const verdict = await verify.finished;
    expect(verdict.code, verdict.stderr).toBe(0);
    expect(JSON.parse(verdict.stdout)).toMatchObject({ valid: true });
    worker.child.kill("SIGTERM");
    expect((await worker.exited).code).toBe(0);
  });
});

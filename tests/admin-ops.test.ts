import { describe, expect, it } from "vitest";
import {
  api,
  eventually,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

const admin = { key: stack.adminKey };

describe("operating the coordinator", () => {
  it("stats show queue depth, live jobs, miners and recent throughput", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    await submitEcho(client, { constraints });
    const miner = await registeredMiner({ region });
    const done = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    await minerCall(miner, job?.job_id ?? done.body.id, "result", {
      claim_token: job?.claim_token,
      output: {},
    });
    const stats = await eventually(async () => {
      const res = await api<{
        queue_depth: Record<string, number>;
        jobs: Record<string, number>;
        miners: Record<string, number>;
        last_minutes: { completed: number; submitted: number };
      }>("GET", "/v1/admin/stats", admin);
      return res.body.last_minutes.completed >= 1 && res.body;
    });
    expect(stats.queue_depth.echo).toBeGreaterThanOrEqual(1);
    expect(stats.jobs.queued).toBeGreaterThanOrEqual(1);
    expect(stats.miners.online).toBeGreaterThanOrEqual(1);
    expect(stats.last_minutes.submitted).toBeGreaterThanOrEqual(2);
    expect((await api("GET", "/v1/admin/stats", { key: client.key })).status).toBe(403);
    expect((await api("GET", "/v1/admin/stats?minutes=0", admin)).status).toBe(422);
  });

  it("admin job listings page through live jobs and through one account's jobs", async () => {
    const client = await fundedClient();
    const { constraints } = isolated();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await submitEcho(client, { constraints })).body.id);
    const mine = await api<{ jobs: { id: string }[] }>(
      "GET",
      `/v1/admin/jobs?account_id=${client.id}`,
      admin,
    );
    expect(mine.body.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: { body: { jobs: { id: string }[]; next_cursor: string | null } } = await api(
        "GET",
        `/v1/admin/jobs?status=queued&limit=5${cursor ? `&cursor=${cursor}` : ""}`,
        admin,
      );
      for (const j of page.body.jobs) seen.add(j.id);
      cursor = page.body.next_cursor;
    } while (cursor);
    for (const id of ids) expect(seen.has(id)).toBe(true);
    expect((await api("GET", "/v1/admin/jobs?status=completed", admin)).status).toBe(422);
  });

  it("a banned miner gets no work, cannot heartbeat or re-register, until unbanned", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const from = new Date(Date.now() - 1000).toISOString();
    const ban = await api("POST", `/v1/admin/miners/${miner.id}/ban`, admin);
    expect(ban.body).toMatchObject({ banned: true, status: "offline" });
    // Every admin action lands in the audit trail, with who did it and from which request.
    const audited = await eventually(async () => {
      const res = await api<{
        items: { type: string; subject: string; request_id: string; actor: unknown; data: unknown }[];
      }>("GET", `/v1/admin/audit?from=${from}&limit=1000`, admin);
      return res.body.items.find((i) => i.type === "miner.moderated.v1" && i.subject === miner.id);
    });
    expect(audited).toMatchObject({
      request_id: ban.headers.get("x-request-id"),
      data: { action: "ban", miner_id: miner.id },
    });
    expect(audited.actor).toBeTruthy();
    await submitEcho(client, { constraints });
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    expect(
      (await api("POST", "/v1/miners/heartbeat", { key: miner.key, headers: miner.headers, body: {} }))
        .status,
    ).toBe(403);
    const name = (
      await api<{ miners: { id: string; name: string }[] }>("GET", "/v1/miners", { key: miner.key })
    ).body.miners[0]?.name;
    const again = await api("POST", "/v1/miners/register", {
      key: miner.key,
      body: { name, services: ["echo"], region },
    });
    expect(again.status).toBe(403);
    const listed = await api<{ miners: { id: string; banned: boolean }[] }>(
      "GET",
      "/v1/admin/miners?status=offline&limit=100",
      admin,
    );
    expect(listed.status).toBe(200);
    await api("POST", `/v1/admin/miners/${miner.id}/unban`, admin);
    expect(
      (await api("POST", "/v1/miners/heartbeat", { key: miner.key, headers: miner.headers, body: {} }))
        .status,
    ).toBe(200);
    expect((await pollJobs(miner, { wait_seconds: 5 })).jobs).toHaveLength(1);
  });

  it("an admin can drain a miner", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    expect((await api("POST", `/v1/admin/miners/${miner.id}/drain`, admin)).body).toMatchObject({
      status: "draining",
    });
    await submitEcho(client, { constraints });
    expect((await pollJobs(miner, { wait_seconds: 1 })).status).toBe(204);
    expect((await api("POST", "/v1/admin/miners/mnr_nope/drain", admin)).status).toBe(404);
  });
});

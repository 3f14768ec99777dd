import { describe, expect, it } from "vitest";
import {
  api,
  connectDoorbell,
  createAccount,
  type Doorbell,
  eventually,
  fundedClient,
  isolated,
  minerCall,
  pollJobs,
  registeredMiner,
  stack,
  submitEcho,
} from "./fixture.ts";

type Msg = Record<string, unknown>;
const ringFor = (jobId: string) => (m: Msg) => m.type === "work" && m.job_id === jobId;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function hello(bell: Doorbell): Promise<Msg> {
  bell.send({ type: "hello" });
  return bell.next((m) => m.type === "welcome");
}

describe("the doorbell", () => {
  it("welcomes a miner with its intervals and answers heartbeats over the socket", async () => {
    const { region } = isolated();
    const miner = await registeredMiner({ region });
    const bell = await connectDoorbell(miner);
    const welcome = await hello(bell);
    expect(welcome).toMatchObject({
      miner_id: miner.id,
      heartbeat_interval_seconds: 60,
      busy_heartbeat_interval_seconds: 1,
    });
    bell.send({ type: "heartbeat" });
    expect(await bell.next((m) => m.type === "heartbeat")).toMatchObject({
      status: "online",
      held: [],
      stop: [],
    });
    // A frame that is not a known message is answered with the field at fault; the socket stays up.
    bell.send({ type: "heartbeat", jobs: [{ job_id: 7 }] });
    const refused = await bell.next((m) => m.type === "error");
    expect(refused).toMatchObject({ code: "validation_failed" });
    expect(JSON.stringify(refused.errors)).toContain("message.jobs");
    bell.socket.send("not json");
    expect(await bell.next((m) => m.type === "error")).toMatchObject({ code: "malformed_json" });
    bell.send({ type: "heartbeat" });
    await bell.next((m) => m.type === "heartbeat");
    await bell.close();
  });

  it("rings an eligible idle miner for a new job, and not an ineligible or a busy one", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    // The busy one: it takes the first job of the region and holds it.
    const busy = await registeredMiner({ region });
    const busyBell = await connectDoorbell(busy);
    await hello(busyBell);
    const first = await submitEcho(client, { constraints });
    await busyBell.next(ringFor(first.body.id));
    const [held] = (await pollJobs(busy, { wait_seconds: 0 })).jobs;
    expect(held?.job_id).toBe(first.body.id);

    const idle = await registeredMiner({ region });
    const elsewhere = await registeredMiner({ region: `${region}-other` });
    const [idleBell, elsewhereBell] = await Promise.all([connectDoorbell(idle), connectDoorbell(elsewhere)]);
    await Promise.all([hello(idleBell), hello(elsewhereBell)]);
    const second = await submitEcho(client, { constraints });
    await idleBell.next(ringFor(second.body.id));
    // The ring is a hint: the rung miner claims through the poll.
    const [got] = (await pollJobs(idle, { wait_seconds: 0 })).jobs;
    expect(got?.job_id).toBe(second.body.id);
    await pause(500);
    expect(busyBell.saw(ringFor(second.body.id))).toBe(false);
    expect(elsewhereBell.saw(ringFor(second.body.id))).toBe(false);
    await Promise.all([busyBell.close(), idleBell.close(), elsewhereBell.close()]);
  });

  it("rings different miners for a burst of jobs, not the same few", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miners = await Promise.all(Array.from({ length: 6 }, () => registeredMiner({ region })));
    const bells = await Promise.all(miners.map((m) => connectDoorbell(m)));
    await Promise.all(bells.map(hello));
    const jobs = await Promise.all(Array.from({ length: 3 }, () => submitEcho(client, { constraints })));
    await pause(1500);
    const rung = jobs.map((j) => miners.filter((_, i) => bells[i]?.saw(ringFor(j.body.id))).map((m) => m.id));
    for (const r of rung) expect(r).toHaveLength(2);
    // Each ring takes the rung miner's one free slot for the rest of its batch, and the next batch starts with the
    // least recently rung: six rings reach six miners, unless another test's unconstrained job rang some of these
    // between two batches (their order then shifts), never the same two for all three jobs.
    expect(new Set(rung.flat()).size).toBeGreaterThanOrEqual(4);
    await Promise.all(bells.map((b) => b.close()));
  });

  it("pushes a cancel to the holder at once, without waiting for its heartbeat", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const bell = await connectDoorbell(miner);
    await hello(bell);
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    expect(job?.job_id).toBe(sub.body.id);
    expect((await minerCall(miner, sub.body.id, "start", { claim_token: job?.claim_token })).status).toBe(
      200,
    );
    expect((await api("POST", `/v1/jobs/${sub.body.id}/cancel`, { key: client.key })).status).toBe(200);
    // No heartbeat is sent on this socket: the stop can only have been pushed.
    const stop = await bell.next((m) => m.type === "stop", 3000);
    expect(stop.stop).toEqual([{ job_id: sub.body.id, claim_token: job?.claim_token, reason: "cancelled" }]);
    await bell.close();
  });

  it("loses nothing when the socket is killed mid-job: heartbeats go on over HTTP and the lease holds", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miner = await registeredMiner({ region });
    const bell = await connectDoorbell(miner);
    await hello(bell);
    const sub = await submitEcho(client, { constraints });
    const [job] = (await pollJobs(miner, { wait_seconds: 5 })).jobs;
    await minerCall(miner, sub.body.id, "start", { claim_token: job?.claim_token });
    bell.send({ type: "heartbeat", jobs: [{ job_id: sub.body.id, claim_token: job?.claim_token }] });
    expect(await bell.next((m) => m.type === "heartbeat")).toMatchObject({
      held: [{ job_id: sub.body.id, claim_token: job?.claim_token }],
      heartbeat_interval_seconds: 1,
    });
    bell.kill();
    // Past two leases (3 s each in the tests) on HTTP heartbeats with empty bodies.
    for (let i = 0; i < 7; i++) {
      const beat = await api("POST", "/v1/miners/heartbeat", {
        key: miner.key,
        headers: miner.headers,
        body: {},
      });
      expect(beat.body).toMatchObject({ stop: [] });
      await pause(1000);
    }
    const done = await minerCall(miner, sub.body.id, "result", {
      claim_token: job?.claim_token,
      output: { ok: true },
    });
    expect(done.status).toBe(200);
    expect((await api("GET", `/v1/jobs/${sub.body.id}`, { key: client.key })).body).toMatchObject({
      status: "completed",
      attempt: 1,
    });
  });

  it("hands a job to exactly one miner however many rings and polls race for it", async () => {
    const { region, constraints } = isolated();
    const client = await fundedClient();
    const miners = await Promise.all(Array.from({ length: 40 }, () => registeredMiner({ region })));
    const bells = await Promise.all(miners.map((m) => connectDoorbell(m)));
    await Promise.all(bells.map(hello));
    const sub = await submitEcho(client, { constraints });
    await Promise.any(bells.map((b) => b.next(ringFor(sub.body.id))));
    // Every miner heartbeats over its socket meanwhile, as a real one would (the winner's lease holds).
    const beating = setInterval(() => {
      for (const b of bells) b.send({ type: "heartbeat" });
    }, 500);
    // A thousand polls as if every miner had been rung 25 times, all at once.
    const polls = await Promise.all(
      miners.flatMap((m) => Array.from({ length: 25 }, () => pollJobs(m, { wait_seconds: 0 }))),
    ).finally(() => clearInterval(beating));
    const got = polls.flatMap((p) => p.jobs).filter((j) => j.job_id === sub.body.id);
    // Each attempt went to exactly one poll. (Should a stalled machine still let the 3 s test lease lapse, the
    // job's next attempt is a separate claim, never a shared one.)
    const attempts = got.map((j) => j.attempt);
    expect(attempts).toContain(1);
    expect(new Set(attempts).size).toBe(attempts.length);
    expect(new Set(got.map((j) => j.claim_token)).size).toBe(got.length);
    expect(polls.filter((p) => p.status >= 500)).toEqual([]);
    await Promise.all(bells.map((b) => b.close()));
  });

  it("refuses an upgrade without a key, with another kind of key, or for somebody else's miner", async () => {
    const { region } = isolated();
    const miner = await registeredMiner({ region });
    const stranger = await createAccount("miner");
    const client = await createAccount("client");
    const refusal = (m: Parameters<typeof connectDoorbell>[0], headers: Record<string, string> = {}) =>
      connectDoorbell(m, headers).then(
        () => {
          throw new Error("the upgrade was accepted");
        },
        (err: { status?: number; body?: Msg; contentType?: string }) => err,
      );
    const noKey = await refusal({ ...miner, key: "" }, { authorization: "" });
    expect(noKey).toMatchObject({ status: 401, contentType: "application/problem+json" });
    expect(noKey.body).toMatchObject({ code: "unauthorized" });
    expect((await refusal({ ...miner, key: client.key })).status).toBe(403);
    const foreign = await refusal({ ...miner, key: stranger.key });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ code: "not_found" });
    const noMiner = await refusal({ ...miner, headers: {} });
    expect(noMiner.status).toBe(422);
    expect(JSON.stringify(noMiner.body)).toContain("x-miner-id");
    // A plain GET is told where the socket is.
    const plain = await api("GET", "/v1/miners/connect", { key: miner.key, headers: miner.headers });
    expect(plain.status).toBe(426);
    expect(plain.body).toMatchObject({ code: "upgrade_required" });
    expect(String(plain.body.url)).toMatch(/^ws:\/\/.+\/v1\/miners\/connect$/);
  });

  it("closes a socket whose key was revoked at its next frame", async () => {
    const { region } = isolated();
    const acct = await createAccount("miner");
    const miner = await registeredMiner({ region }, acct);
    const bell = await connectDoorbell(miner);
    await hello(bell);
    const revoked = await api("POST", `/v1/admin/keys/${acct.keyId}/revoke`, { key: stack.adminKey });
    expect(revoked.status).toBe(200);
    const closed = new Promise<number>((resolve) => bell.socket.once("close", (code) => resolve(code)));
    await eventually(async () => {
      bell.send({ type: "heartbeat" });
      await pause(200);
      return bell.socket.readyState !== bell.socket.OPEN;
    });
    expect(await closed).toBe(4401);
  });
});

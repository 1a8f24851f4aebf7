/**
 * Membership changes on real processes (issue 11): grow 3 -> 5 and shrink 5 -> 3 while clients
 * write, replace a killed replica by a new one with a new id at a new address, a removed replica
 * that cannot disrupt, and the admin endpoint's refusals. Changes go through `apus member`
 * (dist/cli.js) against the replicas' admin ports, as an operator types them.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type {
  MemberChangeOutcome,
  MembersView,
  ReplicaStatus,
} from "../../src/runtime/thread-contracts.ts";
import { sleep, TestCluster } from "./cluster-harness.ts";
import { missingKeys, writeKeys } from "./keys.ts";

const CLI_JS = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

/** `apus ARGS…`: its exit status and output. */
function apus(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_JS, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function adminList(cluster: TestCluster, ids: readonly number[]): string {
  return ids.map((id) => `127.0.0.1:${cluster.replica(id).adminPort}`).join(",");
}

async function members(cluster: TestCluster, id: number): Promise<MembersView> {
  const response = await fetch(`http://127.0.0.1:${cluster.replica(id).adminPort}/members`);
  return (await response.json()) as MembersView;
}

async function postMembers(
  cluster: TestCluster,
  id: number,
  body: Record<string, unknown>,
): Promise<{ status: number; outcome: MemberChangeOutcome }> {
  const response = await fetch(`http://127.0.0.1:${cluster.replica(id).adminPort}/members`, {
    method: "POST",
    headers: { "x-apus-admin": "1", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, outcome: (await response.json()) as MemberChangeOutcome };
}

/** Voters and learners of the configuration `id` says governs, as "1v,2v,4l". */
async function roles(cluster: TestCluster, id: number): Promise<string> {
  const view = await members(cluster, id);
  return (view.current?.members ?? [])
    .map((m) => `${m.id}${m.role === "voter" ? "v" : "l"}`)
    .join(",");
}

/** Until every replica in `ids` applied the leader's commit index (they converge). */
async function converged(
  cluster: TestCluster,
  ids: readonly number[],
  leader: number,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const top = (await cluster.status(leader))?.commitIndex ?? 0;
    const statuses = await Promise.all(ids.map((id) => cluster.status(id)));
    if (statuses.every((s: ReplicaStatus | null) => s !== null && s.appliedIndex >= top)) return;
    if (Date.now() > deadline)
      throw new Error(`replicas ${ids.join(",")} did not reach slot ${top}\n${cluster.outputs()}`);
    await sleep(100);
  }
}

/** Clients writing through the given replicas until stop(); the keys acknowledged. */
function writers(cluster: TestCluster, through: readonly number[], prefix: string) {
  let running = true;
  const acked: string[] = [];
  const done = Promise.all(
    through.map(async (id, n) => {
      for (let round = 0; running; round++) {
        const keys = await writeKeys(
          cluster.replica(id).clientPort,
          `${prefix}-${n}-${round}`,
          20,
          30,
          100,
        );
        acked.push(...keys);
      }
    }),
  );
  return {
    acked,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** A replica that says it leads (a joining replica follows no one yet, so waitForLeader would wait). */
async function leaderNow(cluster: TestCluster, skip: ReadonlySet<number>): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const statuses = await Promise.all(
      cluster.replicas
        .filter((r) => !skip.has(r.id) && r.process !== null)
        .map((r) => cluster.status(r.id)),
    );
    const leader = statuses.find((s) => s?.role === "leader");
    if (leader != null) return leader.id;
    if (Date.now() > deadline) throw new Error(`no leader\n${cluster.outputs()}`);
    await sleep(50);
  }
}

/** Frames the members dropped from replicas that are none of theirs. */
async function unknownPeerDrops(cluster: TestCluster, ids: readonly number[]): Promise<number> {
  let total = 0;
  for (const id of ids) {
    const line = (await cluster.metrics(id))
      .split("\n")
      .find((l) => l.startsWith('apus_dropped_packets_total{reason="unknown-peer"}'));
    total += line === undefined ? 0 : Number(line.split(" ")[1]);
  }
  return total;
}

describe("membership changes", () => {
  let cluster: TestCluster | null = null;
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it("grows 3 -> 5 and shrinks 5 -> 3 while clients write: nothing acknowledged is lost, every member converges", async () => {
    const c = await TestCluster.start({ replicas: 3, heartbeatMs: 30, electionTimeoutMs: 600 });
    cluster = c;
    const leader = await c.waitForLeader();
    await c.waitForAllUp();
    const load = writers(c, [1, 2, 3], "grow");
    // Grow: each new replica starts with --join, then is added as a learner and promoted.
    for (const id of [4, 5]) {
      await c.addReplica(id);
      const admin = adminList(
        c,
        [1, 2, 3, 4, 5].filter((i) => i <= id),
      );
      const add = await apus([
        "member",
        "add",
        String(id),
        `127.0.0.1:${c.replica(id).peerPort}`,
        "--admin",
        admin,
      ]);
      expect(add.code, add.stderr + c.outputs()).toBe(0);
      let promote = await apus(["member", "promote", String(id), "--admin", admin]);
      for (let tries = 0; promote.code !== 0 && tries < 50; tries++) {
        expect(promote.stderr).toMatch(/lagging|not answered|trails/); // catching up: try again
        await sleep(200);
        promote = await apus(["member", "promote", String(id), "--admin", admin]);
      }
      expect(promote.code, promote.stderr).toBe(0);
    }
    expect(await roles(c, leader)).toBe("1v,2v,3v,4v,5v");
    const list = await apus(["member", "list", "--admin", adminList(c, [1, 2, 3, 4, 5])]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/5 voters, 0 learners/);
    // Shrink: remove two of the original three (the leader among them if it is one), one at a time.
    const all = [1, 2, 3, 4, 5];
    const leaving = [leader === 1 ? 1 : 2, 3];
    const staying = all.filter((id) => !leaving.includes(id));
    // Clients move off the replicas about to leave (a removed replica serves nobody).
    await load.stop();
    const shrinkLoad = writers(c, staying, "shrink");
    for (const id of leaving) {
      const remove = await apus(["member", "remove", String(id), "--admin", adminList(c, all)]);
      expect(remove.code, remove.stderr + c.outputs()).toBe(0);
      expect(remove.stdout).toMatch(
        new RegExp(`remove replica ${id}: chosen in slot \\d+, governing from slot \\d+`),
      );
      c.forget(id);
    }
    await shrinkLoad.stop();
    const acked = [...load.acked, ...shrinkLoad.acked];
    const newLeader = await c.waitForLeader(20_000, leaving);
    expect(staying).toContain(newLeader);
    expect((await members(c, newLeader)).current!.members.map((m) => m.id)).toEqual(staying);
    await converged(c, staying, newLeader);
    expect(load.acked.length).toBeGreaterThan(0);
    expect(shrinkLoad.acked.length).toBeGreaterThan(0);
    for (const id of staying)
      expect(await missingKeys(c.replica(id).clientPort, acked)).toEqual([]);
    for (const id of staying)
      expect(c.replica(id).output).not.toContain("was removed from the cluster's configuration");
    for (const id of leaving)
      expect(c.replica(id).output).toContain("was removed from the cluster's configuration");
  }, 180_000);

  it.each(["udp", "tcp"])(
    "replaces a killed replica by a new id at a new address; the removed one cannot disrupt (%s)",
    async (transport) => {
      const c = await TestCluster.start({
        replicas: 3,
        heartbeatMs: 30,
        electionTimeoutMs: 600,
        // Snapshots often, so that the configurations before the removal are compacted away:
        // the members then stop talking to the removed replica, which cannot learn it was removed.
        extraArgs: [
          "--transport",
          transport,
          "--snapshot-every-bytes",
          "4k",
          "--compaction-tail-slots",
          "0",
        ],
      });
      cluster = c;
      let leader = await c.waitForLeader();
      await c.waitForAllUp();
      const before = await writeKeys(c.replica(leader).clientPort, "before", 200, 30, 100);
      const victim = leader === 3 ? 2 : 3;
      await c.kill(victim);
      const load = writers(c, [leader], "during");
      await c.addReplica(4);
      const admin = adminList(c, [1, 2, 3, 4]);
      const replace = await apus([
        "member",
        "replace",
        String(victim),
        "4",
        `127.0.0.1:${c.replica(4).peerPort}`,
        "--admin",
        admin,
      ]);
      expect(replace.code, replace.stderr + c.outputs()).toBe(0);
      expect(replace.stdout).toMatch(/ok {3}add replica 4: chosen in slot/);
      expect(replace.stdout).toMatch(/ok {3}replica 4 caught up/);
      expect(replace.stdout).toMatch(/ok {3}promote replica 4/);
      expect(replace.stdout).toMatch(new RegExp(`ok {3}remove replica ${victim}`));
      // The log was compacted before 4 joined: it was sent the snapshot (over the snapshot stream
      // under UDP; under TCP without --snapshot-port-offset, on the transport's connection).
      if (transport === "udp")
        expect(c.replica(4).output).toMatch(/snapshot transfer from replica \d+ completed/);
      c.forget(victim);
      await load.stop();
      // Past the removal, and compacted past it: the members hold only the new configuration.
      const after = await writeKeys(c.replica(leader).clientPort, "after", 100, 30, 100);
      const staying = [1, 2, 3, 4].filter((id) => id !== victim);
      expect(await roles(c, leader)).toBe(staying.map((id) => `${id}v`).join(","));
      // The removed replica comes back with its old state and its old --peers: it cannot disrupt.
      // It comes back knowing nothing of its removal: it campaigns, and the members drop it.
      const unknownBefore = await unknownPeerDrops(c, staying);
      c.launch(victim);
      // Every member's ballot (asked until each answers): a disruption would raise them.
      const ballots = async (): Promise<string[]> => {
        for (;;) {
          const statuses = await Promise.all(staying.map((id) => c.status(id)));
          if (statuses.every((s) => s !== null)) return statuses.map((s) => s!.ballot);
          await sleep(50);
        }
      };
      const ballotBefore = await ballots();
      await sleep(3000); // several of its election timeouts
      expect(await c.waitForLeader(20_000, [victim])).toBe(leader);
      expect(await ballots()).toEqual(ballotBefore);
      const removed = await c.status(victim);
      expect(removed?.role).not.toBe("leader");
      expect(await unknownPeerDrops(c, staying)).toBeGreaterThan(unknownBefore);
      leader = await c.waitForLeader(20_000, [victim]);
      await converged(c, staying, leader);
      for (const id of staying)
        expect(
          await missingKeys(c.replica(id).clientPort, [...before, ...load.acked, ...after]),
        ).toEqual([]);
    },
    180_000,
  );

  it("a voter that lost its data and is started again with --join recovers before it votes", async () => {
    // The review's case: replica 4 joined, was promoted, and lost its disk; the operator runs its
    // first command line again (--join, an empty directory). It must not vote as a fresh replica:
    // it finds itself a voter in the configuration it learns, and recovers first.
    const c = await TestCluster.start({ replicas: 3, heartbeatMs: 30, electionTimeoutMs: 600 });
    cluster = c;
    const leader = await c.waitForLeader();
    await c.waitForAllUp();
    const before = await writeKeys(c.replica(leader).clientPort, "rejoin-a", 50, 30, 100);
    await c.addReplica(4);
    const admin = adminList(c, [1, 2, 3, 4]);
    const add = await apus([
      "member",
      "add",
      "4",
      `127.0.0.1:${c.replica(4).peerPort}`,
      "--admin",
      admin,
    ]);
    expect(add.code, add.stderr + c.outputs()).toBe(0);
    let promote = await apus(["member", "promote", "4", "--admin", admin]);
    for (let tries = 0; promote.code !== 0 && tries < 50; tries++) {
      await sleep(200);
      promote = await apus(["member", "promote", "4", "--admin", admin]);
    }
    expect(promote.code, promote.stderr).toBe(0);
    const middle = await writeKeys(c.replica(leader).clientPort, "rejoin-b", 50, 30, 100);
    await c.kill(4);
    rmSync(c.dataDir(4), { recursive: true, force: true });
    c.launch(4); // the same command line: --join, now on an empty directory
    for (let i = 0; i < 200 && !c.replica(4).output.includes("names its id a voter already"); i++)
      await sleep(100);
    expect(c.replica(4).output).toContain("names its id a voter already");
    await converged(c, [1, 2, 3, 4], await c.waitForLeader());
    const after = await writeKeys(c.replica(leader).clientPort, "rejoin-c", 50, 30, 100);
    await converged(c, [1, 2, 3, 4], await c.waitForLeader());
    expect(await missingKeys(c.replica(4).clientPort, [...before, ...middle, ...after])).toEqual(
      [],
    );
    expect((await c.status(4))?.role).not.toBe("recovering");
  }, 120_000);

  it("grows 1 -> 3 -> 5 -> 9 and shrinks 9 -> 3, one replica at a time, losing nothing", async () => {
    const c = await TestCluster.start({
      replicas: 1,
      workers: 0,
      heartbeatMs: 50,
      electionTimeoutMs: 1000,
    });
    cluster = c;
    await c.waitForLeader();
    const acked: string[] = [];
    const write = async (tag: string) => {
      const leader = await leaderNow(c, removedIds);
      acked.push(...(await writeKeys(c.replica(leader).clientPort, tag, 20, 30, 100)));
    };
    const removedIds = new Set<number>();
    /** POST /members to whoever leads, until the change is done (the leader may move meanwhile). */
    const change = async (body: Record<string, unknown>) => {
      for (let tries = 0; ; tries++) {
        const leader = await leaderNow(c, removedIds);
        const { outcome } = await postMembers(c, leader, body);
        if (outcome.outcome === "done") return;
        if (tries > 100)
          throw new Error(`${JSON.stringify(body)}: ${JSON.stringify(outcome)}\n${c.outputs()}`);
        await sleep(200);
      }
    };
    for (let id = 2; id <= 9; id++) {
      await c.addReplica(id);
      await change({ op: "add", id, address: `127.0.0.1:${c.replica(id).peerPort}` });
      await change({ op: "promote", id });
      if (id === 3 || id === 5 || id === 9) await write(`size-${id}`);
    }
    const leader = await leaderNow(c, new Set());
    expect(await roles(c, leader)).toBe("1v,2v,3v,4v,5v,6v,7v,8v,9v");
    for (let id = 9; id >= 4; id--) {
      await change({ op: "remove", id });
      removedIds.add(id);
      c.forget(id);
      await c.kill(id);
    }
    await write("size-3");
    const last = await leaderNow(c, removedIds);
    expect(await roles(c, last)).toBe("1v,2v,3v");
    await converged(c, [1, 2, 3], last);
    for (const id of [1, 2, 3])
      expect(await missingKeys(c.replica(id).clientPort, acked)).toEqual([]);
  }, 240_000);

  it("the admin endpoint refuses what it must, saying why", async () => {
    const c = await TestCluster.start({ replicas: 3, heartbeatMs: 30, electionTimeoutMs: 600 });
    cluster = c;
    const leader = await c.waitForLeader();
    await c.waitForAllUp();
    const follower = leader === 1 ? 2 : 1;
    // A follower answers with where the leader is.
    const atFollower = await postMembers(c, follower, { op: "remove", id: 3 });
    expect(atFollower.status).toBe(409);
    expect(atFollower.outcome.outcome).toBe("not-leader");
    expect(atFollower.outcome.leader).toBe(leader);
    expect(atFollower.outcome.leaderAddress).toBe(`127.0.0.1:${c.replica(leader).peerPort}`);
    // Without the header a browser page cannot send: refused before anything else.
    const crossSite = await fetch(
      `http://127.0.0.1:${c.replica(leader).adminPort}/members?op=remove&id=3`,
      { method: "POST" },
    );
    expect(crossSite.status).toBe(403);
    // A learner that never started cannot be promoted.
    const add = await postMembers(c, leader, { op: "add", id: 7, address: "127.0.0.1:1" });
    expect(add.status, JSON.stringify(add.outcome)).toBe(200);
    const promote = await postMembers(c, leader, { op: "promote", id: 7 });
    expect(promote.status).toBe(409);
    expect(promote.outcome.outcome).toBe("lagging");
    expect(promote.outcome.detail).toMatch(/has not answered the leader/);
    const cli = await apus(["member", "promote", "7", "--admin", adminList(c, [1, 2, 3])]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/lagging: replica 7 has not answered/);
    // Two changes at once: the second is refused while the first waits.
    const first = postMembers(c, leader, {
      op: "replace",
      id: 7,
      new_id: 8,
      address: "127.0.0.1:2",
      wait_ms: 1500,
    });
    await sleep(100);
    const second = await postMembers(c, leader, { op: "remove", id: 7 });
    expect(second.status).toBe(409);
    expect(second.outcome.outcome).toBe("busy");
    const firstDone = await first;
    expect(firstDone.outcome.outcome).toBe("timed-out"); // 8 never started: it never caught up
    // Bad requests.
    expect(
      (await postMembers(c, leader, { op: "add", id: 2, address: "127.0.0.1:3" })).outcome.detail,
    ).toMatch(/member already/);
    expect((await postMembers(c, leader, { op: "add", id: 9 })).outcome.detail).toMatch(
      /peer address/,
    );
    expect((await postMembers(c, leader, { op: "frobnicate", id: 9 })).status).toBe(400);
    // Cleaned up: the learners go; the voters are untouched.
    for (const id of [7, 8])
      expect((await postMembers(c, leader, { op: "remove", id })).status).toBe(200);
    expect(await roles(c, leader)).toBe("1v,2v,3v");
  }, 120_000);
});

/**
 * Issue 10, peers, with real replica processes: a replica with the wrong secret is refused by its
 * peers (counted) and never joins; a replica of a multi-replica cluster without --secret-file
 * does not start; a recorded peer datagram carrying a forwarded client request, sent again, is
 * dropped as a replay and the command runs once.
 */
import { execFile } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  FLAG_FRAGMENT,
  FLAG_SESSION,
  HEADER_BYTES,
  OFFSET_FLAGS,
  OFFSET_FROM,
  RECORD_HEADER_BYTES,
  TAG_BYTES,
} from "../../src/transport/frame.ts";
import { REPLAY_WINDOW_SEQS } from "../../src/transport/replay-window.ts";
import { CHANNEL_FORWARD } from "../../src/workers/consensus/request-router.ts";
import { freePort, REPLICA_JS, sleep, TestCluster } from "./cluster-harness.ts";

function client(port: number): Redis {
  return new Redis({
    port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 5000,
    lazyConnect: true,
  });
}

/** The value of one counter line of /metrics (0 when absent). */
function counter(metrics: string, name: string, label: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

const drops = (metrics: string, reason: string) =>
  counter(metrics, "apus_dropped_packets_total", `reason="${reason}"`);

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("a replica with the wrong secret", () => {
  let cluster: TestCluster;
  const dir = mkdtempSync(join(tmpdir(), "apus-peer-auth-"));
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is refused by its peers, counted as auth drops, and never joins; 1 and 2 still commit", async () => {
    const wrongSecret = join(dir, "wrong.secret");
    writeFileSync(wrongSecret, `${"f".repeat(64)}\n`, { mode: 0o600 });
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgsFor: (id) => (id === 3 ? ["--secret-file", wrongSecret] : []),
    });
    const leader = await cluster.waitForLeader(20_000, [3]);
    expect([1, 2]).toContain(leader);
    const good = client(cluster.replica(1).clientPort);
    const outsider = client(cluster.replica(3).clientPort);
    try {
      expect(await good.set("written", "via 1 and 2")).toBe("OK");
      expect(await good.get("written")).toBe("via 1 and 2");
      // Replica 3's frames reach 1 and 2 and are refused there.
      for (const id of [1, 2])
        await until(
          async () => drops(await cluster.metrics(id), "auth") > 0,
          `auth drops at ${id}`,
        );
      // Replica 3 never hears an authenticated frame: no leader, nothing applied, no write.
      await expect(outsider.set("outsider", "x")).rejects.toThrow();
      const status = await cluster.status(3);
      expect(status?.leader ?? null).not.toBe(leader);
      expect(status?.appliedIndex ?? 0).toBe(0);
      expect(drops(await cluster.metrics(3), "auth")).toBeGreaterThan(0);
      expect(await good.get("outsider")).toBeNull();
    } finally {
      good.disconnect();
      outsider.disconnect();
    }
  });
});

describe("a key roll", () => {
  let cluster: TestCluster;
  const dir = mkdtempSync(join(tmpdir(), "apus-key-roll-"));
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("in its second round (new key first on 1 and 2, still second on 3) keeps one cluster, and counts the old key's frames by sender", async () => {
    const OLD = "a".repeat(64);
    const NEW = "b".repeat(64);
    const secondRound = join(dir, "new-old.secret");
    const firstRound = join(dir, "old-new.secret");
    writeFileSync(secondRound, `${NEW}\n${OLD}\n`, { mode: 0o600 });
    writeFileSync(firstRound, `${OLD}\n${NEW}\n`, { mode: 0o600 });
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgsFor: (id) => ["--secret-file", id === 3 ? firstRound : secondRound],
    });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
    const atThree = client(cluster.replica(3).clientPort);
    try {
      expect(await atThree.set("rolled", "yes")).toBe("OK");
      await cluster.waitForApplied([1, 2, 3], 1);
      const secondKey = (metrics: string, peer: number) =>
        counter(metrics, "apus_peer_frames_second_key_total", `peer="${peer}"`);
      // 1 and 2 read 3's frames (old key) under their second key; 3 reads theirs (new key) under
      // its second key too. Frames between 1 and 2 use the first key: not counted.
      for (const id of [1, 2])
        await until(
          async () => secondKey(await cluster.metrics(id), 3) > 0,
          `replica ${id} to count replica 3's frames`,
        );
      const atOne = await cluster.metrics(1);
      expect(secondKey(atOne, 2)).toBe(0);
      expect(secondKey(await cluster.metrics(3), 1)).toBeGreaterThan(0);
      expect(drops(atOne, "auth")).toBe(0);
    } finally {
      atThree.disconnect();
    }
  });
});

describe("a replica of a multi-replica cluster without --secret-file", () => {
  it("exits at once with an error that says what to do", async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const clientPort = await freePort();
    const out = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          REPLICA_JS,
          ...["--id", "1", "--peers", ports.map((p) => `127.0.0.1:${p}`).join(",")],
          ...["--client-port", String(clientPort), "--admin-port", "0"],
          ...["--durability", "memory"],
        ],
        { timeout: 20_000 },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : (error.code as number), output: stdout + stderr }),
      );
    });
    expect(out.code).toBe(1);
    expect(out.output).toMatch(
      /replica 1 cannot start: a cluster of 3 replicas needs a shared key for its peers: run `openssl rand -hex 32 > cluster\.secret`, copy the file to every replica and pass --secret-file cluster\.secret to each/,
    );
  });
});

/**
 * A UDP relay standing in for a peer in one replica's --peers: forwards every datagram to the
 * peer's real port and keeps a copy of each.
 */
class Relay {
  readonly recorded: Buffer[] = [];
  private readonly socket = dgram.createSocket("udp4");
  private readonly target: number;
  port = 0;

  constructor(target: number) {
    this.target = target;
  }

  async start(): Promise<void> {
    this.socket.on("message", (datagram) => {
      this.recorded.push(Buffer.from(datagram));
      this.socket.send(datagram, this.target, "127.0.0.1");
    });
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", () => resolve()));
    this.port = this.socket.address().port;
  }

  /** Send datagrams to the peer again, from a socket of our own. */
  async replay(datagrams: readonly Buffer[]): Promise<void> {
    for (const d of datagrams)
      await new Promise<void>((resolve) =>
        this.socket.send(d, this.target, "127.0.0.1", () => resolve()),
      );
  }

  close(): void {
    this.socket.close();
  }
}

/** Whether a (non-fragment) frame holds a forwarded client request whose bytes contain `marker`. */
function carriesForward(frame: Buffer, marker: Buffer): boolean {
  const flags = frame.readUInt8(OFFSET_FLAGS);
  if ((flags & (FLAG_FRAGMENT | FLAG_SESSION)) !== 0) return false;
  const end = frame.byteLength - TAG_BYTES;
  for (let at = HEADER_BYTES; at + RECORD_HEADER_BYTES <= end; ) {
    const channel = frame.readUInt8(at);
    const length = frame.readUInt32LE(at + 1);
    const payload = frame.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
    if (channel === CHANNEL_FORWARD && payload.includes(marker)) return true;
    at += RECORD_HEADER_BYTES + length;
  }
  return false;
}

describe("a replayed peer datagram", () => {
  let cluster: TestCluster;
  const relays = new Map<number, Relay>();
  let follower: Redis | null = null;
  afterAll(async () => {
    follower?.disconnect();
    for (const relay of relays.values()) relay.close();
    await cluster?.stop();
  });

  it("is dropped as a replay, right away and after more traffic than the window, counted; the INCR runs once", async () => {
    cluster = await TestCluster.start({ replicas: 3 });
    await cluster.waitForLeader();
    // Replica 2 restarts reaching 1 and 3 through relays that record everything it sends them,
    // and waits long before standing for election: one of them leads, and replica 2 forwards
    // its clients' writes to it (channel CHANNEL_FORWARD). The addresses it dials are those of
    // the configuration it holds (a restart's --peers is not used), so it comes back as a
    // replaced disk: an empty data directory, --initial-cluster-state existing, and the relays
    // in the --peers that becomes its bootstrap configuration.
    for (const id of [1, 3]) {
      const relay = new Relay(cluster.replica(id).peerPort);
      await relay.start();
      relays.set(id, relay);
    }
    const peers = cluster.replicas.map((r) =>
      r.id === 2 ? `127.0.0.1:${r.peerPort}` : `127.0.0.1:${relays.get(r.id)!.port}`,
    );
    await cluster.kill(2);
    rmSync(join(cluster.dir, "replica-2"), { recursive: true, force: true });
    cluster.launch(2, [
      ...["--peers", peers.join(","), "--election-timeout-ms", "5000"],
      ...["--initial-cluster-state", "existing"],
    ]);
    await cluster.waitForAllUp();
    const leader = await cluster.waitForLeader();
    expect([1, 3]).toContain(leader);
    await until(async () => (await cluster.status(2))?.leader === leader, "replica 2 to follow");
    const toLeader = relays.get(leader)!;

    follower = client(cluster.replica(2).clientPort);
    expect(await follower.incr("replayed-counter")).toBe(1);
    const marker = Buffer.from("replayed-counter");
    const carrying = toLeader.recorded.filter(
      (d) => d.readUInt8(OFFSET_FROM) === 2 && carriesForward(d, marker),
    );
    expect(carrying.length).toBeGreaterThanOrEqual(1);
    const replaysBefore = drops(await cluster.metrics(leader), "replay");

    // Right away: the same sequence number, still inside the window.
    await toLeader.replay(carrying);
    await until(
      async () => drops(await cluster.metrics(leader), "replay") >= replaysBefore + carrying.length,
      "the leader to count the replay",
    );
    // After more of replica 2's datagrams to the leader than the window holds: far below it.
    const sent = toLeader.recorded.length;
    for (let i = 0; toLeader.recorded.length - sent <= REPLAY_WINDOW_SEQS + 100; i++)
      await follower.set(`other-${i % 100}`, String(i));
    await toLeader.replay(carrying);
    await until(
      async () =>
        drops(await cluster.metrics(leader), "replay") >= replaysBefore + 2 * carrying.length,
      "the leader to count the late replay",
    );
    await sleep(500); // had either copy been proposed, it would have been applied by now
    expect(await follower.get("replayed-counter")).toBe("1");
    const atLeader = client(cluster.replica(leader).clientPort);
    try {
      expect(await atLeader.get("replayed-counter")).toBe("1");
    } finally {
      atLeader.disconnect();
    }
  }, 120_000);
});

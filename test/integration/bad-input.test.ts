import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ballotOf, encodeMessage, MessageType } from "../../src/core/index.ts";
import { PEER_INCARNATION_FILE } from "../../src/runtime/peer-incarnation.ts";
import { createFrameContext, FRAME_VERSION, sealSingle } from "../../src/transport/frame.ts";
import { sleep, TestCluster } from "./cluster-harness.ts";

function client(port: number): Redis {
  return new Redis({ port, host: "127.0.0.1", enableReadyCheck: false, maxRetriesPerRequest: 1 });
}

function counter(metrics: string, name: string, label: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

/** Send raw bytes to a TCP client port and collect what comes back until the server closes. */
function rawExchange(port: number, bytes: Buffer, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    const done = () => {
      socket.destroy();
      resolve(received);
    };
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    socket.on("close", done);
    socket.on("error", done);
    socket.write(bytes);
    setTimeout(done, waitMs);
  });
}

async function sendUdp(port: number, payload: Buffer): Promise<void> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve, reject) =>
    socket.send(payload, port, "127.0.0.1", (error) => (error ? reject(error) : resolve())),
  );
  socket.close();
}

describe("bad input is dropped or answered, counted, and harms nobody else", () => {
  let cluster: TestCluster;
  let good: Redis;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      extraArgs: ["--max-request-bytes", "64k", "--max-value-bytes", "32k"],
    });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
    good = client(cluster.replica(1).clientPort);
    expect(await good.set("steady", "yes")).toBe("OK");
  });

  afterAll(async () => {
    good?.disconnect();
    await cluster?.stop();
  });

  it("drops malformed and forged peer packets, counts them, and keeps serving", async () => {
    const target = cluster.replica(2);
    const before = await cluster.metrics(2);
    // Garbage: far too short to be a frame.
    await sendUdp(target.peerPort, Buffer.from("hello, replica"));
    // A frame-shaped packet (magic "AP", this version, this cluster, from 1 to 2) with a wrong HMAC.
    const forged = Buffer.alloc(64);
    forged.writeUInt16LE(0x5041, 0);
    forged.writeUInt8(FRAME_VERSION, 2);
    forged.writeUInt32LE(1, 4);
    forged.writeUInt8(1, 8);
    forged.writeUInt8(2, 9);
    await sendUdp(target.peerPort, forged);
    let after = "";
    for (let i = 0; i < 50; i++) {
      await sleep(50);
      after = await cluster.metrics(2);
      if (
        counter(after, "apus_dropped_packets_total", 'reason="auth"') >
          counter(before, "apus_dropped_packets_total", 'reason="auth"') &&
        counter(after, "apus_dropped_packets_total", 'reason="malformed"') >
          counter(before, "apus_dropped_packets_total", 'reason="malformed"')
      )
        break;
    }
    expect(counter(after, "apus_dropped_packets_total", 'reason="auth"')).toBeGreaterThan(0);
    expect(counter(after, "apus_dropped_packets_total", 'reason="malformed"')).toBeGreaterThan(0);
    const c = client(target.clientPort);
    try {
      expect(await c.set("after-forgery", "fine")).toBe("OK");
      expect(await good.get("after-forgery")).toBe("fine");
    } finally {
      c.disconnect();
    }
  });

  it("drops an authenticated Accept for a slot far beyond the log, counts it, and keeps serving (issue 7 §3)", async () => {
    // Signed with the cluster key, from replica 2 to 3: past the HMAC and the replay checks, into
    // the core. An Accept for slot 2e8 used to make the replica fill the log gap entry by entry
    // (2 GiB, then a crash). To pass the replay checks the frame claims a run of replica 2 newer
    // than its real one (incarnations are in each data directory) and echoes replica 3's; replica
    // 3 then takes replica 2's real frames for an older run's, until replica 2 restarts.
    const secret = Buffer.from(readFileSync(cluster.secretFile, "latin1").trim(), "latin1");
    const incarnation = (id: number) =>
      Number(readFileSync(join(cluster.dir, `replica-${id}`, PEER_INCARNATION_FILE), "latin1"));
    const accept = encodeMessage({
      type: MessageType.Accept,
      from: 2,
      to: 3,
      ballot: ballotOf(1_000_000, 2),
      slot: 200_000_000,
      commitSlot: 0,
      batch: { stampMs: 0, commands: [Buffer.from("x")] },
    });
    const forger = createFrameContext(
      {
        id: 2,
        peers: cluster.replicas.map((r) => ({ host: "127.0.0.1", port: r.peerPort })),
        clusterId: 1,
        secrets: [secret],
        incarnation: incarnation(2) + 1,
        messageBytesMax: 1 << 20,
      },
      false,
      { framesSecondKey: 0 },
    );
    forger.sessions.admit(3, incarnation(3), 0, 0); // learn what to echo
    const frame = sealSingle(forger, { flags: 0, clusterId: 1, from: 2, to: 3 }, 0, 0, accept);
    await sendUdp(cluster.replica(3).peerPort, frame);
    let after = "";
    for (let i = 0; i < 50; i++) {
      await sleep(50);
      after = await cluster.metrics(3);
      if (counter(after, "apus_dropped_packets_total", 'reason="far-slot"') > 0) break;
    }
    expect(counter(after, "apus_dropped_packets_total", 'reason="far-slot"')).toBe(1);
    // Replica 2 restarts with a run newer than the forged one: replica 3 hears it again.
    await cluster.kill(2);
    cluster.launch(2);
    await cluster.waitForAllUp();
    await cluster.waitForLeader();
    const c = client(cluster.replica(3).clientPort);
    try {
      expect(await c.set("after-far-slot", "fine")).toBe("OK");
      expect(await good.get("after-far-slot")).toBe("fine");
    } finally {
      c.disconnect();
    }
  });

  it("answers a client's protocol garbage with an error and closes only that client", async () => {
    const reply = await rawExchange(
      cluster.replica(1).clientPort,
      Buffer.from("*2\r\n$3\r\nGET\r\n$x\r\n"),
    );
    expect(reply).toContain("-ERR Protocol error");
    expect(await good.get("steady")).toBe("yes");
  });

  it("refuses an oversized request with an error, and a too-large value too", async () => {
    const huge = Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${200 * 1024}\r\n`);
    const reply = await rawExchange(cluster.replica(1).clientPort, huge);
    expect(reply).toMatch(/^-ERR /);
    await expect(good.set("big", "x".repeat(40 * 1024))).rejects.toThrow(/too large/);
    expect(await good.get("steady")).toBe("yes");
  });

  it("replicates a value as large as the limits allow", async () => {
    const value = "v".repeat(30 * 1024);
    expect(await good.set("large", value)).toBe("OK");
    const c = client(cluster.replica(3).clientPort);
    try {
      expect(await c.get("large")).toBe(value);
    } finally {
      c.disconnect();
    }
  });
});

/**
 * The lease of blocked clients (--block-lease-ms), on three real replicas: a replica's blocked
 * clients keep their place while it is silent but alive (it renews), a replica paused past the
 * lease has its client's command ended with UNBLOCKED and takes nothing, and a killed replica's
 * blocked client no longer takes the element a live client waits for behind it. And a client's
 * close that found no leader is not lost: without it every replica keeps the session.
 */
import net from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, hasRedis } from "../app/redis-command-list.ts";
import { sleep, TestCluster } from "./cluster-harness.ts";

const LEASE_MS = 1500;
const REQUEST_TIMEOUT_MS = 500;

/** A raw client connection: one BLPOP, its reply read whenever it comes, no reconnects. */
class Blocked {
  private received = "";
  private readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received += chunk.toString("latin1");
    });
    socket.on("error", () => {}); // a killed replica's client: its socket just ends
  }

  static blpop(port: number, key: string): Promise<Blocked> {
    return Blocked.send(port, ["BLPOP", key, "0"]);
  }

  /** Sends one request: these commands, pipelined. */
  static async send(port: number, ...commands: (readonly string[])[]): Promise<Blocked> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
    // One write: the replica reads the commands together, as one request. (Written apart, the
    // second may arrive after the first was sent on alone, and then runs after its reply, as
    // Redis would run it: a later request, not the rest of this one.)
    socket.write(Buffer.concat(commands.map(encode)));
    return new Blocked(socket);
  }

  get reply(): string {
    return this.received;
  }

  /** What it received once it holds `lines` CRLF-ended lines (or 10 s passed). */
  async waitForReply(lines = 1, timeoutMs = 10_000): Promise<string> {
    const enough = () => this.received.split("\r\n").length > lines;
    for (const end = Date.now() + timeoutMs; !enough() && Date.now() < end; ) await sleep(20);
    return this.received;
  }

  close(): void {
    this.socket.destroy();
  }
}

const APP = "redis-server --port {port} --bind {host} --dir {dir} --save '' --appendonly no";
const MODES = [
  { name: "the embedded store", args: [] as string[], skip: false },
  { name: "--app redis-server", args: ["--app", APP, "--protocol", "resp"], skip: !hasRedis() },
];

describe.each(MODES)(
  "sessions across outages, $name: the blocked clients' lease (--block-lease-ms), closes without a leader",
  ({ args, skip }) => {
    if (skip) {
      it.skip("needs redis-server (apt-get install redis-server)", () => {});
      return;
    }
    let cluster: TestCluster;
    let leader: number;
    let others: number[];
    let admin: Redis;
    const blocked: Blocked[] = [];

    async function waitForBlocked(count: number): Promise<void> {
      for (let i = 0; i < 250; i++) {
        const info = await admin.info("clients");
        if (info.includes(`blocked_clients:${count}\r\n`)) return;
        await sleep(20);
      }
      throw new Error(`blocked_clients never reached ${count}: ${await admin.info("clients")}`);
    }

    async function block(id: number, key: string): Promise<Blocked> {
      const client = await Blocked.blpop(cluster.replica(id).clientPort, key);
      blocked.push(client);
      return client;
    }

    beforeAll(async () => {
      cluster = await TestCluster.start({
        replicas: 3,
        extraArgs: [
          ...["--block-lease-ms", String(LEASE_MS)],
          ...["--request-timeout-ms", String(REQUEST_TIMEOUT_MS)],
          ...args,
        ],
      });
      leader = await cluster.waitForLeader(60_000);
      await cluster.waitForAllUp(60_000);
      others = [1, 2, 3].filter((id) => id !== leader);
      admin = new Redis({
        port: cluster.replica(leader).clientPort,
        host: "127.0.0.1",
        enableReadyCheck: false,
      });
    });

    afterAll(async () => {
      for (const client of blocked) client.close();
      admin?.disconnect();
      await cluster?.stop();
    });

    it("a live replica's blocked client keeps its place through three leases of silence", async () => {
      const waiter = await block(others[0]!, "quiet");
      await waitForBlocked(1);
      await sleep(3 * LEASE_MS);
      expect(waiter.reply).toBe("");
      expect(await admin.rpush("quiet", "job")).toBe(1);
      expect(await waiter.waitForReply()).toBe("*2\r\n$5\r\nquiet\r\n$3\r\njob\r\n");
      expect(await admin.llen("quiet")).toBe(0);
    });

    it("a replica paused past the lease takes nothing; its client gets UNBLOCKED when it wakes", async () => {
      const paused = others[1]!;
      expect(await admin.rpush("side", "only")).toBe(1);
      // A pipelined request: the LPOP after the blocked command must not run once it is ended.
      const waiter = await Blocked.send(
        cluster.replica(paused).clientPort,
        ["BLPOP", "paused", "0"],
        ["LPOP", "side"],
      );
      blocked.push(waiter);
      await waitForBlocked(1);
      const pid = cluster.replica(paused).process!.pid!;
      process.kill(pid, "SIGSTOP");
      try {
        await sleep(LEASE_MS + 1000);
        expect(await admin.rpush("paused", "job")).toBe(1);
        expect(await admin.llen("paused")).toBe(1);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      // The embedded store says why; a program's copy answers with its own CLIENT UNBLOCK error.
      const [unblocked, notRun] = (await waiter.waitForReply(2)).split(/(?<=\r\n)/);
      expect(unblocked).toMatch(
        args.length === 0
          ? /^-UNBLOCKED apus: this client's replica was not heard from in the log for over 1500 ms/
          : /^-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n$/,
      );
      expect(notRun).toBe(
        "-ERR apus: not run: a blocking command before it in the same request was ended by its lease (--block-lease-ms)\r\n",
      );
      expect(await admin.lpop("paused")).toBe("job");
      expect(await admin.lpop("side")).toBe("only");
    });

    it("a killed replica's blocked client no longer takes the element a live client waits for", async () => {
      const [victim, survivor] = others as [number, number];
      await block(victim, "jobs"); // first in line
      await waitForBlocked(1);
      const live = await block(survivor, "jobs");
      await waitForBlocked(2);
      await cluster.kill(victim);
      await sleep(LEASE_MS + 1000);
      expect(await admin.rpush("jobs", "job-1")).toBe(1);
      expect(await live.waitForReply()).toBe("*2\r\n$4\r\njobs\r\n$5\r\njob-1\r\n");
      expect(await admin.llen("jobs")).toBe(0);
      expect(await admin.info("clients")).toContain("blocked_clients:0\r\n");
    });

    it("a client's close that found no leader goes in again until it is chosen", async () => {
      const [victim, survivor] = others as [number, number];
      const subscriber = await Blocked.send(cluster.replica(survivor).clientPort, [
        "SUBSCRIBE",
        "news",
      ]);
      for (let i = 0; i < 250 && !(await admin.pubsub("NUMSUB", "news")).includes(1); i++)
        await sleep(20);
      expect(await admin.pubsub("NUMSUB", "news")).toEqual(["news", 1]);
      admin.disconnect();
      await cluster.kill(leader); // with the victim already down: no majority, no leader
      subscriber.close();
      await sleep(4 * REQUEST_TIMEOUT_MS); // the close times out, more than once
      cluster.launch(leader);
      cluster.launch(victim);
      leader = await cluster.waitForLeader();
      admin = new Redis({
        port: cluster.replica(survivor).clientPort,
        host: "127.0.0.1",
        enableReadyCheck: false,
      });
      let numsub: unknown[] = [];
      for (let i = 0; i < 250; i++) {
        numsub = await admin.pubsub("NUMSUB", "news");
        if (numsub[1] === 0) break;
        await sleep(20);
      }
      expect(numsub).toEqual(["news", 0]);
    });
  },
);

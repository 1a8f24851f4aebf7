/**
 * Replies compared byte for byte with a real redis-server (when installed): a fixed list of
 * commands, each sent to both, in order. Skipped, with a message, when redis-server is absent.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS as BITS_HLL } from "./compat/bits-hll.ts";
import { COMMANDS as LISTS_HASHES } from "./compat/lists-hashes.ts";
import { COMMANDS as SERVER } from "./compat/server.ts";
import { SESSION_STEPS } from "./compat/sessions.ts";
import { COMMANDS as SETS_ZSETS } from "./compat/sets-zsets.ts";
import { COMMANDS as SORT_GEO } from "./compat/sort-geo.ts";
import { COMMANDS as STREAMS } from "./compat/streams.ts";
import { COMMANDS as STRINGS_KEYS } from "./compat/strings-keys.ts";
import { KvAppHarness } from "./kv-app-harness.ts";
import { encode, hasRedis, REDIS_COMMANDS, replyLength } from "./redis-command-list.ts";
import { type RedisServer, startRedisServer } from "./redis-server-process.ts";

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the byte-for-byte comparison");

/** Each list runs on an empty store and an emptied redis-server. */
const GROUPS: readonly { name: string; commands: readonly (readonly string[])[] }[] = [
  { name: "the shared command list", commands: REDIS_COMMANDS },
  { name: "strings and keys", commands: STRINGS_KEYS },
  { name: "lists and hashes", commands: LISTS_HASHES },
  { name: "sets and sorted sets", commands: SETS_ZSETS },
  { name: "sort and geo", commands: SORT_GEO },
  { name: "streams", commands: STREAMS },
  { name: "bitmaps and HyperLogLogs", commands: BITS_HLL },
  { name: "server commands", commands: SERVER },
];

describe.skipIf(!REDIS)("replies match redis-server byte for byte", () => {
  let server: RedisServer | undefined;
  let socket: net.Socket;
  let pending = Buffer.alloc(0);
  const waiters: (() => void)[] = [];

  let port = 0;

  beforeAll(async () => {
    server = await startRedisServer([
      ...["--save", "", "--appendonly", "no", "--databases", "16"],
      ...["--enable-debug-command", "yes"],
    ]);
    port = server.port;
    for (let attempt = 0; ; attempt++) {
      try {
        socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.once("error", reject);
        });
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    socket.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      for (const waiter of waiters.splice(0)) waiter();
    });
  });

  afterAll(() => {
    socket?.destroy();
    server?.stop();
  });

  async function redisReply(args: readonly string[]): Promise<Buffer> {
    socket.write(encode(args));
    for (;;) {
      const length = replyLength(pending);
      if (length !== -1) {
        const reply = pending.subarray(0, length);
        pending = pending.subarray(length);
        return reply;
      }
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }

  it.each(GROUPS.filter((group) => group.commands.length > 0))("$name", async ({ commands }) => {
    // Through a connection's session, as the runtime runs it (SELECT, MULTI, HELLO 3 …).
    const store = new KvAppHarness();
    await redisReply(["FLUSHALL"]);
    const mismatches: string[] = [];
    for (const command of commands) {
      const expected = (await redisReply(command)).toString("latin1");
      const actual = store.run(1, ...command) ?? "(blocked)";
      if (actual !== expected) {
        mismatches.push(
          `${command.join(" ")}: redis ${JSON.stringify(expected)}, ours ${JSON.stringify(actual)}`,
        );
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("sessions over several connections (SELECT, MULTI/WATCH, Pub/Sub, blocking, RESP3)", async () => {
    await redisReply(["FLUSHALL"]);
    const store = new KvAppHarness();
    const sockets = new Map<number, RedisConnection>();
    const connection = async (c: number): Promise<RedisConnection> => {
      let conn = sockets.get(c);
      if (conn === undefined) {
        conn = await RedisConnection.open(port);
        sockets.set(c, conn);
      }
      return conn;
    };
    const mismatches: string[] = [];
    try {
      for (const step of SESSION_STEPS) {
        if ("wait" in step) {
          await new Promise((r) => setTimeout(r, step.wait));
          store.advance(step.wait);
          continue;
        }
        if (Array.isArray(step)) {
          const [c, ...command] = step as readonly [number, ...string[]];
          const redis = await connection(c);
          redis.send(command);
          store.send(c, command);
          const ours = store.takeAll(c);
          const expected = await redis.read(Math.max(1, Buffer.byteLength(ours, "latin1")));
          if (ours !== expected)
            mismatches.push(
              `${c}: ${command.join(" ")}: redis ${JSON.stringify(expected)}, ours ${JSON.stringify(ours)}`,
            );
          continue;
        }
        const s = step as { c: number; blocks?: string[]; reads?: true; unchecked?: string[] };
        const redis = await connection(s.c);
        if (s.blocks !== undefined || s.unchecked !== undefined) {
          const command = s.blocks ?? s.unchecked!;
          redis.send(command);
          store.send(s.c, command);
          if (s.unchecked !== undefined) {
            store.takeAll(s.c);
            await redis.read(1);
          } else if (store.takeAll(s.c) !== "")
            mismatches.push(`${s.c}: ${command.join(" ")} did not block here`);
          continue;
        }
        const ours = store.takeAll(s.c);
        const expected = await redis.read(Math.max(1, Buffer.byteLength(ours, "latin1")));
        if (ours !== expected)
          mismatches.push(
            `${s.c} reads: redis ${JSON.stringify(expected)}, ours ${JSON.stringify(ours)}`,
          );
      }
    } finally {
      for (const conn of sockets.values()) conn.close();
    }
    expect(mismatches).toEqual([]);
  });
});

/** One more connection to the redis-server, read as a stream of replies. */
class RedisConnection {
  private pending = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];
  private readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  static async open(port: number): Promise<RedisConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
    return new RedisConnection(socket);
  }

  send(command: readonly string[]): void {
    this.socket.write(encode(command));
  }

  /** Whole replies, until at least `bytes` bytes came (or 1 s passed: then what there is). */
  async read(bytes: number): Promise<string> {
    const deadline = Date.now() + 1000;
    for (;;) {
      let length = 0;
      for (;;) {
        const next = replyLength(this.pending, length);
        if (next === -1) break;
        length += next;
        if (length >= bytes) break;
      }
      if (length >= bytes || Date.now() >= deadline) {
        const out = this.pending.subarray(0, length).toString("latin1");
        this.pending = this.pending.subarray(length);
        return out;
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

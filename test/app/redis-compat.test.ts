/**
 * Replies compared byte for byte with a real redis-server (when installed): a fixed list of
 * commands, each sent to both, in order. Skipped, with a message, when redis-server is absent.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvStore } from "../../src/app/kv-store.ts";

function hasRedis(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the byte-for-byte comparison");

/** Length of the first complete RESP reply in `buf`, or -1. */
function replyLength(buf: Buffer, start = 0): number {
  const lineEnd = buf.indexOf("\r\n", start);
  if (lineEnd === -1) return -1;
  const type = String.fromCharCode(buf[start]!);
  if (type === "+" || type === "-" || type === ":") return lineEnd + 2 - start;
  const n = Number(buf.toString("latin1", start + 1, lineEnd));
  if (type === "$") {
    if (n < 0) return lineEnd + 2 - start;
    return buf.length >= lineEnd + 2 + n + 2 ? lineEnd + 2 + n + 2 - start : -1;
  }
  let offset = lineEnd + 2;
  for (let i = 0; i < n; i++) {
    const length = replyLength(buf, offset);
    if (length === -1) return -1;
    offset += length;
  }
  return offset - start;
}

function encode(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg, "latin1")}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(""), "latin1");
}

const COMMANDS: string[][] = [
  ["PING"],
  ["ping", "hello"],
  ["ECHO", "x y"],
  ["SELECT", "0"],
  ["SELECT", "1"],
  ["SELECT", "abc"],
  ["GET", "missing"],
  ["SET", "k", "v"],
  ["GET", "k"],
  ["get", "k", "extra"],
  ["SET", "k", "v2", "GET"],
  ["SET", "k", "v3", "NX"],
  ["SET", "k", "v3", "NX", "GET"],
  ["SET", "nx", "v", "XX"],
  ["SET", "k", "v", "NX", "XX"],
  ["SET", "k", "v", "EX"],
  ["SET", "k", "v", "EX", "0"],
  ["SET", "k", "v", "EX", "-5"],
  ["SET", "k", "v", "EX", "abc"],
  ["SET", "k", "v", "EX", "10", "PX", "100"],
  ["SET", "k", "v", "KEEPTTL", "EX", "10"],
  ["SET", "k", "v", "EX", "9223372036854775807"],
  ["SET", "k", "v", "BOGUS"],
  ["SET", "t", "v", "EX", "100"],
  ["TTL", "t"],
  ["SET", "t", "v2", "KEEPTTL"],
  ["TTL", "t"],
  ["SET", "t", "v3"],
  ["TTL", "t"],
  ["TTL", "missing"],
  ["PTTL", "missing"],
  ["EXPIRE", "t", "100"],
  ["EXPIRE", "t", "50", "NX"],
  ["EXPIRE", "t", "50", "GT"],
  ["EXPIRE", "t", "50", "LT"],
  ["TTL", "t"],
  ["EXPIRE", "t", "50", "NX", "XX"],
  ["EXPIRE", "t", "50", "GT", "LT"],
  ["EXPIRE", "t", "50", "FOO"],
  ["EXPIRE", "t", "x"],
  ["EXPIRE", "t", "9223372036854775807"],
  ["PERSIST", "t"],
  ["PERSIST", "t"],
  ["TTL", "t"],
  ["EXPIRE", "missing", "10"],
  ["EXPIRE", "t", "-1"],
  ["EXISTS", "t"],
  ["GETSET", "g", "1"],
  ["GETSET", "g", "2"],
  ["MSET", "a", "1", "b", "2"],
  ["MSET", "a", "1", "b"],
  ["MGET", "a", "b", "nope"],
  ["INCR", "a"],
  ["INCRBY", "a", "10"],
  ["DECR", "a"],
  ["DECRBY", "a", "5"],
  ["INCRBY", "a", "x"],
  ["INCR", "k"],
  ["SET", "big", "9223372036854775806"],
  ["INCR", "big"],
  ["INCR", "big"],
  ["DECRBY", "big", "-9223372036854775808"],
  ["SET", "small", "-9223372036854775807"],
  ["DECR", "small"],
  ["DECR", "small"],
  ["SET", "lead", "01"],
  ["INCR", "lead"],
  ["SET", "n", "123456789012345678"],
  ["INCRBY", "n", "1000000000000000000"],
  ["GET", "n"],
  ["APPEND", "ap", "hello"],
  ["APPEND", "ap", " world"],
  ["GET", "ap"],
  ["STRLEN", "ap"],
  ["STRLEN", "nope"],
  ["DEL", "ap", "nope", "a"],
  ["EXISTS", "b", "b", "nope"],
  ["TYPE", "b"],
  ["TYPE", "nope"],
  ["HSET", "h", "f1", "v1", "f2", "v2"],
  ["HSET", "h", "f1", "x"],
  ["HSET", "h", "f1"],
  ["HGET", "h", "f1"],
  ["HGET", "h", "nope"],
  ["HGETALL", "h"],
  ["HLEN", "h"],
  ["HEXISTS", "h", "f2"],
  ["HDEL", "h", "f1", "nope"],
  ["TYPE", "h"],
  ["GET", "h"],
  ["HGET", "b", "f"],
  ["HGETALL", "nope"],
  ["LPUSH", "l", "a", "b", "c"],
  ["RPUSH", "l", "d", "e"],
  ["LRANGE", "l", "0", "-1"],
  ["LRANGE", "l", "1", "2"],
  ["LRANGE", "l", "-2", "100"],
  ["LRANGE", "l", "3", "1"],
  ["LRANGE", "l", "a", "1"],
  ["LLEN", "l"],
  ["LPOP", "l"],
  ["RPOP", "l"],
  ["LPOP", "l", "2"],
  ["LPOP", "l", "0"],
  ["LPOP", "l", "-1"],
  ["LPOP", "nope"],
  ["LPOP", "nope", "2"],
  ["LPOP", "l", "1", "2"],
  ["RPOP", "l", "5"],
  ["EXISTS", "l"],
  ["LPUSH", "h", "x"],
  ["TYPE", "l"],
  ["SADD", "s", "m1"],
  ["SADD", "s", "m1", "m2"],
  ["SCARD", "s"],
  ["SISMEMBER", "s", "m2"],
  ["SISMEMBER", "s", "zz"],
  ["SREM", "s", "m1", "zz"],
  ["SMEMBERS", "s"],
  ["SADD", "h", "x"],
  ["TYPE", "s"],
  ["KEYS", "h"],
  ["KEYS", "[hx]"], // one match: Redis orders KEYS by hash table, we by insertion
  ["KEYS", "[^a-z]"],
  ["FOO", "a", "b"],
  ["foo"],
  ["CONFIG", "GET", "save"],
  ["CONFIG", "GET", "appendonly"],
  ["CONFIG", "GET", "no-such-param"],
  ["DBSIZE"],
  ["FLUSHDB"],
  ["DBSIZE"],
  ["FLUSHALL", "BOGUS"],
  ["SCAN", "0"],
  ["SCAN", "x"],
];

describe.skipIf(!REDIS)("replies match redis-server byte for byte", () => {
  let server: ChildProcess | undefined;
  let socket: net.Socket;
  let pending = Buffer.alloc(0);
  const waiters: (() => void)[] = [];

  beforeAll(async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    server = spawn(
      "redis-server",
      ["--port", String(port), "--save", "", "--appendonly", "no", "--databases", "1"],
      {
        stdio: "ignore",
      },
    );
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
    server?.kill();
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

  it("the fixed command list", async () => {
    const store = new KvStore();
    const context = { nowMs: 1_000_000, info: () => "" };
    await redisReply(["FLUSHALL"]);
    const mismatches: string[] = [];
    for (const command of COMMANDS) {
      const expected = (await redisReply(command)).toString("latin1");
      const actual = store
        .execute(
          command.map((a) => Buffer.from(a, "latin1")),
          context,
        )
        .toString("latin1");
      if (actual !== expected) {
        mismatches.push(
          `${command.join(" ")}: redis ${JSON.stringify(expected)}, ours ${JSON.stringify(actual)}`,
        );
      }
    }
    expect(mismatches).toEqual([]);
  });
});

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
  // SPOP/SRANDMEMBER choose members deterministically (not as Redis does), so only replies
  // that do not depend on the choice are compared.
  ["SADD", "rs", "only"],
  ["SPOP", "rs"],
  ["SPOP", "rs"],
  ["SPOP", "rs", "2"],
  ["SPOP", "rs", "0"],
  ["SADD", "rs", "m"],
  ["SRANDMEMBER", "rs"],
  ["SRANDMEMBER", "rs", "3"],
  ["SRANDMEMBER", "rs", "-3"],
  ["SRANDMEMBER", "rs", "0"],
  ["SRANDMEMBER", "rs", "x"],
  ["SRANDMEMBER", "rs", "-9223372036854775808"],
  ["SRANDMEMBER", "rs", "1", "2"],
  ["SRANDMEMBER", "nokey"],
  ["SRANDMEMBER", "nokey", "2"],
  ["SPOP", "nokey"],
  ["SPOP", "nokey", "2"],
  ["SPOP", "rs", "1", "2"],
  ["SPOP", "rs", "-1"],
  ["SPOP", "rs", "x"],
  ["SPOP", "rs", "1"],
  ["EXISTS", "rs"],
  ["SET", "str", "v"],
  ["SPOP", "str"],
  ["SPOP", "str", "0"],
  ["SPOP", "str", "x"],
  ["SRANDMEMBER", "str", "x"],
  ["SRANDMEMBER", "str", "1"],
  // Sorted sets.
  ["ZADD", "z", "1", "a", "2", "b", "3", "c"],
  ["ZADD", "z", "1.5", "a"],
  ["ZADD", "z", "CH", "1.1", "a", "4", "d"],
  ["ZSCORE", "z", "a"],
  ["ZSCORE", "z", "nope"],
  ["ZSCORE", "nokey", "a"],
  ["ZSCORE", "str", "a"],
  ["TYPE", "z"],
  ["GET", "z"],
  ["SADD", "z", "x"],
  ["LPUSH", "z", "x"],
  ["HSET", "z", "f", "v"],
  ["ZADD", "str", "1", "a"],
  ["ZADD", "str", "x", "a"],
  ["ZADD", "z", "x", "a"],
  ["ZADD", "z", "nan", "a"],
  ["ZADD", "z", "1e400", "a"],
  ["ZADD", "z", "1e-400", "a"],
  ["ZADD", "z", " 1", "a"],
  ["ZADD", "z", "1 ", "a"],
  ["ZADD", "z", "", "a"],
  ["ZADD", "z", "1", "a", "2"],
  ["ZADD", "z", "INCR", "1"],
  ["ZADD", "z", "XX", "NX", "1", "a"],
  ["ZADD", "z", "NX", "GT", "1", "a"],
  ["ZADD", "z", "GT", "LT", "1", "a"],
  ["ZADD", "z", "LT", "NX", "1", "a"],
  ["ZADD", "z", "INCR", "1", "a", "2", "b"],
  ["ZADD", "z", "NX", "9", "a", "5", "e"],
  ["ZADD", "z", "XX", "CH", "9", "a", "6", "f"],
  ["ZADD", "z", "GT", "CH", "1", "a", "10", "b"],
  ["ZADD", "z", "LT", "CH", "1", "a", "10", "c"],
  ["ZADD", "z", "INCR", "2.5", "a"],
  ["ZADD", "z", "NX", "INCR", "2.5", "a"],
  ["ZADD", "z", "XX", "INCR", "1", "nope"],
  ["ZADD", "z", "GT", "INCR", "-1", "a"],
  ["ZADD", "nokey", "XX", "1", "a"],
  ["ZADD", "nokey", "XX", "INCR", "1", "a"],
  ["EXISTS", "nokey"],
  ["ZINCRBY", "z", "1", "a"],
  ["ZINCRBY", "z", "-0.1", "a"],
  ["ZINCRBY", "z", "x", "a"],
  ["ZINCRBY", "z", "1"],
  ["ZINCRBY", "zi", "inf", "m"],
  ["ZINCRBY", "zi", "-inf", "m"],
  ["ZADD", "zi", "-inf", "n", "1e-5", "o", "123456789012345678", "p", "0.0001", "q"],
  ["ZADD", "zi", "0x10", "r", "-0", "s", "1e17", "t", "3.14159", "u", "-2.5e-7", "v"],
  ["ZADD", "zi", "+7", "w", "1.", "x", ".5", "y", "1E3", "z", "infinity", "zz", "-INF", "zy"],
  ["ZADD", "zf", "9007199254740993", "a", "-1e16", "b", "1e16", "c", "0.1", "d", "1e20", "e"],
  ["ZADD", "zf", "5e-324", "f", "1.7976931348623157e308", "g", "0x1.8p1", "h", "0x.8", "i"],
  ["ZADD", "zf", "1e-310", "j", "-123.456e-3", "k", "4503599627370496.5", "l", "0X1P-2", "m"],
  ["ZADD", "zf", "99999999999999999", "n", "1e-4", "o", "-1e-5", "p", "2.5e+30", "q"],
  ["ZRANGE", "zf", "0", "-1", "WITHSCORES"],
  ["ZRANGE", "zi", "0", "-1", "WITHSCORES"],
  ["ZMSCORE", "zi", "m", "nope", "n", "u"],
  ["ZMSCORE", "nokey", "a", "b"],
  ["ZMSCORE", "str", "a"],
  ["ZCARD", "z"],
  ["ZCARD", "nokey"],
  ["ZCARD", "str"],
  ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
  ["ZRANGE", "z", "1", "2"],
  ["ZRANGE", "z", "-2", "100", "withscores"],
  ["ZRANGE", "z", "3", "1"],
  ["ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"],
  ["ZRANGE", "z", "x", "1"],
  ["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"],
  ["ZRANGE", "z", "0", "1", "BOGUS"],
  ["ZRANGE", "z", "0", "1", "REV", "REV"],
  ["ZRANGE", "z", "0", "-1", "WITHSCORES", "LIMIT"],
  ["ZRANGE", "z", "(1", "6", "BYSCORE", "WITHSCORES"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "50", "2"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"],
  ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "x", "0"],
  ["ZRANGE", "z", "+inf", "(3", "BYSCORE", "REV", "WITHSCORES"],
  ["ZRANGE", "z", "10", "1", "BYSCORE", "REV", "LIMIT", "1", "1"],
  ["ZRANGE", "z", "1", "10", "BYSCORE", "BYSCORE"],
  ["ZRANGE", "z", "a", "b", "BYSCORE"],
  ["ZRANGE", "z", "0", "-1", "BYLEX"],
  ["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
  ["ZRANGE", "str", "0", "-1"],
  ["ZRANGE", "nokey", "0", "-1"],
  ["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"],
  ["ZRANGE", "lex", "-", "+", "BYLEX"],
  ["ZRANGE", "lex", "[b", "(d", "BYLEX"],
  ["ZRANGE", "lex", "+", "(a", "BYLEX", "REV", "LIMIT", "1", "2"],
  ["ZRANGEBYLEX", "lex", "-", "+"],
  ["ZRANGEBYLEX", "lex", "(a", "[c", "LIMIT", "1", "5"],
  ["ZRANGEBYLEX", "lex", "a", "[c"],
  ["ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"],
  ["ZRANGEBYLEX", "lex", "-", "+", "REV"],
  ["ZREVRANGEBYLEX", "lex", "+", "-"],
  ["ZREVRANGEBYLEX", "lex", "[c", "(a", "LIMIT", "0", "1"],
  ["ZREVRANGEBYLEX", "z", "+", "-"],
  ["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES"],
  ["ZREVRANGEBYSCORE", "z", "(6", "1", "LIMIT", "1", "2"],
  ["ZREVRANGEBYSCORE", "z", "1", "6"],
  ["ZREVRANGEBYSCORE", "z", "x", "6"],
  ["ZREVRANGEBYSCORE", "z", "6", "1", "REV"],
  ["ZREVRANGE", "z", "0", "1"],
  ["ZREVRANGE", "z", "0", "-1", "WITHSCORES"],
  ["ZREVRANGE", "z", "0", "1", "REV"],
  ["ZREVRANGE", "z", "0", "1", "BYSCORE"],
  ["ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"],
  ["ZRANGEBYSCORE", "z", "-inf", "+inf"],
  ["ZRANGEBYSCORE", "z", "(1", "(6", "WITHSCORES"],
  ["ZRANGEBYSCORE", "z", "1", "6", "LIMIT", "1", "1"],
  ["ZRANGEBYSCORE", "z", "6", "1"],
  ["ZRANGEBYSCORE", "z", "(3", "(3"],
  ["ZRANGEBYSCORE", "z", "3", "3"],
  ["ZRANGEBYSCORE", "z", "", "("],
  ["ZRANGEBYSCORE", "z", " 1", "1e400"],
  ["ZRANGEBYSCORE", "z", "a", "b"],
  ["ZRANGEBYSCORE", "z", "nan", "1"],
  ["ZRANGEBYSCORE", "z", "1", "2", "REV"],
  ["ZRANGEBYSCORE", "z", "1", "2", "BYSCORE"],
  ["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0"],
  ["ZRANGEBYSCORE", "str", "1", "2"],
  ["ZRANGEBYSCORE", "str", "a", "b"],
  ["ZCOUNT", "z", "-inf", "+inf"],
  ["ZCOUNT", "z", "(1", "6"],
  ["ZCOUNT", "z", "5", "1"],
  ["ZCOUNT", "z", "x", "2"],
  ["ZCOUNT", "nokey", "1", "2"],
  ["ZCOUNT", "str", "1", "2"],
  ["ZRANK", "z", "a"],
  ["ZRANK", "z", "b"],
  ["ZRANK", "z", "nope"],
  ["ZRANK", "nokey", "a"],
  ["ZRANK", "str", "a"],
  ["ZRANK", "z", "a", "WITHSCORE"],
  ["ZREVRANK", "z", "a"],
  ["ZREVRANK", "z", "b"],
  ["ZREVRANK", "z", "nope"],
  ["ZREM", "z", "a", "nope"],
  ["ZREM", "nokey", "a"],
  ["ZREM", "str", "a"],
  ["ZREM", "z"],
  ["ZPOPMIN", "z"],
  ["ZPOPMAX", "z"],
  ["ZPOPMIN", "z", "2"],
  ["ZPOPMIN", "z", "0"],
  ["ZPOPMIN", "z", "-1"],
  ["ZPOPMIN", "z", "x"],
  ["ZPOPMIN", "z", "1", "2"],
  ["ZPOPMAX", "z", "10"],
  ["EXISTS", "z"],
  ["ZPOPMIN", "z"],
  ["ZPOPMIN", "nokey", "2"],
  ["ZPOPMIN", "str"],
  ["ZPOPMIN", "str", "0"],
  ["ZPOPMAX", "str", "x"],
  ["ZADD", "one", "5", "m"],
  ["ZREM", "one", "m"],
  ["EXISTS", "one"],
  ["SCAN", "0", "TYPE", "zset", "MATCH", "l*"],
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

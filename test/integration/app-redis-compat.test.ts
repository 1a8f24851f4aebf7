/**
 * Transparent mode, byte for byte: the same commands sent, in order, to the replicated front (three
 * replicas, each fronting its own redis-server started by `--app`) and to a bare redis-server this
 * test starts itself; every reply compared byte for byte, errors included. Three connection pairs
 * (front of replica i, bare connection i) take the commands in turn, so a key written through one
 * replica is read through another, while per-connection state (SELECT, MULTI, WATCH, SUBSCRIBE)
 * stays paired. Exceptions, each explicit: TTLs within a tolerance (the front takes the log's time
 * stamp, the bare server its own clock); commands the policy refuses, sent to the front only; TIME
 * and XADD * checked for shape; hash-ordered replies compared as sets. At the end every copy's
 * DEBUG DIGEST equals the bare server's. Cases that were bugs once (a refused command inside MULTI, RESET) run
 * last. Skipped, with a message, when redis-server is absent.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, hasRedis, REDIS_COMMANDS, replyLength } from "../app/redis-command-list.ts";
import { freePort, sleep, TestCluster } from "./cluster-harness.ts";

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the replicated byte-for-byte test");

/** The options every redis-server here runs with, the copies and the bare server alike. */
const REDIS_ARGS = ["--save", "", "--appendonly", "no", "--enable-debug-command", "yes"];
const APP = `redis-server --port {port} --bind {host} --dir {dir} ${REDIS_ARGS.map((a) => (a === "" ? "''" : a)).join(" ")}`;
/** How long one reply may take before the test gives up (never a timing assertion). */
const REPLY_TIMEOUT_MS = 30_000;

/** The raw elements of an array reply (each a complete reply), or null when not an array. */
function arrayElements(reply: string): string[] | null {
  const match = /^\*(\d+)\r\n/.exec(reply);
  if (match === null) return null;
  const buf = Buffer.from(reply, "latin1");
  const elements: string[] = [];
  let offset = match[0].length;
  for (let i = 0; i < Number(match[1]); i++) {
    const length = replyLength(buf, offset);
    elements.push(buf.toString("latin1", offset, offset + length));
    offset += length;
  }
  return elements;
}

function integerReply(reply: string): number | null {
  const match = /^:(-?\d+)\r\n$/.exec(reply);
  return match === null ? null : Number(match[1]);
}

/** One RESP2 connection: commands written as multibulk, replies (and pushes) read in order. */
class RespConnection {
  private pending = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];
  private closed = false;

  private readonly socket: net.Socket;
  readonly name: string;

  private constructor(socket: net.Socket, name: string) {
    this.socket = socket;
    this.name = name;
    socket.on("data", (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  static async open(port: number, name: string, attempts = 1): Promise<RespConnection> {
    for (let attempt = 1; ; attempt++) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.once("error", reject);
        });
        socket.setNoDelay(true);
        return new RespConnection(socket, name);
      } catch (error) {
        if (attempt >= attempts) throw error;
        await sleep(100);
      }
    }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  write(args: readonly string[]): void {
    this.socket.write(encode(args));
  }

  /** Many commands in one write: a pipeline as one piece. */
  writeAll(commands: readonly (readonly string[])[]): void {
    this.socket.write(Buffer.concat(commands.map(encode)));
  }

  /** The next complete reply, as latin1 text (one char per byte). */
  async next(what: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const length = replyLength(this.pending);
      if (length !== -1) {
        const reply = this.pending.toString("latin1", 0, length);
        this.pending = this.pending.subarray(length);
        return reply;
      }
      if (this.closed) throw new Error(`${this.name} closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.name}: no reply to ${what} in ${timeoutMs} ms; have ${JSON.stringify(this.pending.toString("latin1"))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async send(args: readonly string[]): Promise<string> {
    this.write(args);
    return this.next(args.join(" ").slice(0, 200));
  }

  /** Bytes received and not yet read as a reply. */
  get unread(): number {
    return this.pending.length;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * How a step's two replies are compared:
 * - exact: byte for byte.
 * - ttl: integers within `tolerance` when both are non-negative, else byte for byte.
 * - unordered: arrays with the same elements in any order (a hash table's order is per process).
 * - shape: each reply matches `pattern`, the front's and the bare server's alike.
 * - refused: sent to the front only; its reply is the policy's refusal.
 */
type Check =
  | { readonly kind: "exact" }
  | { readonly kind: "ttl"; readonly tolerance: number }
  | { readonly kind: "unordered" }
  | { readonly kind: "shape"; readonly pattern: RegExp }
  | { readonly kind: "refused" };

interface Step {
  /** The command; a function reads values saved by earlier steps. */
  readonly args: readonly string[] | ((saved: ReadonlyMap<string, string>) => string[]);
  /** The connection pair; by default the pairs take steps in turn. */
  readonly on?: number;
  readonly check: Check;
  /** Keep the bare server's bulk reply (its payload) under this name. */
  readonly save?: string;
}

const EXACT: Check = { kind: "exact" };
const UNORDERED: Check = { kind: "unordered" };
const REFUSED: Check = { kind: "refused" };

/** Commands the policy refuses: sent to the front only, never to the bare server. */
const REFUSED_NAMES = new Set(["spop", "srandmember"]);
/** Replies that are a time left or an absolute expiry: seconds or milliseconds. */
const TTL_TOLERANCE: Readonly<Record<string, number>> = {
  ttl: 3,
  expiretime: 3,
  pttl: 3000,
  pexpiretime: 3000,
};

/** The default check of a command, by its name. */
function checkOf(args: readonly string[]): Check {
  const name = args[0]!.toLowerCase();
  if (REFUSED_NAMES.has(name)) return REFUSED;
  const tolerance = TTL_TOLERANCE[name];
  return tolerance === undefined ? EXACT : { kind: "ttl", tolerance };
}

const c = (...args: string[]): Step => ({ args, check: checkOf(args) });
const on = (pair: number, ...args: string[]): Step => ({ args, on: pair, check: checkOf(args) });
const unordered = (...args: string[]): Step => ({ args, check: UNORDERED });
const refused = (...args: string[]): Step => ({ args, check: REFUSED });

// The embedded store's list, less SELECT 1 (it would leave one connection in db 1; SELECT has its
// own section). SPOP and SRANDMEMBER are refused in replicated mode (random): front only.
const EMBEDDED_COMMANDS = REDIS_COMMANDS.filter((c) => !(c[0] === "SELECT" && c[1] === "1"));
const TIME_REPLY = /^\*2\r\n\$\d+\r\n\d+\r\n\$\d+\r\n\d+\r\n$/;
const STREAM_ID_REPLY = /^\$\d+\r\n\d+-\d+\r\n$/;
const BIG = "x".repeat(200_000);
const BINARY = "a\r\nb\u0000c\u00ff*1\r\n$3\r\n";

/** Strings and counters, beyond the embedded list. */
const STRINGS: Step[] = [
  c("SET", "s:bin", BINARY),
  c("GET", "s:bin"),
  c("STRLEN", "s:bin"),
  c("SET", "s:big", BIG),
  c("GET", "s:big"),
  c("STRLEN", "s:big"),
  c("GETRANGE", "s:big", "199990", "-1"),
  c("sEt", "s:case", "v"),
  c("get", "s:case"),
  c("SETNX", "s:nx", "1"),
  c("SETNX", "s:nx", "2"),
  c("MSETNX", "s:m1", "a", "s:m2", "b"),
  c("MSETNX", "s:m2", "x", "s:m3", "y"),
  c("MGET", "s:m1", "s:m2", "s:m3"),
  c("MSETNX", "s:m1"),
  c("SET", "s:r", "Hello World"),
  c("GETRANGE", "s:r", "0", "4"),
  c("GETRANGE", "s:r", "-5", "-1"),
  c("GETRANGE", "s:r", "5", "2"),
  c("GETRANGE", "s:r", "a", "2"),
  c("SUBSTR", "s:r", "0", "2"),
  c("SETRANGE", "s:r", "6", "Redis"),
  c("SETRANGE", "s:new", "3", "abc"),
  c("GET", "s:new"),
  c("SETRANGE", "s:r", "-1", "x"),
  c("SETRANGE", "s:r", "536870912", "x"),
  c("SETRANGE", "s:r", "0", ""),
  c("GETDEL", "s:r"),
  c("GETDEL", "s:r"),
  c("LCS", "s:m1", "s:new"),
  c("SET", "s:l1", "ohmytext"),
  c("SET", "s:l2", "mynewtext"),
  c("LCS", "s:l1", "s:l2"),
  c("LCS", "s:l1", "s:l2", "LEN"),
  c("LCS", "s:l1", "s:l2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
  c("LCS", "s:l1", "s:l2", "BOGUS"),
  c("SET", "s:k", "v", "XX", "NX"),
  c("SET", "s:k", "v", "GET", "GET"),
  c("SET", "s:k", "v", "PX", "100", "EX", "10"),
  c("SET", "s:k"),
  c("GETSET", "s:k"),
  // Counters.
  c("INCRBYFLOAT", "c:f", "1.5"),
  c("INCRBYFLOAT", "c:f", "0.1"),
  c("INCRBYFLOAT", "c:f", "-5.6e2"),
  c("INCRBYFLOAT", "c:f", "abc"),
  c("INCRBYFLOAT", "c:f", "inf"),
  c("SET", "c:i", "10"),
  c("INCRBYFLOAT", "c:i", "2"),
  c("GET", "c:i"),
  c("INCR", "c:i"),
  c("SET", "c:max", "9223372036854775807"),
  c("INCRBY", "c:max", "1"),
  c("INCRBY", "c:max", "-1"),
  c("DECRBY", "c:max", "9223372036854775808"),
  c("INCRBY", "c:max", "99999999999999999999"),
  c("SET", "c:sp", " 1"),
  c("INCR", "c:sp"),
  c("SET", "c:f2", "1.0"),
  c("INCR", "c:f2"),
  c("DECR", "c:new"),
  c("INCR"),
];

/** Keys and expiry (TTL-like replies within a tolerance). */
const KEYS: Step[] = [
  c("SET", "e:a", "v", "EX", "100"),
  c("TTL", "e:a"),
  c("PTTL", "e:a"),
  c("EXPIRETIME", "e:a"),
  c("PEXPIRETIME", "e:a"),
  c("SET", "e:rep", "v", "EX", "10", "EX", "200"),
  c("TTL", "e:rep"),
  c("SET", "e:px", "v", "PX", "150000", "GET"),
  c("PTTL", "e:px"),
  c("SET", "e:px", "w", "NX", "PX", "150000"),
  c("SET", "e:px", "w", "XX", "KEEPTTL", "GET"),
  c("TTL", "e:px"),
  c("SET", "e:at", "v", "EXAT", "4102444800"),
  c("EXPIRETIME", "e:at"),
  c("SET", "e:pat", "v", "PXAT", "4102444800123"),
  c("PEXPIRETIME", "e:pat"),
  c("SET", "e:at", "v", "EXAT", "0"),
  c("SET", "e:at", "v", "EXAT", "4102444800", "PX", "100"),
  c("SETEX", "e:sx", "100", "v"),
  c("TTL", "e:sx"),
  c("SETEX", "e:sx", "0", "v"),
  c("SETEX", "e:sx", "-1", "v"),
  c("SETEX", "e:sx", "abc", "v"),
  c("SETEX", "e:sx", "9223372036854775807", "v"),
  c("SETEX", "e:sx", "100"),
  c("PSETEX", "e:psx", "100000", "v"),
  c("PTTL", "e:psx"),
  c("PSETEX", "e:psx", "0", "v"),
  c("PSETEX", "e:psx", "9223372036854775807", "v"),
  c("GETEX", "e:sx", "EX", "300"),
  c("TTL", "e:sx"),
  c("GETEX", "e:sx", "PX", "400000"),
  c("PTTL", "e:sx"),
  c("GETEX", "e:sx", "PERSIST"),
  c("TTL", "e:sx"),
  c("GETEX", "e:sx", "EXAT", "4102444800"),
  c("EXPIRETIME", "e:sx"),
  c("GETEX", "e:sx", "PX", "0"),
  c("GETEX", "e:sx", "EX", "10", "PERSIST"),
  c("GETEX", "e:sx", "KEEPTTL"),
  c("GETEX", "e:nokey", "EX", "10"),
  c("GETEX", "e:sx"),
  c("PEXPIRE", "e:sx", "200000"),
  c("PTTL", "e:sx"),
  c("PEXPIRE", "e:sx", "100000", "GT"),
  c("PEXPIRE", "e:sx", "100000", "LT"),
  c("PTTL", "e:sx"),
  c("PEXPIRE", "e:sx", "9223372036854775000"),
  c("EXPIRE", "e:sx", "9223372036854775"),
  c("EXPIRE", "e:sx", "922337203685477"),
  c("EXPIREAT", "e:sx", "4102444800"),
  c("EXPIRETIME", "e:sx"),
  c("PEXPIREAT", "e:sx", "4102444800999"),
  c("PEXPIRETIME", "e:sx"),
  c("EXPIREAT", "e:sx", "4102444800", "XX", "GT"),
  c("EXPIRETIME", "e:nokey"),
  c("PERSIST", "e:sx"),
  c("EXPIRETIME", "e:sx"),
  c("SET", "e:gone", "v"),
  c("PEXPIRE", "e:gone", "0"),
  c("EXISTS", "e:gone"),
  c("SET", "e:gone", "v"),
  c("EXPIREAT", "e:gone", "1"),
  c("EXISTS", "e:gone"),
  // Renames, copies, types.
  c("SET", "k:a", "1"),
  c("RENAME", "k:a", "k:b"),
  c("EXISTS", "k:a", "k:b"),
  c("RENAME", "k:a", "k:c"),
  c("SET", "k:c", "3"),
  c("RENAMENX", "k:b", "k:c"),
  c("RENAMENX", "k:b", "k:d"),
  c("RENAME", "k:d", "k:d"),
  c("COPY", "k:d", "k:e"),
  c("COPY", "k:d", "k:e"),
  c("COPY", "k:c", "k:e", "REPLACE"),
  c("GET", "k:e"),
  c("COPY", "k:c", "k:e", "DB", "1"),
  c("COPY", "k:c", "k:e", "DB", "99"),
  c("COPY", "k:c", "k:e", "BOGUS"),
  c("MOVE", "k:e", "1"),
  c("MOVE", "k:e", "1"),
  c("MOVE", "k:nokey", "1"),
  c("MOVE", "k:d", "x"),
  c("TOUCH", "k:c", "k:d", "k:nope"),
  c("UNLINK", "k:c", "k:nope"),
  c("TYPE", "k:d"),
  c("SET", "k:ttl", "v", "EX", "500"),
  c("RENAME", "k:ttl", "k:ttl2"),
  c("TTL", "k:ttl2"),
  c("OBJECT", "ENCODING", "k:d"),
  c("OBJECT", "ENCODING", "s:big"),
  c("OBJECT", "ENCODING", "k:nope"),
  c("OBJECT", "BOGUS", "k:d"),
  c("DUMP", "k:nope"),
  { args: ["DUMP", "s:l2"], check: EXACT, save: "dump" },
  { args: (saved) => ["RESTORE", "k:r1", "0", saved.get("dump")!], check: EXACT },
  c("GET", "k:r1"),
  { args: (saved) => ["RESTORE", "k:r1", "0", saved.get("dump")!], check: EXACT },
  { args: (saved) => ["RESTORE", "k:r1", "0", saved.get("dump")!, "REPLACE"], check: EXACT },
  { args: (saved) => ["RESTORE", "k:r2", "100000", saved.get("dump")!], check: EXACT },
  c("PTTL", "k:r2"),
  {
    args: (saved) => ["RESTORE", "k:r3", "4102444800000", saved.get("dump")!, "ABSTTL"],
    check: EXACT,
  },
  c("PEXPIRETIME", "k:r3"),
  c("RESTORE", "k:r4", "0", "not a payload"),
  c("RESTORE", "k:r4", "-1", "x"),
  c("SET", "k:num1", "3"),
  c("RPUSH", "k:sort", "3", "1", "2", "10"),
  c("SORT", "k:sort"),
  c("SORT", "k:sort", "DESC", "LIMIT", "0", "2"),
  c("SORT", "k:sort", "ALPHA"),
  c("SORT", "k:sort", "BY", "nosort"),
  c("SORT", "k:sort", "STORE", "k:sorted"),
  c("LRANGE", "k:sorted", "0", "-1"),
  c("SORT_RO", "k:sort", "DESC"),
  c("RPUSH", "k:sortx", "a", "1"),
  c("SORT", "k:sortx"),
  c("SORT", "k:sort", "LIMIT", "0"),
];

/** Lists, beyond the embedded list. */
const LISTS: Step[] = [
  c("RPUSH", "l:a", "a", "b", "c", "d", "b"),
  c("LINDEX", "l:a", "0"),
  c("LINDEX", "l:a", "-1"),
  c("LINDEX", "l:a", "99"),
  c("LINDEX", "l:a", "x"),
  c("LSET", "l:a", "0", "z"),
  c("LSET", "l:a", "99", "z"),
  c("LSET", "l:nokey", "0", "z"),
  c("LINSERT", "l:a", "BEFORE", "z", "y"),
  c("LINSERT", "l:a", "AFTER", "nope", "y"),
  c("LINSERT", "l:a", "MIDDLE", "z", "y"),
  c("LINSERT", "l:nokey", "AFTER", "z", "y"),
  c("LPOS", "l:a", "b"),
  c("LPOS", "l:a", "b", "RANK", "-1"),
  c("LPOS", "l:a", "b", "COUNT", "0"),
  c("LPOS", "l:a", "b", "RANK", "0"),
  c("LPOS", "l:a", "nope"),
  c("LREM", "l:a", "0", "b"),
  c("LREM", "l:a", "x", "b"),
  c("LRANGE", "l:a", "0", "-1"),
  c("LTRIM", "l:a", "0", "2"),
  c("LRANGE", "l:a", "0", "-1"),
  c("LMOVE", "l:a", "l:b", "LEFT", "RIGHT"),
  c("LMOVE", "l:a", "l:b", "UP", "RIGHT"),
  c("RPOPLPUSH", "l:a", "l:b"),
  c("RPOPLPUSH", "l:nokey", "l:b"),
  c("LRANGE", "l:b", "0", "-1"),
  c("LPUSHX", "l:nokey", "a"),
  c("RPUSHX", "l:b", "q"),
  c("LMPOP", "2", "l:nokey", "l:b", "LEFT", "COUNT", "2"),
  c("LMPOP", "0", "l:b", "LEFT"),
  c("LMPOP", "1", "l:b", "SIDEWAYS"),
  c("LMPOP", "1", "l:nokey", "RIGHT"),
  c("LLEN", "l:b"),
  c("LLEN", "s:big"),
  c("LPUSH", "s:big", "x"),
];

/** Hashes, beyond the embedded list. */
const HASHES: Step[] = [
  c("HSET", "h:a", "f1", "1", "f2", "2"),
  c("HINCRBY", "h:a", "f1", "5"),
  c("HINCRBY", "h:a", "f1", "x"),
  c("HINCRBY", "h:a", "big", "9223372036854775807"),
  c("HINCRBY", "h:a", "big", "1"),
  c("HINCRBYFLOAT", "h:a", "f2", "0.5"),
  c("HINCRBYFLOAT", "h:a", "f2", "abc"),
  c("HSETNX", "h:a", "f1", "9"),
  c("HSETNX", "h:a", "f3", "9"),
  c("HMGET", "h:a", "f1", "nope", "f3"),
  c("HMSET", "h:a", "f4", "4"),
  c("HMSET", "h:a", "f4"),
  c("HKEYS", "h:a"),
  c("HVALS", "h:a"),
  c("HGETALL", "h:a"),
  c("HSTRLEN", "h:a", "f1"),
  c("HSTRLEN", "h:a", "nope"),
  c("HLEN", "h:nokey"),
  c("HDEL", "h:a"),
  c("HGET", "l:b", "f"),
  c("OBJECT", "ENCODING", "h:a"),
];

/** Sets, beyond the embedded list (a set of strings is a hash table: its order is per process). */
const SETS: Step[] = [
  c("SADD", "t:int", "3", "1", "2"),
  c("SMEMBERS", "t:int"),
  c("OBJECT", "ENCODING", "t:int"),
  c("SADD", "t:a", "x", "y", "z"),
  c("SADD", "t:b", "y", "z", "w"),
  unordered("SMEMBERS", "t:a"),
  unordered("SINTER", "t:a", "t:b"),
  unordered("SUNION", "t:a", "t:b"),
  c("SDIFF", "t:a", "t:b"),
  c("SINTERSTORE", "t:c", "t:a", "t:b"),
  c("SUNIONSTORE", "t:d", "t:a", "t:b"),
  c("SDIFFSTORE", "t:e", "t:a", "t:b"),
  c("SCARD", "t:d"),
  c("SMOVE", "t:a", "t:b", "x"),
  c("SMOVE", "t:a", "t:b", "nope"),
  c("SMISMEMBER", "t:a", "x", "y"),
  c("SINTERCARD", "2", "t:a", "t:b"),
  c("SINTERCARD", "2", "t:a", "t:b", "LIMIT", "1"),
  c("SINTERCARD", "0", "t:a"),
  c("SINTERCARD", "3", "t:a"),
  c("SINTER", "t:a", "h:a"),
  c("SADD", "t:a"),
];

/** Sorted sets, beyond the embedded list. */
const ZSETS: Step[] = [
  c("ZADD", "y:a", "1", "a", "2", "b", "3", "c"),
  c("ZADD", "y:b", "10", "b", "20", "d"),
  c("ZUNIONSTORE", "y:u", "2", "y:a", "y:b", "WEIGHTS", "1", "2"),
  c("ZRANGE", "y:u", "0", "-1", "WITHSCORES"),
  c("ZINTER", "2", "y:a", "y:b", "WITHSCORES"),
  c("ZINTER", "2", "y:a", "y:b", "AGGREGATE", "MAX", "WITHSCORES"),
  c("ZDIFF", "2", "y:a", "y:b"),
  c("ZUNION", "0", "y:a"),
  c("ZUNION", "2", "y:a"),
  c("ZINTERCARD", "2", "y:a", "y:b"),
  c("ZRANGESTORE", "y:s", "y:a", "0", "1"),
  c("ZRANGE", "y:s", "0", "-1"),
  c("ZLEXCOUNT", "lex", "-", "+"),
  c("ZLEXCOUNT", "lex", "x", "+"),
  c("ZREMRANGEBYSCORE", "y:u", "(2", "+inf"),
  c("ZREMRANGEBYRANK", "y:u", "0", "0"),
  c("ZREMRANGEBYLEX", "lex", "[a", "[b"),
  c("ZMPOP", "2", "y:nokey", "y:a", "MIN", "COUNT", "2"),
  c("ZMPOP", "1", "y:a", "MAX"),
  c("ZMPOP", "1", "y:a", "BOGUS"),
  c("ZSCORE", "y:b", "b"),
  c("ZADD", "y:b", "INCR", "0.1", "b"),
];

/** Streams, with explicit IDs (an auto ID is the leader's clock on one side, the bare one's on the other). */
const STREAMS: Step[] = [
  c("XADD", "x:a", "1-1", "f", "v1"),
  c("XADD", "x:a", "1-1", "f", "v2"),
  c("XADD", "x:a", "0-0", "f", "v"),
  c("XADD", "x:a", "2-*", "f", "v2"),
  c("XADD", "x:a", "2-*", "f", "v3"),
  c("XADD", "x:a", "5-0", "f", "v4", "g", "w"),
  c("XADD", "x:a", "MAXLEN", "10", "6-0", "f", "v5"),
  c("XADD", "x:a", "6-1", "f"),
  c("XADD", "x:a", "bogus", "f", "v"),
  c("XADD", "x:nokey", "NOMKSTREAM", "1-1", "f", "v"),
  c("EXISTS", "x:nokey"),
  c("XLEN", "x:a"),
  c("XRANGE", "x:a", "-", "+"),
  c("XRANGE", "x:a", "2", "5", "COUNT", "1"),
  c("XRANGE", "x:a", "(2-0", "+"),
  c("XRANGE", "x:a", "x", "+"),
  c("XREVRANGE", "x:a", "+", "-", "COUNT", "2"),
  c("XREAD", "COUNT", "2", "STREAMS", "x:a", "0"),
  c("XREAD", "STREAMS", "x:a", "x:nokey", "5-0", "0"),
  c("XREAD", "STREAMS", "x:a"),
  c("XDEL", "x:a", "2-0", "99-0"),
  c("XTRIM", "x:a", "MAXLEN", "3"),
  c("XTRIM", "x:a", "MINID", "6-0"),
  c("XTRIM", "x:a", "BOGUS", "1"),
  c("XGROUP", "CREATE", "x:a", "g1", "0"),
  c("XGROUP", "CREATE", "x:a", "g1", "0"),
  c("XGROUP", "CREATE", "x:nokey", "g1", "$"),
  c("XGROUP", "CREATE", "x:mk", "g1", "$", "MKSTREAM"),
  c("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "1", "STREAMS", "x:a", ">"),
  c("XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "x:a", ">"),
  c("XREADGROUP", "GROUP", "nogroup", "bob", "STREAMS", "x:a", ">"),
  c("XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "x:a", "0"),
  c("XPENDING", "x:a", "g1"),
  c("XACK", "x:a", "g1", "6-0", "99-0"),
  c("XPENDING", "x:a", "g1"),
  c("XCLAIM", "x:a", "g1", "carol", "0", "6-1"),
  c("XAUTOCLAIM", "x:a", "g1", "dave", "0", "0-0"),
  c("XINFO", "GROUPS", "x:a"),
  c("XINFO", "STREAM", "x:a"),
  c("XGROUP", "SETID", "x:a", "g1", "0"),
  c("XGROUP", "CREATECONSUMER", "x:a", "g1", "erin"),
  c("XGROUP", "DELCONSUMER", "x:a", "g1", "erin"),
  c("XGROUP", "DESTROY", "x:a", "g1"),
  c("XLEN", "s:big"),
  c("XADD", "s:big", "1-1", "f", "v"),
  // An auto ID: only its shape compares; the key is deleted before the digests are compared.
  { args: ["XADD", "x:auto", "*", "f", "v"], check: { kind: "shape", pattern: STREAM_ID_REPLY } },
  c("XLEN", "x:auto"),
  c("DEL", "x:auto"),
];

/** Bitmaps. */
const BITMAPS: Step[] = [
  c("SETBIT", "b:a", "7", "1"),
  c("SETBIT", "b:a", "7", "0"),
  c("SETBIT", "b:a", "7", "1"),
  c("SETBIT", "b:a", "100", "1"),
  c("GETBIT", "b:a", "100"),
  c("GETBIT", "b:a", "100000"),
  c("SETBIT", "b:a", "-1", "1"),
  c("SETBIT", "b:a", "1", "2"),
  c("SETBIT", "b:a", "4294967296", "1"),
  c("GET", "b:a"),
  c("BITCOUNT", "b:a"),
  c("BITCOUNT", "b:a", "0", "0"),
  c("BITCOUNT", "b:a", "0", "-1", "BIT"),
  c("BITCOUNT", "b:a", "0"),
  c("BITPOS", "b:a", "1"),
  c("BITPOS", "b:a", "0"),
  c("BITPOS", "b:a", "1", "1", "-1", "BIT"),
  c("BITPOS", "b:a", "2"),
  c("SET", "b:b", "\u00ff\u00f0"),
  c("BITOP", "AND", "b:and", "b:a", "b:b"),
  c("BITOP", "OR", "b:or", "b:a", "b:b"),
  c("BITOP", "XOR", "b:xor", "b:a", "b:b"),
  c("BITOP", "NOT", "b:not", "b:b"),
  c("BITOP", "NOT", "b:not", "b:a", "b:b"),
  c("BITOP", "NAND", "b:x", "b:a"),
  c("MGET", "b:and", "b:or", "b:xor", "b:not"),
  c("BITFIELD", "b:f", "SET", "u8", "0", "255", "GET", "u8", "0", "INCRBY", "u8", "0", "10"),
  c(
    "BITFIELD",
    "b:f",
    "OVERFLOW",
    "FAIL",
    "INCRBY",
    "u8",
    "0",
    "300",
    "OVERFLOW",
    "SAT",
    "INCRBY",
    "u8",
    "0",
    "300",
  ),
  c("BITFIELD", "b:f", "SET", "i64", "0", "-1", "GET", "u63", "0", "GET", "i4", "#1"),
  c("BITFIELD", "b:f", "GET", "u64", "0"),
  c("BITFIELD", "b:f", "BOGUS"),
  c("BITFIELD_RO", "b:f", "GET", "u4", "0"),
  c("BITFIELD_RO", "b:f", "SET", "u4", "0", "1"),
  c("SETBIT", "l:b", "0", "1"),
  c("BITCOUNT", "l:b"),
];

/** HyperLogLog. */
const HLLS: Step[] = [
  c("PFADD", "p:a", "a", "b", "c"),
  c("PFADD", "p:a", "a"),
  c("PFADD", "p:a"),
  c("PFADD", "p:new"),
  c("PFCOUNT", "p:a"),
  c("PFADD", "p:b", "c", "d"),
  c("PFCOUNT", "p:a", "p:b"),
  c("PFMERGE", "p:c", "p:a", "p:b"),
  c("PFCOUNT", "p:c"),
  c("GET", "p:c"),
  c("PFCOUNT", "k:d"),
  c("PFADD", "k:d", "x"),
  c("PFCOUNT", "l:b"),
  c("PFMERGE", "p:c", "l:b"),
  c("PFCOUNT"),
];

/** MULTI/EXEC/WATCH/DISCARD: one connection pair per transaction, another one interfering. */
const TRANSACTIONS: Step[] = [
  on(0, "MULTI"),
  on(0, "SET", "m:a", "1"),
  on(0, "INCR", "m:a"),
  on(0, "LPUSH", "m:a", "x"),
  on(0, "GET", "m:a"),
  on(0, "EXEC"),
  on(1, "GET", "m:a"),
  on(0, "WATCH", "m:a"),
  on(1, "SET", "m:a", "changed"),
  on(0, "MULTI"),
  on(0, "SET", "m:a", "mine"),
  on(0, "EXEC"),
  on(2, "GET", "m:a"),
  on(0, "WATCH", "m:a", "m:b"),
  on(0, "MULTI"),
  on(0, "SET", "m:b", "mine"),
  on(0, "EXEC"),
  on(1, "GET", "m:b"),
  on(2, "WATCH", "m:a"),
  on(2, "UNWATCH"),
  on(0, "SET", "m:a", "again"),
  on(2, "MULTI"),
  on(2, "GET", "m:a"),
  on(2, "EXEC"),
  on(1, "MULTI"),
  on(1, "SET", "m:c", "1"),
  on(1, "NOSUCHCOMMAND"),
  on(1, "GET"),
  on(1, "EXEC"),
  on(2, "EXISTS", "m:c"),
  on(1, "MULTI"),
  on(1, "MULTI"),
  on(1, "WATCH", "m:a"),
  on(1, "DISCARD"),
  on(1, "DISCARD"),
  on(1, "EXEC"),
  on(1, "MULTI", "extra"),
  on(2, "MULTI"),
  on(2, "SET", "m:ttl", "v", "EX", "100"),
  on(2, "EXPIRE", "m:a", "200"),
  on(2, "SETEX", "m:sx", "300", "v"),
  on(2, "GETEX", "m:ttl", "PX", "100000"),
  on(2, "EXEC"),
  on(0, "TTL", "m:ttl"),
  on(1, "TTL", "m:a"),
  on(0, "TTL", "m:sx"),
  // TIME inside MULTI is answered by each copy's clock, inside EXEC's reply: shape only.
  on(0, "MULTI"),
  on(0, "PING"),
  on(0, "TIME"),
  {
    args: ["EXEC"],
    on: 0,
    check: { kind: "shape", pattern: /^\*2\r\n\+PONG\r\n\*2\r\n\$\d+\r\n\d+\r\n\$\d+\r\n\d+\r\n$/ },
  },
  on(0, "WATCH", "m:nokey"),
  on(1, "SET", "m:nokey", "v"),
  on(1, "DEL", "m:nokey"),
  on(0, "MULTI"),
  on(0, "PING"),
  on(0, "EXEC"),
];

/** SELECT: per connection; keys in db 1 are seen only from a connection that selected it. */
const SELECTS: Step[] = [
  on(0, "SELECT", "1"),
  on(0, "SET", "d:one", "in db 1"),
  on(0, "GET", "d:one"),
  on(0, "GET", "k:e"),
  on(0, "DBSIZE"),
  on(1, "GET", "d:one"),
  on(1, "SELECT", "1"),
  on(1, "GET", "d:one"),
  on(1, "MOVE", "d:one", "0"),
  on(1, "SELECT", "0"),
  on(2, "GET", "d:one"),
  on(0, "SELECT", "0"),
  on(0, "SELECT", "16"),
  on(0, "SELECT", "-1"),
  on(0, "SELECT", "abc"),
  on(0, "SELECT"),
  on(0, "SELECT", "0", "1"),
  on(2, "MULTI"),
  on(2, "SELECT", "2"),
  on(2, "SET", "d:two", "in db 2"),
  on(2, "EXEC"),
  on(2, "GET", "d:two"),
  on(2, "SELECT", "0"),
  on(1, "GET", "d:two"),
  on(0, "DBSIZE"),
  // Other per-connection state.
  on(1, "CLIENT", "SETNAME", "pair-two"),
  on(1, "CLIENT", "GETNAME"),
  on(2, "CLIENT", "GETNAME"),
  on(1, "CLIENT", "SETNAME", "has space"),
  // Inside MULTI nothing blocks: a BLPOP on an empty list is a null in EXEC's reply.
  on(2, "MULTI"),
  on(2, "BLPOP", "d:empty", "0"),
  on(2, "XREAD", "BLOCK", "0", "STREAMS", "x:a", "$"),
  on(2, "EXEC"),
];

/** Errors: wrong type, wrong arity, unknown commands, syntax. */
const ERRORS: Step[] = [
  c("SET", "r:str", "v"),
  c("LPUSH", "r:str", "x"),
  c("HGET", "r:str", "f"),
  c("SADD", "r:str", "x"),
  c("ZADD", "r:str", "1", "x"),
  c("XLEN", "r:str"),
  c("INCR", "l:b"),
  c("APPEND", "l:b", "x"),
  c("GET", "l:b"),
  c("GET"),
  c("SET", "r:str"),
  c("LPUSH", "r:l"),
  c("HSET", "r:h", "f"),
  c("ZADD", "r:z"),
  c("XADD", "r:x", "*"),
  c("EXPIRE", "r:str"),
  c("TTL"),
  c("MULTI", "x"),
  c("PING", "a", "b"),
  c("NOSUCHCMD"),
  c("nosuchcmd", "a", "b", "c", "d", "e", "f", "g"),
  c("NOSUCHCMD", "x".repeat(200)),
  c(""),
  c("CONFIG"),
  c("CONFIG", "BOGUS"),
  c("OBJECT"),
  c("XGROUP", "BOGUS"),
  c("SET", "r:str", "v", "EX", "1", "KEEPTTL"),
  c("ZADD", "r:z", "NX", "XX", "1", "a"),
  c("LINSERT", "r:l", "SIDEWAYS", "a", "b"),
  c("SCAN", "0", "COUNT", "0"),
  c("SCAN", "0", "BOGUS"),
  c("EXPIRE", "r:str", "10", "BOGUS"),
  c("GETEX", "r:str", "BOGUS"),
  c("ECHO"),
  c("ECHO", "a", "b"),
];

/** The commands the policy refuses, sent to the front only (the bare server would run them). */
const REFUSALS: Step[] = [
  refused("RANDOMKEY"),
  refused("SPOP", "t:a"),
  refused("EVAL", "return 1", "0"),
  refused("CONFIG", "SET", "save", ""),
  refused("SAVE"),
  refused("DEBUG", "SLEEP", "0"),
  { ...refused("MONITOR"), on: 1 },
  on(1, "PING", "after MONITOR"),
  refused("SWAPDB", "0", "1"),
  refused("SRANDMEMBER", "t:a"),
  refused("HRANDFIELD", "h:a"),
  refused("ZRANDMEMBER", "y:b"),
  refused("EVALSHA", "0000000000000000000000000000000000000000", "0"),
  refused("SCRIPT", "FLUSH"),
  refused("FCALL", "f", "0"),
  refused("BGSAVE"),
  refused("WAIT", "0", "0"),
  refused("PFDEBUG", "GETREG", "p:a"),
  refused("CLIENT", "KILL", "ID", "999999999"),
  refused("config", "set", "appendonly", "no"),
  c("PING", "still here"),
];

/** TIME: answered from the log's clock; a two-element array of integers. */
const TIMES: Step[] = [
  { args: ["TIME"], check: { kind: "shape", pattern: TIME_REPLY } },
  { args: ["TIME"], check: { kind: "shape", pattern: TIME_REPLY } },
  { args: ["TIME"], check: { kind: "shape", pattern: TIME_REPLY } },
  c("TIME", "x"),
];

/** After everything: the key space read back, and compared as a set (KEYS is in hash order). */
const FINAL: Step[] = [
  unordered("KEYS", "*"),
  c("DBSIZE"),
  c("CONFIG", "GET", "save"),
  c("DEBUG", "DIGEST-VALUE", "s:l2", "h:a", "x:a", "y:b", "nokey"),
  c("DEBUG", "DIGEST"),
];

const STEPS: readonly Step[] = [
  ...EMBEDDED_COMMANDS.map((args) => c(...args)),
  ...STRINGS,
  ...KEYS,
  ...LISTS,
  ...HASHES,
  ...SETS,
  ...ZSETS,
  ...STREAMS,
  ...BITMAPS,
  ...HLLS,
  ...TRANSACTIONS,
  ...SELECTS,
  ...ERRORS,
  ...REFUSALS,
  ...TIMES,
  ...FINAL,
];

function show(text: string, max = 300): string {
  const json = JSON.stringify(text);
  return json.length > max ? `${json.slice(0, max)}…(${text.length} bytes)` : json;
}

function showCommand(args: readonly string[]): string {
  return args.map((a) => (a.length > 40 ? `${a.slice(0, 20)}…(${a.length})` : a)).join(" ");
}

/** The payload of a bulk reply. */
function bulkPayload(reply: string): string {
  const match = /^\$(\d+)\r\n/.exec(reply);
  if (match === null) throw new Error(`not a bulk reply: ${show(reply)}`);
  return reply.slice(match[0].length, match[0].length + Number(match[1]));
}

/** Why the front's reply does not pass `check` against the bare server's, or null. */
function compare(check: Check, front: string, bare: string): string | null {
  const differ = `bare ${show(bare)}, front ${show(front)}`;
  switch (check.kind) {
    case "exact":
      return front === bare ? null : differ;
    case "ttl": {
      const a = integerReply(front);
      const b = integerReply(bare);
      if (a !== null && b !== null && a >= 0 && b >= 0) {
        return Math.abs(a - b) <= check.tolerance
          ? null
          : `${differ} (tolerance ${check.tolerance})`;
      }
      return front === bare ? null : differ;
    }
    case "unordered": {
      const a = arrayElements(front);
      const b = arrayElements(bare);
      if (a === null || b === null) return front === bare ? null : differ;
      return a.sort().join("") === b.sort().join("") ? null : `${differ} (as sets)`;
    }
    case "shape":
      return check.pattern.test(front) && check.pattern.test(bare)
        ? null
        : `${differ} (expected ${check.pattern})`;
    case "refused":
      return front.startsWith("-ERR ") && front.includes("refused in replicated mode")
        ? null
        : `expected a refusal, front ${show(front)}`;
  }
}

interface CopyStatus {
  readonly port?: number;
  readonly program?: { readonly port?: number; readonly pid?: number | null } | null;
  readonly divergences?: readonly unknown[];
}

describe.skipIf(!REDIS)(
  "--app redis-server: the replicated front answers as a bare redis-server",
  () => {
    let cluster: TestCluster | undefined;
    let bare: ChildProcess | undefined;
    let bareDir: string | undefined;
    let barePort = 0;
    /** Pair i: the front of replica i+1 and bare connection i. */
    const front: RespConnection[] = [];
    const plain: RespConnection[] = [];
    /** Every other connection opened here, closed in afterAll. */
    const others: RespConnection[] = [];
    /** Each replica's copy of redis-server: its own port and pid. */
    const copies: { port: number; pid: number | null }[] = [];
    const saved = new Map<string, string>();
    let turn = 0;

    async function startBare(): Promise<void> {
      bareDir = mkdtempSync(join(tmpdir(), "apus-bare-redis-"));
      for (let attempt = 1; attempt <= 5; attempt++) {
        const port = await freePort();
        const child = spawn(
          "redis-server",
          ["--port", String(port), "--bind", "127.0.0.1", "--dir", bareDir, ...REDIS_ARGS],
          { stdio: "ignore" },
        );
        let exited = false;
        child.once("exit", () => {
          exited = true;
        });
        for (let i = 0; i < 100 && !exited; i++) {
          try {
            const probe = await RespConnection.open(port, "bare probe");
            const pong = await probe.send(["PING"]);
            probe.close();
            if (pong === "+PONG\r\n") {
              bare = child;
              barePort = port;
              return;
            }
          } catch {
            await sleep(100);
          }
        }
        child.kill("SIGKILL");
      }
      throw new Error("the bare redis-server did not start");
    }

    async function copyStatus(id: number): Promise<CopyStatus | null> {
      const status = await cluster!.status(id);
      return (status?.app as CopyStatus | undefined) ?? null;
    }

    /** Send each step through the front and (unless refused) to the bare server; the mismatches. */
    async function run(steps: readonly Step[]): Promise<string[]> {
      const mismatches: string[] = [];
      for (const step of steps) {
        const args = typeof step.args === "function" ? step.args(saved) : step.args;
        const pair = step.on ?? turn++ % front.length;
        const ours = await front[pair]!.send(args);
        const theirs = step.check.kind === "refused" ? "" : await plain[pair]!.send(args);
        if (step.save !== undefined) saved.set(step.save, bulkPayload(theirs));
        const problem = compare(step.check, ours, theirs);
        if (problem !== null)
          mismatches.push(`[pair ${pair + 1}] ${showCommand(args)}: ${problem}`);
      }
      return mismatches;
    }

    /** blocked_clients of INFO clients, on one connection. */
    async function blockedClients(conn: RespConnection): Promise<number> {
      const info = bulkPayload(await conn.send(["INFO", "clients"]));
      return Number(/blocked_clients:(\d+)/.exec(info)?.[1] ?? "-1");
    }

    /** Wait until every copy has `count` blocked clients, and the bare server `bareCount`. */
    async function waitBlocked(count: number, bareCount = count): Promise<void> {
      const admins = [
        await RespConnection.open(barePort, "bare admin"),
        ...(await Promise.all(copies.map((c, i) => RespConnection.open(c.port, `copy ${i + 1}`)))),
      ];
      others.push(...admins);
      const deadline = Date.now() + 60_000;
      let last: number[] = [];
      while (Date.now() < deadline) {
        last = await Promise.all(admins.map(blockedClients));
        if (last.every((n, i) => n === (i === 0 ? bareCount : count))) break;
        await sleep(50);
      }
      for (const admin of admins) admin.close();
      expect(last, "blocked clients: bare, copy 1, copy 2, copy 3").toEqual(
        admins.map((_, i) => (i === 0 ? bareCount : count)),
      );
    }

    beforeAll(async () => {
      await startBare();
      cluster = await TestCluster.start({
        replicas: 3,
        extraArgs: ["--app", APP, "--protocol", "resp"],
      });
      await cluster.waitForLeader(60_000);
      await cluster.waitForAllUp(60_000);
      for (const replica of cluster.replicas) {
        const conn = await RespConnection.open(replica.clientPort, `front ${replica.id}`, 100);
        front.push(conn);
        expect(await conn.send(["PING"])).toBe("+PONG\r\n");
        plain.push(await RespConnection.open(barePort, `bare ${replica.id}`));
      }
      for (const replica of cluster.replicas) {
        const app = await copyStatus(replica.id);
        const port = app?.program?.port ?? app?.port;
        if (typeof port !== "number")
          throw new Error(`no copy port in /status: ${show(JSON.stringify(app))}`);
        copies.push({ port, pid: app?.program?.pid ?? null });
      }
    }, 180_000);

    afterAll(async () => {
      for (const conn of [...front, ...plain, ...others]) conn.close();
      await cluster?.stop();
      if (bare !== undefined && bare.exitCode === null && bare.signalCode === null) {
        const exited = new Promise((resolve) => bare!.once("exit", resolve));
        bare.kill("SIGKILL");
        await exited;
      }
      if (bareDir !== undefined) rmSync(bareDir, { recursive: true, force: true });
      // No copy of redis-server outlives its replica.
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const pids = copies.map((c) => c.pid).filter((pid): pid is number => pid !== null);
      const deadline = Date.now() + 20_000;
      while (pids.some(alive) && Date.now() < deadline) await sleep(100);
      const left = pids.filter(alive);
      for (const pid of left) process.kill(pid, "SIGKILL");
      expect(left, "copies of redis-server left running after their replicas ended").toEqual([]);
    }, 120_000);

    it("answers every command of the list as the bare server does, byte for byte", async () => {
      expect(await run(STEPS)).toEqual([]);
    });

    it("wakes a BLPOP on one replica with an LPUSH through another; a timeout is a null array", async () => {
      plain[0]!.write(["BLPOP", "w:list", "0"]);
      front[0]!.write(["BLPOP", "w:list", "0"]);
      await waitBlocked(1);
      expect(await run([on(1, "LPUSH", "w:list", "v")])).toEqual([]);
      const bareWoken = await plain[0]!.next("BLPOP w:list 0");
      const frontWoken = await front[0]!.next("BLPOP w:list 0");
      expect(frontWoken).toBe(bareWoken);
      expect(frontWoken).toBe("*2\r\n$6\r\nw:list\r\n$1\r\nv\r\n");

      plain[1]!.write(["BLMOVE", "w:src", "w:dst", "LEFT", "RIGHT", "0"]);
      front[1]!.write(["BLMOVE", "w:src", "w:dst", "LEFT", "RIGHT", "0"]);
      await waitBlocked(1);
      expect(await run([on(2, "RPUSH", "w:src", "a", "b")])).toEqual([]);
      const bareMoved = await plain[1]!.next("BLMOVE");
      expect(await front[1]!.next("BLMOVE")).toBe(bareMoved);
      expect(bareMoved).toBe("$1\r\na\r\n");

      // More kinds of wake-up: a sorted set, a stream, the second key of a multi-key pop.
      const wakeUps: [Step, Step][] = [
        [on(2, "BZPOPMIN", "w:z", "0"), on(0, "ZADD", "w:z", "1.5", "m")],
        [
          on(0, "XREAD", "BLOCK", "0", "STREAMS", "w:x", "$"),
          on(1, "XADD", "w:x", "7-1", "f", "v"),
        ],
        [on(1, "BRPOP", "w:k1", "w:k2", "0"), on(2, "RPUSH", "w:k2", "p", "q")],
        [
          on(2, "BLMPOP", "0", "2", "w:k3", "w:k4", "RIGHT", "COUNT", "5"),
          on(0, "LPUSH", "w:k4", "r", "s"),
        ],
      ];
      for (const [block, wake] of wakeUps) {
        const args = block.args as readonly string[];
        plain[block.on!]!.write(args);
        front[block.on!]!.write(args);
        await waitBlocked(1);
        expect(await run([wake])).toEqual([]);
        const bareReply = await plain[block.on!]!.next(showCommand(args));
        expect(await front[block.on!]!.next(showCommand(args)), showCommand(args)).toBe(bareReply);
      }

      // A client that goes away while blocked takes nothing: its connection closes on every copy.
      const goneFront = await RespConnection.open(
        cluster!.replica(3).clientPort,
        "front, to close",
      );
      const goneBare = await RespConnection.open(barePort, "bare, to close");
      others.push(goneFront, goneBare);
      goneFront.write(["BLPOP", "w:gone", "0"]);
      goneBare.write(["BLPOP", "w:gone", "0"]);
      await waitBlocked(1);
      goneFront.close();
      goneBare.close();
      await waitBlocked(0);
      expect(await run([on(0, "LPUSH", "w:gone", "kept"), on(1, "LLEN", "w:gone")])).toEqual([]);

      const timeouts = [
        on(2, "BLPOP", "w:none", "1"),
        on(0, "BRPOP", "w:none", "w:none2", "0.5"),
        on(1, "BZPOPMIN", "w:none", "0.5"),
        on(2, "XREAD", "BLOCK", "500", "STREAMS", "x:a", "$"),
        on(0, "BLMPOP", "0.5", "1", "w:none", "LEFT"),
      ];
      expect(await run(timeouts)).toEqual([]);
      expect(await front[2]!.send(["BLPOP", "w:none", "1"])).toBe("*-1\r\n");
      expect(await plain[2]!.send(["BLPOP", "w:none", "1"])).toBe("*-1\r\n");
      // The connections that blocked go on as usual.
      const after = [
        on(0, "LRANGE", "w:dst", "0", "-1"),
        on(1, "LRANGE", "w:src", "0", "-1"),
        on(2, "EXISTS", "w:list"),
        on(0, "PING"),
        on(1, "PING"),
      ];
      expect(await run(after)).toEqual([]);
    });

    it("delivers a PUBLISH through one replica to a SUBSCRIBE on another", async () => {
      const subFront = await RespConnection.open(
        cluster!.replica(2).clientPort,
        "subscriber front",
      );
      const subBare = await RespConnection.open(barePort, "subscriber bare");
      others.push(subFront, subBare);
      const mismatches: string[] = [];
      /** Send on both subscriber connections; compare `replies` replies (or pushes if args is null). */
      const both = async (args: readonly string[] | null, replies: number, what: string) => {
        if (args !== null) {
          subFront.write(args);
          subBare.write(args);
        }
        for (let i = 0; i < replies; i++) {
          const theirs = await subBare.next(what);
          const ours = await subFront.next(what);
          if (ours !== theirs)
            mismatches.push(`${what} #${i + 1}: bare ${show(theirs)}, front ${show(ours)}`);
        }
      };
      await both(["SUBSCRIBE", "n:one", "n:two"], 2, "SUBSCRIBE n:one n:two");
      mismatches.push(...(await run([on(0, "PUBLISH", "n:one", "hello")])));
      await both(null, 1, "message on n:one");
      await both(["PSUBSCRIBE", "n:*"], 1, "PSUBSCRIBE n:*");
      mismatches.push(...(await run([on(2, "PUBLISH", "n:two", "world")])));
      await both(null, 2, "message and pmessage on n:two");
      await both(["PING"], 1, "PING while subscribed");
      await both(["GET", "w:dst"], 1, "GET while subscribed");
      await both(["UNSUBSCRIBE", "n:one", "n:two"], 2, "UNSUBSCRIBE n:one n:two");
      await both(["PUNSUBSCRIBE", "n:*"], 1, "PUNSUBSCRIBE n:*");
      await both(["GET", "w:dst"], 1, "GET after unsubscribing");
      mismatches.push(...(await run([on(1, "PUBLISH", "n:one", "nobody")])));
      expect(mismatches).toEqual([]);
      expect(subFront.unread, "bytes nobody asked for on the front").toBe(0);
      subFront.close();
      subBare.close();
    });

    it("answers pipelines written in one piece, on two replicas at once, as the bare server does", async () => {
      const batch = (prefix: string): string[][] => {
        const commands: string[][] = [];
        for (let i = 0; i < 60; i++) {
          const key = `${prefix}:${i}`;
          commands.push(
            ["SET", key, String(i)],
            ["INCR", key],
            ["GET", key],
            ["LPUSH", key, "x"],
            ["EXPIRE", key, "1000"],
            ["TTL", "nokey"],
            ["NOSUCH", key],
          );
        }
        commands.push(["MULTI"], ["INCR", `${prefix}:0`], ["GET", `${prefix}:0`], ["EXEC"]);
        commands.push(["MGET", `${prefix}:0`, `${prefix}:59`, `${prefix}:60`]);
        return commands;
      };
      const mismatches: string[] = [];
      await Promise.all(
        [0, 2].map(async (pair) => {
          const commands = batch(`pipe${pair}`);
          front[pair]!.writeAll(commands);
          plain[pair]!.writeAll(commands);
          for (const command of commands) {
            const what = showCommand(command);
            const theirs = await plain[pair]!.next(what);
            const ours = await front[pair]!.next(what);
            if (ours !== theirs) {
              mismatches.push(
                `[pair ${pair + 1}] ${what}: bare ${show(theirs)}, front ${show(ours)}`,
              );
            }
          }
        }),
      );
      expect(mismatches).toEqual([]);
    });

    it("leaves every copy with the bare server's DEBUG DIGEST", async () => {
      const bareAdmin = await RespConnection.open(barePort, "bare admin");
      const admins = await Promise.all(
        copies.map((c, i) => RespConnection.open(c.port, `copy ${i + 1}`)),
      );
      others.push(bareAdmin, ...admins);
      const expected = await bareAdmin.send(["DEBUG", "DIGEST"]);
      expect(expected).toMatch(/^\+[0-9a-f]{40}\r\n$/);
      expect(expected).not.toBe(`+${"0".repeat(40)}\r\n`);
      // A follower may still be applying the last commands: wait, then compare.
      const deadline = Date.now() + 60_000;
      let digests: string[] = [];
      while (Date.now() < deadline) {
        digests = await Promise.all(admins.map((a) => a.send(["DEBUG", "DIGEST"])));
        if (digests.every((d) => d === expected)) break;
        await sleep(100);
      }
      expect(digests).toEqual(admins.map(() => expected));
      for (const replica of cluster!.replicas) {
        const divergences = (await copyStatus(replica.id))?.divergences;
        if (divergences !== undefined) expect(divergences, `replica ${replica.id}`).toEqual([]);
      }
    });

    // After the digests: these write through the front only. Both were bugs once: a refused
    // command inside MULTI did not abort the copy's transaction, and RESET did not end MULTI (or
    // subscriptions) for the apply loop, which then waited for a reply that never came.
    it("a command refused inside MULTI aborts the transaction", async () => {
      const conn = await RespConnection.open(cluster!.replica(1).clientPort, "front, MULTI");
      others.push(conn);
      expect(await conn.send(["MULTI"])).toBe("+OK\r\n");
      expect(await conn.send(["SET", "f:abort", "1"])).toBe("+QUEUED\r\n");
      expect(await conn.send(["RANDOMKEY"])).toMatch(/^-ERR RANDOMKEY is refused/);
      expect(await conn.send(["EXEC"])).toMatch(/^-EXECABORT/);
      expect(await front[1]!.send(["EXISTS", "f:abort"])).toBe(":0\r\n");
    });

    it("RESET ends MULTI, so a BLPOP after it blocks", async () => {
      const conn = await RespConnection.open(cluster!.replica(1).clientPort, "front, RESET");
      const other = await RespConnection.open(cluster!.replica(2).clientPort, "front, waker");
      others.push(conn, other);
      expect(await conn.send(["MULTI"])).toBe("+OK\r\n");
      expect(await conn.send(["RESET"])).toBe("+RESET\r\n");
      conn.write(["BLPOP", "f:reset", "0"]);
      await waitBlocked(1, 0);
      other.write(["LPUSH", "f:reset", "v"]);
      expect(await other.next("LPUSH f:reset v", 15_000)).toBe(":1\r\n");
      expect(await conn.next("BLPOP f:reset 0", 15_000)).toBe("*2\r\n$7\r\nf:reset\r\n$1\r\nv\r\n");
    });

    it("RESET ends subscriptions, so a bare UNSUBSCRIBE after it answers once", async () => {
      const conn = await RespConnection.open(cluster!.replica(3).clientPort, "front, RESET sub");
      others.push(conn);
      conn.write(["SUBSCRIBE", "r:a", "r:b"]);
      expect(await conn.next("SUBSCRIBE r:a", 15_000)).toMatch(/subscribe/);
      expect(await conn.next("SUBSCRIBE r:b", 15_000)).toMatch(/subscribe/);
      expect(await conn.send(["RESET"])).toBe("+RESET\r\n");
      expect(await conn.send(["UNSUBSCRIBE"])).toBe("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
      expect(await conn.send(["PING"])).toBe("+PONG\r\n");
    });
  },
);

/**
 * The Redis command policy of transparent mode, checked against a real redis-server (skipped,
 * with a message, when it is not installed): the command table it reports, the keys of each
 * command (with COMMAND GETKEYS as the oracle), the policy of each command, the time rewrites
 * (the original on one key, the rewrite on another, replies compared byte for byte), commutes().
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildRedisCommandTable,
  keysOf,
  loadRedisCommandTable,
  type RedisCommandTable,
  RedisTableError,
  readResp2,
} from "../../../src/app/program/redis-command-table.ts";
import {
  classify,
  commutes,
  rewriteWithTime,
  timeReply,
} from "../../../src/app/program/redis-policy.ts";

const REDIS_SERVER = "redis-server";

function hasRedis(): boolean {
  try {
    execFileSync(REDIS_SERVER, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the Redis command policy tests");

/** Milliseconds two clocks read on this machine may differ by, the test's own delays included. */
const CLOCK_TOLERANCE_MS = 2_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const b = (text: string): Buffer => Buffer.from(text, "latin1");
const argsOf = (words: readonly string[]): Buffer[] => words.map(b);

function encode(args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [b(`*${args.length}\r\n`)];
  for (const arg of args) parts.push(b(`$${arg.length}\r\n`), arg, b("\r\n"));
  return Buffer.concat(parts);
}

/** A RESP2 connection that answers each command with the raw bytes of its reply. */
class RedisConnection {
  private pending = Buffer.alloc(0);
  private readonly waiting: ((reply: Buffer) => void)[] = [];
  private readonly socket: net.Socket;
  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      for (;;) {
        const parsed = readResp2(this.pending);
        if (parsed === null) break;
        const reply = Buffer.from(this.pending.subarray(0, parsed.next));
        this.pending = this.pending.subarray(parsed.next);
        this.waiting.shift()?.(reply);
      }
    });
  }

  static open(port: number): Promise<RedisConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(new RedisConnection(socket)));
      socket.once("error", reject);
    });
  }

  send(args: readonly (string | Buffer)[]): Promise<Buffer> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(encode(args.map((arg) => (typeof arg === "string" ? b(arg) : arg))));
    });
  }

  async text(args: readonly (string | Buffer)[]): Promise<string> {
    return (await this.send(args)).toString("latin1");
  }

  close(): void {
    this.socket.destroy();
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await RedisConnection.open(port)).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe.skipIf(!REDIS)("Redis command policy against redis-server", () => {
  let server: ChildProcess | undefined;
  let dir = "";
  let port = 0;
  let table: RedisCommandTable;
  let redis: RedisConnection;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "apus-redis-policy-"));
    port = await freePort();
    server = spawn(
      REDIS_SERVER,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { cwd: dir, stdio: "ignore" },
    );
    await waitForPort(port, 10_000);
    table = await loadRedisCommandTable(port);
    redis = await RedisConnection.open(port);
  }, 20_000);

  afterAll(() => {
    redis?.close();
    server?.kill("SIGKILL");
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  describe("the command table", () => {
    it("holds commands, subcommands, flags, tips and key specs", () => {
      const get = table.commands.get("get");
      expect(get?.arity).toBe(2);
      expect(get?.flags.has("readonly")).toBe(true);
      expect([get?.firstKey, get?.lastKey, get?.keyStep]).toEqual([1, 1, 1]);
      expect(get?.aclCategories.has("@read")).toBe(true);
      expect(table.commands.get("object")?.subcommands).toContain("encoding");
      expect(table.commands.get("object|encoding")?.firstKey).toBe(2);
      expect(table.commands.get("time")?.tips.has("nondeterministic_output")).toBe(true);
      const zunionstore = table.commands.get("zunionstore");
      expect(zunionstore?.flags.has("movablekeys")).toBe(true);
      expect(zunionstore?.keySpecs[1]?.findKeys).toEqual({
        type: "keynum",
        keyNumIndex: 0,
        firstKey: 1,
        keyStep: 1,
      });
      expect(table.commands.get("xread")?.keySpecs[0]?.beginSearch).toEqual({
        type: "keyword",
        keyword: "STREAMS",
        startFrom: 1,
      });
    });

    it("rejects a port nothing listens on, and a reply that is not a table", async () => {
      const closed = await freePort();
      await expect(loadRedisCommandTable(closed)).rejects.toMatchObject({
        code: "ERR_REDIS_TABLE_CONNECT",
      });
      const error = readResp2(b("-NOAUTH Authentication required.\r\n"))!.value;
      expect(() => buildRedisCommandTable(error)).toThrow(RedisTableError);
      expect(() => buildRedisCommandTable(error)).toThrow(/NOAUTH/);
    });

    it("reads RESP2 split anywhere: an incomplete reply is null", () => {
      const whole = b("*2\r\n$3\r\nabc\r\n*1\r\n:-7\r\n");
      for (let cut = 0; cut < whole.length; cut++) {
        expect(readResp2(whole.subarray(0, cut))).toBeNull();
      }
      expect(readResp2(whole)).toEqual({ value: [b("abc"), [-7]], next: whole.length });
    });
  });

  describe("keysOf", () => {
    // [command, expected keys or "all", whether COMMAND GETKEYS agrees]
    const CASES: [string[], string[] | "all", boolean][] = [
      [["GET", "a"], ["a"], true],
      [["MSET", "a", "1", "b", "2"], ["a", "b"], true],
      [["DEL", "a", "b", "c"], ["a", "b", "c"], true],
      [["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"], ["d", "a", "b"], true],
      [["EVAL", "return 1", "2", "a", "b", "x"], ["a", "b"], true],
      [["EVAL", "return 1", "0"], [], false],
      [["XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"], ["s1", "s2"], true],
      [["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"], ["s1"], true],
      [["BLMPOP", "0", "2", "l1", "l2", "LEFT"], ["l1", "l2"], true],
      [["LMOVE", "a", "b", "LEFT", "RIGHT"], ["a", "b"], true],
      [["BLPOP", "a", "b", "0"], ["a", "b"], true],
      [["OBJECT", "ENCODING", "a"], ["a"], true],
      [["XINFO", "STREAM", "s"], ["s"], true],
      [["SORT", "a", "LIMIT", "0", "1", "STORE", "d"], ["a", "d"], true],
      [["SORT", "a", "BY", "nosort", "GET", "#"], ["a"], true],
      [["SORT", "a", "BY", "w_*"], "all", false],
      [["SORT", "a", "GET", "h_*->f"], "all", false],
      [["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"], ["g", "d"], true],
      [["MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"], "all", false],
      [["FLUSHALL"], "all", false],
      [["SELECT", "1"], "all", false],
      [["DBSIZE"], "all", false],
      [["KEYS", "*"], "all", false],
      [["SCAN", "0"], "all", false],
      [["RANDOMKEY"], "all", false],
      [["SWAPDB", "0", "1"], "all", false],
      [["EXEC"], "all", false],
      [["PUBLISH", "c", "m"], "all", false],
      [["SPUBLISH", "c", "m"], "all", false],
      [["PING"], [], false],
      [["TIME"], [], false],
      [["CLIENT", "ID"], [], false],
      [["NOSUCH", "a"], "all", false],
      [["OBJECT", "NOSUCH", "a"], "all", false],
      [["GET"], [], false],
    ];

    it.each(CASES)("%j → %j", async (words, expected, oracle) => {
      const keys = keysOf(table, argsOf(words));
      expect(keys === "all" ? "all" : keys.map((key) => key.toString("latin1"))).toEqual(expected);
      if (oracle && expected !== "all") {
        const reply = readResp2(await redis.send(["COMMAND", "GETKEYS", ...words]))!.value;
        expect((reply as Buffer[]).map((key) => key.toString("latin1"))).toEqual(expected);
      }
    });
  });

  describe("classify", () => {
    type Expected = "replicate" | "divergent" | "rewrite" | "refuse";
    // [command, expected policy, blocking]
    const CASES: [string[], Expected, boolean][] = [
      [["GET", "a"], "replicate", false],
      [["SET", "a", "v"], "replicate", false],
      [["SET", "a", "v", "EX", "10"], "rewrite", false],
      [["SET", "a", "v", "EXAT", "10"], "replicate", false],
      [["SET", "a", "v", "EX", "abc"], "replicate", false],
      [["SETEX", "a", "10", "v"], "rewrite", false],
      [["PSETEX", "a", "10", "v"], "rewrite", false],
      [["EXPIRE", "a", "10"], "rewrite", false],
      [["PEXPIRE", "a", "10"], "rewrite", false],
      [["EXPIREAT", "a", "10"], "replicate", false],
      [["GETEX", "a", "PX", "10"], "rewrite", false],
      [["GETEX", "a", "PERSIST"], "replicate", false],
      [["RESTORE", "a", "10", "p"], "rewrite", false],
      [["RESTORE", "a", "0", "p"], "replicate", false],
      [["RESTORE", "a", "10", "p", "ABSTTL"], "replicate", false],
      [["XADD", "s", "*", "f", "v"], "rewrite", false],
      [["XADD", "s", "MAXLEN", "~", "10", "*", "f", "v"], "rewrite", false],
      [["XADD", "s", "1-1", "f", "v"], "replicate", false],
      [["TIME"], "rewrite", false],
      [["TIME", "x"], "replicate", false],
      [["TTL", "a"], "divergent", false],
      [["PTTL", "a"], "divergent", false],
      [["EXPIRETIME", "a"], "replicate", false],
      [["RANDOMKEY"], "refuse", false],
      [["SPOP", "s"], "refuse", false],
      [["SRANDMEMBER", "s"], "refuse", false],
      [["HRANDFIELD", "h"], "refuse", false],
      [["ZRANDMEMBER", "z"], "refuse", false],
      [["EVAL", "return 1", "0"], "refuse", false],
      [["EVALSHA", "abc", "0"], "refuse", false],
      [["FCALL", "f", "0"], "refuse", false],
      [["SCRIPT", "LOAD", "return 1"], "refuse", false],
      [["FUNCTION", "LIST"], "refuse", false],
      [["CONFIG", "SET", "maxmemory", "1"], "refuse", false],
      [["CONFIG", "GET", "maxmemory"], "divergent", false],
      [["SHUTDOWN"], "refuse", false],
      [["SAVE"], "refuse", false],
      [["BGSAVE"], "refuse", false],
      [["BGREWRITEAOF"], "refuse", false],
      [["REPLICAOF", "h", "1"], "refuse", false],
      [["SLAVEOF", "h", "1"], "refuse", false],
      [["FAILOVER"], "refuse", false],
      [["CLUSTER", "INFO"], "refuse", false],
      [["SYNC"], "refuse", false],
      [["PSYNC", "x", "1"], "refuse", false],
      [["MONITOR"], "refuse", false],
      [["SUBSCRIBE", "c"], "replicate", false],
      [["DEBUG", "SLEEP", "0"], "refuse", false],
      [["DEBUG", "DIGEST"], "divergent", false],
      [["DEBUG", "DIGEST-VALUE", "a"], "divergent", false],
      [["SWAPDB", "0", "1"], "refuse", false],
      [["MODULE", "LIST"], "refuse", false],
      [["ACL", "SETUSER", "u"], "refuse", false],
      [["ACL", "GENPASS"], "refuse", false],
      [["ACL", "WHOAMI"], "replicate", false],
      [["ACL", "LIST"], "replicate", false],
      [["CLIENT", "KILL", "ID", "1"], "refuse", false],
      [["CLIENT", "PAUSE", "10"], "refuse", false],
      [["CLIENT", "NO-EVICT", "on"], "refuse", false],
      [["CLIENT", "REPLY", "OFF"], "refuse", false],
      [["CLIENT", "SETNAME", "x"], "replicate", false],
      [["CLIENT", "ID"], "divergent", false],
      [["CLIENT", "INFO"], "divergent", false],
      [["CLIENT", "LIST"], "divergent", false],
      [["MIGRATE", "h", "1", "a", "0", "5"], "refuse", false],
      [["INFO"], "divergent", false],
      [["MEMORY", "USAGE", "a"], "divergent", false],
      [["OBJECT", "ENCODING", "a"], "divergent", false],
      [["LASTSAVE"], "divergent", false],
      [["COMMAND", "COUNT"], "divergent", false],
      [["DBSIZE"], "divergent", false],
      [["HELLO", "3"], "divergent", false],
      [["HELLO", "2"], "divergent", false],
      [["PING"], "replicate", false],
      [["ECHO", "x"], "replicate", false],
      [["SCAN", "0"], "divergent", false],
      [["KEYS", "*"], "divergent", false],
      [["SMEMBERS", "s"], "divergent", false],
      [["SORT", "s", "BY", "nosort"], "divergent", false],
      [["SORT", "s", "BY", "nosort", "STORE", "d"], "replicate", false],
      [["SORT", "s"], "replicate", false],
      [["XINFO", "STREAM", "s", "FULL"], "divergent", false],
      [["XINFO", "STREAM", "s"], "replicate", false],
      [["XCLAIM", "s", "g", "c", "0", "1-1"], "replicate", false],
      [["XCLAIM", "s", "g", "c", "1000", "1-1"], "refuse", false],
      [["XAUTOCLAIM", "s", "g", "c", "1000", "0"], "refuse", false],
      [["XTRIM", "s", "MAXLEN", "~", "10"], "replicate", false],
      [["FLUSHALL"], "replicate", false],
      [["NOSUCH", "a"], "replicate", false],
      [["GET"], "replicate", false],
      [["BLPOP", "a", "0"], "replicate", true],
      [["BRPOP", "a", "0"], "replicate", true],
      [["BLMOVE", "a", "b", "LEFT", "LEFT", "0"], "replicate", true],
      [["BRPOPLPUSH", "a", "b", "0"], "replicate", true],
      [["BZPOPMIN", "z", "0"], "replicate", true],
      [["BZPOPMAX", "z", "0"], "replicate", true],
      [["BLMPOP", "0", "1", "a", "LEFT"], "replicate", true],
      [["BZMPOP", "0", "1", "z", "MIN"], "replicate", true],
      [["XREAD", "STREAMS", "s", "0"], "replicate", false],
      [["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"], "replicate", true],
      [["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"], "replicate", false],
      [["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"], "replicate", true],
      [["WAIT", "0", "0"], "refuse", true],
    ];

    it.each(CASES)("%j → %s", (words, expected, blocking) => {
      const result = classify(table, argsOf(words));
      const { policy } = result;
      const kind =
        policy.kind === "replicate"
          ? policy.divergentOutput
            ? "divergent"
            : "replicate"
          : policy.kind;
      expect(kind).toBe(expected);
      expect(result.blocking).toBe(blocking);
      if (policy.kind === "refuse") {
        expect(policy.error).toMatch(/^-ERR [^\r\n]+ is refused in replicated mode: [^\r\n]+\r\n$/);
      }
    });

    it("names the command and says what to do instead", () => {
      const randomkey = classify(table, argsOf(["RANDOMKEY"])).policy;
      expect(randomkey).toEqual({
        kind: "refuse",
        error:
          "-ERR RANDOMKEY is refused in replicated mode: its result is random, so it would differ between copies; use SCAN\r\n",
      });
      const kill = classify(table, argsOf(["client", "kill", "id", "1"]));
      expect(kill.name).toBe("client|kill");
      expect(kill.policy.kind === "refuse" && kill.policy.error).toMatch(/^-ERR CLIENT KILL /);
    });

    it("refuses an admin command it has no rule for, and follows the tips", () => {
      const get = table.commands.get("get")!;
      const commands = new Map(table.commands);
      commands.set("newadmin", { ...get, name: "newadmin", arity: -1, flags: new Set(["admin"]) });
      commands.set("newtipped", {
        ...get,
        name: "newtipped",
        tips: new Set(["nondeterministic_output"]),
      });
      const extended: RedisCommandTable = { commands };
      expect(classify(extended, argsOf(["NEWADMIN"])).policy.kind).toBe("refuse");
      expect(classify(extended, argsOf(["NEWTIPPED", "a"])).policy).toEqual({
        kind: "replicate",
        divergentOutput: true,
      });
    });
  });

  describe("rewriteWithTime: the rewrite answers as the original does", () => {
    interface Case {
      /** Commands that prepare the key, `{k}` standing for it. */
      readonly setup: readonly string[][];
      readonly command: readonly string[];
    }
    const str = [["SET", "{k}", "old"]];
    const list = [["RPUSH", "{k}", "x"]];
    const withTtl = [["SET", "{k}", "old", "PX", "500000"]];
    const CASES: Case[] = [
      { setup: str, command: ["EXPIRE", "{k}", "100"] },
      { setup: withTtl, command: ["EXPIRE", "{k}", "100", "NX"] },
      { setup: withTtl, command: ["expire", "{k}", "1000", "GT"] },
      { setup: str, command: ["EXPIRE", "{k}", "100", "GT"] },
      { setup: str, command: ["EXPIRE", "{k}", "100", "LT"] },
      { setup: [], command: ["EXPIRE", "{k}", "100"] },
      { setup: str, command: ["EXPIRE", "{k}", "-5"] },
      { setup: str, command: ["EXPIRE", "{k}", "0"] },
      { setup: str, command: ["EXPIRE", "{k}", "abc"] },
      { setup: str, command: ["EXPIRE", "{k}", "01"] },
      { setup: str, command: ["EXPIRE", "{k}", "100", "BOGUS"] },
      { setup: str, command: ["EXPIRE", "{k}", "100", "NX", "XX"] },
      { setup: str, command: ["EXPIRE", "{k}", "9223372036854775"] },
      { setup: str, command: ["EXPIRE", "{k}", "9223372036854776"] },
      { setup: str, command: ["EXPIRE", "{k}", "-9223372036854775"] },
      { setup: str, command: ["PEXPIRE", "{k}", "100000"] },
      { setup: str, command: ["PEXPIRE", "{k}", "-1"] },
      { setup: str, command: ["PEXPIRE", "{k}", "9223372036854775000"] },
      { setup: str, command: ["PEXPIRE", "{k}", "-9223372036854775808"] },
      { setup: str, command: ["SETEX", "{k}", "100", "v"] },
      { setup: list, command: ["SETEX", "{k}", "100", "v"] },
      { setup: str, command: ["SETEX", "{k}", "0", "v"] },
      { setup: str, command: ["SETEX", "{k}", "-1", "v"] },
      { setup: str, command: ["SETEX", "{k}", "abc", "v"] },
      { setup: str, command: ["SETEX", "{k}", "9223372036854775", "v"] },
      { setup: str, command: ["SETEX", "{k}", "9223372036854776", "v"] },
      { setup: [], command: ["PSETEX", "{k}", "100000", "v"] },
      { setup: [], command: ["PSETEX", "{k}", "9223372036854775000", "v"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "100"] },
      { setup: [], command: ["SET", "{k}", "v", "px", "100000"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "100", "EX", "200"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "junk", "EX", "200"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "100", "PX", "5"] },
      { setup: [], command: ["SET", "{k}", "v", "KEEPTTL", "EX", "100"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "100", "EXAT", "5"] },
      { setup: str, command: ["SET", "{k}", "v", "NX", "EX", "100"] },
      { setup: [], command: ["SET", "{k}", "v", "XX", "EX", "100"] },
      { setup: str, command: ["SET", "{k}", "v", "EX", "100", "GET"] },
      { setup: list, command: ["SET", "{k}", "v", "GET", "EX", "100"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "abc"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "0"] },
      { setup: [], command: ["SET", "{k}", "v", "EX"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "NX"] },
      { setup: [], command: ["SET", "{k}", "v", "EX", "9223372036854775"] },
      { setup: str, command: ["SET", "{k}", "v", "GET", "PX", "9223372036854775000"] },
      { setup: [], command: ["SET", "{k}", "v", "ex\u0000junk", "100"] },
      { setup: str, command: ["GETEX", "{k}", "EX", "100"] },
      { setup: str, command: ["GETEX", "{k}", "PX", "100000"] },
      { setup: [], command: ["GETEX", "{k}", "EX", "100"] },
      { setup: list, command: ["GETEX", "{k}", "EX", "100"] },
      { setup: str, command: ["GETEX", "{k}", "EX", "-5"] },
      { setup: [], command: ["GETEX", "{k}", "EX", "-5"] },
      { setup: str, command: ["GETEX", "{k}", "EX", "9223372036854775"] },
      { setup: [], command: ["GETEX", "{k}", "EX", "9223372036854775"] },
      { setup: str, command: ["GETEX", "{k}", "EX", "100", "PERSIST"] },
      { setup: str, command: ["GETEX", "{k}", "EX", "100", "EX", "200"] },
      { setup: [], command: ["RESTORE", "{k}", "100000", "{payload}"] },
      { setup: str, command: ["RESTORE", "{k}", "100000", "{payload}"] },
      { setup: str, command: ["RESTORE", "{k}", "100000", "{payload}", "REPLACE"] },
      { setup: [], command: ["RESTORE", "{k}", "100000", "{payload}", "IDLETIME", "5"] },
      { setup: [], command: ["RESTORE", "{k}", "100000", "{payload}", "IDLETIME"] },
      { setup: [], command: ["RESTORE", "{k}", "-5", "{payload}"] },
      { setup: str, command: ["RESTORE", "{k}", "9223372036854775000", "{payload}", "REPLACE"] },
    ];

    let serial = 0;
    async function prepare(key: string, setup: readonly string[][]): Promise<void> {
      await redis.send(["DEL", key]);
      for (const command of setup)
        await redis.send(command.map((word) => word.replace("{k}", key)));
    }

    const NAMED = CASES.map((c): [string, Case] => [JSON.stringify(c.command), c]);
    it.each(NAMED)("%s", async (_name, { setup, command }) => {
      serial++;
      const payload = readResp2(await redis.send(["DUMP", "policy:payload"]))!.value as Buffer;
      const fill = (key: string): Buffer[] =>
        command.map((word) => (word === "{payload}" ? payload : b(word.replace("{k}", key))));
      const original = `policy:original:${serial}`;
      const rewritten = `policy:rewritten:${serial}`;
      await prepare(original, setup);
      await prepare(rewritten, setup);
      const nowMs = Date.now();
      const rewrite = rewriteWithTime(fill(rewritten), nowMs);
      expect(rewrite.kind).toBe("command");
      if (rewrite.kind !== "command") return;
      const originalReply = await redis.send(fill(original));
      const rewrittenReply = await redis.send(rewrite.args);
      expect(rewrittenReply.toString("latin1")).toBe(originalReply.toString("latin1"));
      expect(await redis.text(["TYPE", rewritten])).toBe(await redis.text(["TYPE", original]));
      expect(await redis.text(["GET", rewritten])).toBe(await redis.text(["GET", original]));
      const ttl = async (key: string): Promise<number> =>
        readResp2(await redis.send(["PTTL", key]))!.value as number;
      const [ttlOriginal, ttlRewritten] = [await ttl(original), await ttl(rewritten)];
      if (ttlOriginal < 0) expect(ttlRewritten).toBe(ttlOriginal);
      else expect(Math.abs(ttlRewritten - ttlOriginal)).toBeLessThan(CLOCK_TOLERANCE_MS);
    });

    beforeAll(async () => {
      await redis.send(["RPUSH", "policy:payload", "a", "b"]);
    });

    it("rewrites an existing ttl-bearing command into an absolute one", () => {
      const at = (words: string[]): string[] => {
        const result = rewriteWithTime(argsOf(words), 1_000_000);
        return result.kind === "command" ? result.args.map((arg) => arg.toString("latin1")) : [];
      };
      expect(at(["EXPIRE", "k", "10", "NX"])).toEqual(["PEXPIREAT", "k", "1010000", "NX"]);
      expect(at(["PEXPIRE", "k", "10"])).toEqual(["PEXPIREAT", "k", "1000010"]);
      expect(at(["SETEX", "k", "10", "v"])).toEqual(["SET", "k", "v", "PXAT", "1010000"]);
      expect(at(["PSETEX", "k", "10", "v"])).toEqual(["SET", "k", "v", "PXAT", "1000010"]);
      expect(at(["SET", "k", "v", "NX", "EX", "1", "EX", "10", "GET"])).toEqual([
        "SET",
        "k",
        "v",
        "NX",
        "GET",
        "PXAT",
        "1010000",
      ]);
      expect(at(["GETEX", "k", "PX", "10"])).toEqual(["GETEX", "k", "PXAT", "1000010"]);
      expect(at(["RESTORE", "k", "10", "p", "REPLACE"])).toEqual([
        "RESTORE",
        "k",
        "1000010",
        "p",
        "ABSTTL",
        "REPLACE",
      ]);
      expect(at(["XADD", "s", "NOMKSTREAM", "MINID", "=", "0", "*", "f", "*"])).toEqual([
        "XADD",
        "s",
        "NOMKSTREAM",
        "MINID",
        "=",
        "0",
        "1000000-*",
        "f",
        "*",
      ]);
      expect(at(["GET", "k"])).toEqual(["GET", "k"]);
    });

    it("XADD *: the rewritten ID is the leader's time with the same sequence", async () => {
      for (const options of [[], ["MAXLEN", "~", "10"], ["NOMKSTREAM"]]) {
        serial++;
        const original = `policy:original:${serial}`;
        const rewritten = `policy:rewritten:${serial}`;
        const words = (key: string): string[] => ["XADD", key, ...options, "*", "f", "v"];
        const nowMs = Date.now();
        const rewrite = rewriteWithTime(argsOf(words(rewritten)), nowMs);
        expect(rewrite.kind).toBe("command");
        if (rewrite.kind !== "command") return;
        const originalReply = await redis.text(words(original));
        const rewrittenReply = await redis.text(rewrite.args);
        if (options[0] === "NOMKSTREAM") {
          expect(rewrittenReply).toBe(originalReply);
          continue;
        }
        const id = /^\$\d+\r\n(\d+)-(\d+)\r\n$/;
        const [, originalMs, originalSeq] = id.exec(originalReply) ?? [];
        const [, rewrittenMs, rewrittenSeq] = id.exec(rewrittenReply) ?? [];
        expect(rewrittenMs).toBe(String(nowMs));
        expect(rewrittenSeq).toBe(originalSeq);
        expect(Math.abs(Number(originalMs) - nowMs)).toBeLessThan(CLOCK_TOLERANCE_MS);
      }
    });

    it("TIME is answered from the log's time stamp, shaped as Redis answers", async () => {
      const nowMs = Date.now();
      const rewrite = rewriteWithTime(argsOf(["TIME"]), nowMs);
      expect(rewrite).toEqual({ kind: "reply", reply: timeReply(nowMs) });
      const shape = /^\*2\r\n\$(\d+)\r\n(\d+)\r\n\$(\d+)\r\n(\d+)\r\n$/;
      const [, , sec, , usec] = shape.exec(await redis.text(["TIME"])) ?? [];
      const [, , ourSec, , ourUsec] = shape.exec(timeReply(nowMs).toString("latin1")) ?? [];
      const serverMs = Number(sec) * 1000 + Number(usec) / 1000;
      expect(Math.abs(serverMs - (Number(ourSec) * 1000 + Number(ourUsec) / 1000))).toBeLessThan(
        CLOCK_TOLERANCE_MS,
      );
      expect(timeReply(1_700_000_123_456).toString("latin1")).toBe(
        "*2\r\n$10\r\n1700000123\r\n$6\r\n456000\r\n",
      );
      expect(timeReply(1_700_000_123_000).toString("latin1")).toBe(
        "*2\r\n$10\r\n1700000123\r\n$1\r\n0\r\n",
      );
    });
  });

  describe("commutes", () => {
    const CASES: [string[], string[], boolean][] = [
      [["GET", "a"], ["SET", "b", "v"], true],
      [["GET", "a"], ["SET", "a", "v"], false],
      [["MSET", "a", "1", "b", "2"], ["DEL", "c", "b"], false],
      [["MSET", "a", "1", "b", "2"], ["DEL", "c", "d"], true],
      [["LMOVE", "a", "b", "LEFT", "LEFT"], ["GET", "b"], false],
      [["ZUNIONSTORE", "d", "2", "a", "b"], ["GET", "x"], true],
      [["ZUNIONSTORE", "d", "2", "a", "b"], ["GET", "d"], false],
      [["BLPOP", "a", "0"], ["GET", "b"], false],
      [["XREAD", "STREAMS", "s", "0"], ["GET", "t"], true],
      [["XREAD", "BLOCK", "0", "STREAMS", "s", "0"], ["GET", "t"], false],
      [["GET", "a"], ["FLUSHALL"], false],
      [["GET", "a"], ["DBSIZE"], false],
      [["GET", "a"], ["KEYS", "*"], false],
      [["GET", "a"], ["SCAN", "0"], false],
      [["GET", "a"], ["SELECT", "1"], false],
      [["GET", "a"], ["PUBLISH", "a", "m"], false],
      [["GET", "a"], ["NOSUCH", "b"], false],
      [["GET", "a"], ["SORT", "b", "BY", "w_*"], false],
      [["PING"], ["GET", "a"], true],
      [["PING"], ["PING"], true],
      [["TIME"], ["SET", "a", "v"], true],
    ];

    it.each(CASES)("%j with %j → %s", (a, c, expected) => {
      const left = classify(table, argsOf(a));
      const right = classify(table, argsOf(c));
      expect(commutes(left, right)).toBe(expected);
      expect(commutes(right, left)).toBe(expected);
    });
  });
});

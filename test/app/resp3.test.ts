/**
 * toResp3 against a real redis-server 7.0.15: every command of test/app/compat/resp3.ts is sent
 * on a RESP2 connection and on a RESP3 one (HELLO 3), and toResp3(command, RESP2 reply) must be
 * the RESP3 reply byte for byte. This checks the conversion alone, without the store. Skipped,
 * with a message, when redis-server is absent. Below, unit tests: malformed replies come back
 * unchanged, and the shapes' edge cases.
 */
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  pushMessage,
  RESP3_SHAPED_COMMANDS,
  resp3Null,
  toResp3,
  toResp3Exec,
} from "../../src/app/resp3.ts";
import { COMMANDS, type Masked, type Resp3Case } from "./compat/resp3.ts";
import { encode, hasRedis } from "./redis-command-list.ts";
import { type RedisServer, startRedisServer } from "./redis-server-process.ts";

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the RESP3 comparison");

const b = (text: string): Buffer => Buffer.from(text, "latin1");
const args = (...parts: string[]): Buffer[] => parts.map(b);
const convert = (command: string, reply: string): string =>
  toResp3(command.split(" ").map(b), b(reply)).toString("latin1");

/** Length of the first complete RESP2 or RESP3 reply in `buf` from `start`, or -1. */
function replyLength(buf: Buffer, start = 0): number {
  const lineEnd = buf.indexOf("\r\n", start);
  if (lineEnd === -1) return -1;
  const type = String.fromCharCode(buf[start]!);
  if ("+-:_,#(".includes(type)) return lineEnd + 2 - start;
  const n = Number(buf.toString("latin1", start + 1, lineEnd));
  if (type === "$" || type === "=" || type === "!") {
    if (n < 0) return lineEnd + 2 - start;
    return buf.length >= lineEnd + 2 + n + 2 ? lineEnd + 2 + n + 2 - start : -1;
  }
  const items = n < 0 ? 0 : type === "%" || type === "|" ? 2 * n : n;
  let offset = lineEnd + 2;
  for (let i = 0; i < items; i++) {
    const length = replyLength(buf, offset);
    if (length === -1) return -1;
    offset += length;
  }
  return offset - start;
}

/** A RESP2 or RESP3 reply as a tree: `[type, …items]` for aggregates, `type + text` for the
 * rest; `mask` replaces numbers (integers, doubles) or every scalar's text with `?`. */
type Tree = string | Tree[];
function tree(buf: Buffer, mask: Masked["mask"] | "none"): Tree {
  let pos = 0;
  const read = (): Tree => {
    const type = String.fromCharCode(buf[pos]!);
    const lineEnd = buf.indexOf("\r\n", pos);
    const line = buf.toString("latin1", pos + 1, lineEnd);
    pos = lineEnd + 2;
    if (type === "$" || type === "=" || type === "!") {
      const n = Number(line);
      if (n < 0) return `${type}${line}`;
      const text = buf.toString("latin1", pos, pos + n);
      pos += n + 2;
      return mask === "scalars" ? `${type}?` : `${type}${text}`;
    }
    if ("*~>%|".includes(type)) {
      const n = Number(line);
      const items: Tree[] = [type];
      for (let i = 0; i < (type === "%" || type === "|" ? 2 * n : n); i++) items.push(read());
      return items;
    }
    const masked = mask === "scalars" || (mask === "numbers" && (type === ":" || type === ","));
    return masked && type !== "_" ? `${type}?` : `${type}${line}`;
  };
  const out = read();
  expect(pos).toBe(buf.length);
  return out;
}

/** One client connection that reads whole replies. */
class Connection {
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

  static async open(port: number): Promise<Connection> {
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.once("error", reject);
        });
        return new Connection(socket);
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Sends `command` and returns its `replyCount` replies, concatenated. */
  async send(command: readonly string[], replyCount = 1): Promise<Buffer> {
    this.socket.write(encode(command));
    const replies: Buffer[] = [];
    while (replies.length < replyCount) replies.push(await this.read());
    return Buffer.concat(replies);
  }

  async read(): Promise<Buffer> {
    for (;;) {
      const length = replyLength(this.pending);
      if (length !== -1) {
        const reply = this.pending.subarray(0, length);
        this.pending = this.pending.subarray(length);
        return reply;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** How many replies a (un)subscribe command gets: one per channel, or per subscription dropped
 * (at least one) when it names none. Tracks the connection's subscriptions. */
class Subscriptions {
  private readonly kinds = new Map<string, Set<string>>([
    ["", new Set()],
    ["p", new Set()],
    ["s", new Set()],
  ]);

  replyCount(command: readonly string[]): number {
    const name = command[0]!.toLowerCase();
    const match = /^(p|s)?(un)?subscribe$/.exec(name);
    if (match === null) return 1;
    const set = this.kinds.get(match[1] ?? "")!;
    const names = command.slice(1);
    if (match[2] === undefined) {
      for (const n of names) set.add(n);
      return names.length;
    }
    if (names.length > 0) {
      for (const n of names) set.delete(n);
      return names.length;
    }
    const count = Math.max(1, set.size);
    set.clear();
    return count;
  }
}

const FORBIDDEN = new Set(["reset", "select", "swapdb", "move", "flushall"]);

describe.skipIf(!REDIS)("toResp3 matches redis-server's RESP3 replies", () => {
  let server: RedisServer | undefined;
  let resp2: Connection;
  let resp3: Connection;
  let port = 0;

  beforeAll(async () => {
    server = await startRedisServer([
      ...["--save", "", "--appendonly", "no"],
      // DEBUG SLEEP makes a latency event for LATENCY GRAPH and DOCTOR.
      ...["--enable-debug-command", "yes", "--latency-monitor-threshold", "1"],
      // Commands flagged allow-busy (FUNCTION STATS) run while a function runs past 10 ms.
      ...["--busy-reply-threshold", "10"],
    ]);
    port = server.port;
    resp2 = await Connection.open(port);
    resp3 = await Connection.open(port);
    expect((await resp3.send(["HELLO", "3"]))[0]).toBe("%".charCodeAt(0));
    await resp3.send(["SELECT", "1"]);
    await resp2.send(["FLUSHALL"]);
    await resp2.send(["FUNCTION", "FLUSH"]);
  });

  afterAll(() => {
    resp2?.close();
    resp3?.close();
    server?.stop();
  });

  it("converts every command of the list", { timeout: 60_000 }, async () => {
    const mismatches: string[] = [];
    const subscriptions = new Subscriptions();
    let queued: Buffer[][] | undefined;
    for (const entry of COMMANDS as readonly Resp3Case[]) {
      const masked = "mask" in entry ? entry : undefined;
      const command = masked?.command ?? (entry as readonly string[]);
      const name = command[0]!.toLowerCase();
      expect(FORBIDDEN.has(name) || (name === "hello" && command.length > 1)).toBe(false);
      const replyCount = subscriptions.replyCount(command);
      const two = await resp2.send(command, replyCount);
      const three = await resp3.send(command, replyCount);
      const argv = command.map(b);
      let converted: Buffer;
      if (name === "exec" && queued !== undefined) converted = toResp3Exec(queued, two);
      else converted = toResp3(argv, two);
      if (name === "multi") queued = [];
      else if (name === "exec" || name === "discard") queued = undefined;
      else if (queued !== undefined && two.toString("latin1") === "+QUEUED\r\n") queued.push(argv);
      const same =
        masked === undefined
          ? converted.equals(three)
          : JSON.stringify(tree(converted, masked.mask)) ===
            JSON.stringify(tree(three, masked.mask));
      if (!same) {
        // From a little before the first byte where the conversion goes wrong.
        let from = 0;
        while (from < converted.length && converted[from] === three[from]) from++;
        from = Math.max(0, from - 200);
        const show = (reply: Buffer) =>
          JSON.stringify(reply.toString("latin1").slice(from, from + 600));
        mismatches.push(
          `${command.join(" ")} (from byte ${from}):\n  resp2     ${show(two)}\n  resp3     ${show(three)}\n  converted ${show(converted)}`,
        );
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("every command in the table is in the list", () => {
    const listed = new Set<string>();
    for (const entry of COMMANDS) {
      const command = "mask" in entry ? entry.command : (entry as readonly string[]);
      listed.add(command[0]!.toLowerCase());
      if (command.length > 1) listed.add(`${command[0]}|${command[1]}`.toLowerCase());
    }
    expect(RESP3_SHAPED_COMMANDS.filter((name) => !listed.has(name))).toEqual([]);
  });

  it("converts FUNCTION STATS while a function runs (running_script is a map)", async () => {
    const runner = await Connection.open(port);
    try {
      const spin =
        "#!lua name=spinlib\n" +
        "redis.register_function{function_name='spin', flags={'no-writes'}, callback=function()\n" +
        "  local t0 = redis.call('TIME')\n" +
        "  repeat local t = redis.call('TIME')\n" +
        "  until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 400000\n" +
        "  return 1\n" +
        "end}";
      expect((await runner.send(["FUNCTION", "LOAD", "REPLACE", spin])).toString()).toBe(
        "$7\r\nspinlib\r\n",
      );
      const running = runner.send(["FCALL", "spin", "0"]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const two = await resp2.send(["FUNCTION", "STATS"]);
      const three = await resp3.send(["FUNCTION", "STATS"]);
      expect(three.toString("latin1")).toContain("running_script\r\n%3\r\n");
      const converted = toResp3(args("FUNCTION", "STATS"), two);
      expect(tree(converted, "numbers")).toEqual(tree(three, "numbers"));
      expect((await running).toString()).toBe(":1\r\n");
      await runner.send(["FUNCTION", "FLUSH"]);
    } finally {
      runner.close();
    }
  });

  it("pushMessage builds the pushes a RESP3 subscriber receives", async () => {
    const subscriber = await Connection.open(port);
    const publisher = await Connection.open(port);
    try {
      await subscriber.send(["HELLO", "3"]);
      const subscribed = await subscriber.send(["SUBSCRIBE", "news"]);
      expect(subscribed).toEqual(pushMessage([b("subscribe"), b("news"), 1]));
      const patterned = await subscriber.send(["PSUBSCRIBE", "n*"]);
      expect(patterned).toEqual(pushMessage([b("psubscribe"), b("n*"), 2]));
      const sharded = await subscriber.send(["SSUBSCRIBE", "shard"]);
      expect(sharded).toEqual(pushMessage([b("ssubscribe"), b("shard"), 1]));
      const payload = Buffer.from([0, 13, 10, 255, 0x24]);
      await publisher.send(["PUBLISH", "news", payload.toString("latin1")]);
      expect(await subscriber.read()).toEqual(pushMessage([b("message"), b("news"), payload]));
      expect(await subscriber.read()).toEqual(
        pushMessage([b("pmessage"), b("n*"), b("news"), payload]),
      );
      await publisher.send(["SPUBLISH", "shard", ""]);
      expect(await subscriber.read()).toEqual(pushMessage([b("smessage"), b("shard"), b("")]));
      expect(await subscriber.send(["UNSUBSCRIBE"])).toEqual(
        pushMessage([b("unsubscribe"), b("news"), 1]),
      );
      expect(await subscriber.send(["UNSUBSCRIBE"])).toEqual(
        pushMessage([b("unsubscribe"), null, 1]),
      );
    } finally {
      subscriber.close();
      publisher.close();
    }
  });
});

describe("toResp3", () => {
  it("turns null bulks and null arrays into _ at any depth, for any command", () => {
    expect(convert("GET k", "$-1\r\n")).toBe("_\r\n");
    expect(convert("BLPOP k 1", "*-1\r\n")).toBe("_\r\n");
    expect(convert("MGET a b c", "*3\r\n$-1\r\n$1\r\nx\r\n*1\r\n*-1\r\n")).toBe(
      "*3\r\n_\r\n$1\r\nx\r\n*1\r\n_\r\n",
    );
    expect(convert("NOSUCH", "*2\r\n*2\r\n$-1\r\n:1\r\n$-1\r\n")).toBe(
      "*2\r\n*2\r\n_\r\n:1\r\n_\r\n",
    );
    expect(toResp3([], b("$-1\r\n"))).toEqual(resp3Null);
  });

  it("returns the reply itself when nothing changes", () => {
    for (const reply of ["+OK\r\n", "-ERR x\r\n", ":-5\r\n", "$3\r\na$-\r\n", "*1\r\n$0\r\n\r\n"]) {
      const buffer = b(reply);
      expect(toResp3(args("GET", "k"), buffer)).toBe(buffer);
    }
    const nested = b("*2\r\n*1\r\n$4\r\n$-1\r\n:0\r\n");
    expect(toResp3(args("LRANGE", "l", "0", "-1"), nested)).toBe(nested);
  });

  it("leaves a bulk's bytes alone even when they look like a null", () => {
    expect(convert("GET k", "$5\r\n$-1\r\n\r\n")).toBe("$5\r\n$-1\r\n\r\n");
    expect(convert("MGET a", "*1\r\n$5\r\n*-1\r\n\r\n")).toBe("*1\r\n$5\r\n*-1\r\n\r\n");
  });

  it("passes errors through whatever the command's shape", () => {
    for (const command of ["HGETALL h", "ZSCORE z m", "SMEMBERS s", "XREAD STREAMS s 0", "INFO"]) {
      expect(convert(command, "-WRONGTYPE x\r\n")).toBe("-WRONGTYPE x\r\n");
    }
  });

  it("converts each of several replies back to back", () => {
    expect(
      convert(
        "SUBSCRIBE a b",
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
      ),
    ).toBe(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    expect(convert("GET k", "$-1\r\n$-1\r\n")).toBe("_\r\n_\r\n");
  });

  it("keeps an array whose length does not fit a map or pairs", () => {
    expect(convert("HGETALL h", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n")).toBe(
      "*3\r\n$1\r\na\r\n$1\r\nb\r\n_\r\n",
    );
    expect(convert("ZRANGE z 0 -1 WITHSCORES", "*1\r\n$1\r\na\r\n")).toBe("*1\r\n$1\r\na\r\n");
    expect(convert("HGETALL h", "*2\r\n:1\r\n*-1\r\n")).toBe("%1\r\n:1\r\n_\r\n");
  });

  it("makes a double of a one-line bulk only", () => {
    expect(convert("ZSCORE z m", "$3\r\n1.5\r\n")).toBe(",1.5\r\n");
    expect(convert("ZSCORE z m", "$4\r\n1\r\n5\r\n")).toBe("$4\r\n1\r\n5\r\n");
    expect(convert("ZSCORE z m", "$0\r\n\r\n")).toBe("$0\r\n\r\n");
    expect(convert("ZADD z 1 m", ":1\r\n")).toBe(":1\r\n");
    expect(convert("ZMSCORE z a b", "*2\r\n$-1\r\n$4\r\n-inf\r\n")).toBe("*2\r\n_\r\n,-inf\r\n");
  });

  it("makes a verbatim string of INFO", () => {
    expect(convert("info", "$4\r\na\r\nb\r\n")).toBe("=8\r\ntxt:a\r\nb\r\n");
    expect(convert("INFO", "$0\r\n\r\n")).toBe("=4\r\ntxt:\r\n");
  });

  it("maps XREAD only when every item is a [key, value] pair", () => {
    expect(
      convert("XREAD STREAMS s 0", "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$1\r\n1\r\n*-1\r\n"),
    ).toBe("%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$1\r\n1\r\n_\r\n");
    // Not pairs: nothing but the null rule, with the null in the first item converted once.
    expect(convert("XREAD STREAMS s 0", "*2\r\n*2\r\n$-1\r\n:1\r\n*1\r\n:2\r\n")).toBe(
      "*2\r\n*2\r\n_\r\n:1\r\n*1\r\n:2\r\n",
    );
  });

  it("turns RESP2's subscribed PING into RESP3's", () => {
    expect(convert("PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n")).toBe("+PONG\r\n");
    expect(convert("PING x", "*2\r\n$4\r\npong\r\n$1\r\nx\r\n")).toBe("$1\r\nx\r\n");
    expect(convert("PING", "+PONG\r\n")).toBe("+PONG\r\n");
    expect(convert("PING", "*2\r\n$4\r\nping\r\n$-1\r\n")).toBe("*2\r\n$4\r\nping\r\n_\r\n");
    expect(convert("PING", "*2\r\n$-1\r\n$0\r\n\r\n")).toBe("*2\r\n_\r\n$0\r\n\r\n");
    expect(convert("PING", "*2\r\n$4\r\npong\r\n$-1\r\n")).toBe("*2\r\n$4\r\npong\r\n_\r\n");
  });

  it("chooses the shape from the command's options", () => {
    const scores = "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\ninf\r\n";
    const pairs = "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,inf\r\n";
    expect(convert("ZRANGE z 0 -1 withScores", scores)).toBe(pairs);
    expect(convert("ZRANGE z 0 -1", scores)).toBe(scores);
    expect(convert("ZUNION 2 a WITHSCORES", scores)).toBe(scores); // a key named WITHSCORES
    expect(convert("ZUNION 1 a WITHSCORES", scores)).toBe(pairs);
    expect(convert("ZUNION x a WITHSCORES", scores)).toBe(scores);
    expect(convert("ZPOPMIN z 2", scores)).toBe(pairs);
    expect(convert("ZPOPMIN z", "*2\r\n$1\r\na\r\n$1\r\n1\r\n")).toBe("*2\r\n$1\r\na\r\n,1\r\n");
    expect(convert("HRANDFIELD h 2", scores)).toBe(scores);
    expect(convert("SPOP s", "$1\r\na\r\n")).toBe("$1\r\na\r\n");
    expect(convert("SPOP s 1", "*1\r\n$1\r\na\r\n")).toBe("~1\r\n$1\r\na\r\n");
    expect(convert("COMMAND COUNT", ":3\r\n")).toBe(":3\r\n");
    expect(convert("CONFIG SET a b", "+OK\r\n")).toBe("+OK\r\n");
    expect(convert("CONFIG get a", "*2\r\n$1\r\na\r\n$1\r\nb\r\n")).toBe(
      "%1\r\n$1\r\na\r\n$1\r\nb\r\n",
    );
  });

  it("converts EXEC's replies as the queued commands'", () => {
    const queued = [args("HGETALL", "h"), args("ZSCORE", "z", "m"), args("GET", "k")];
    const reply = "*3\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\n2\r\n$-1\r\n";
    expect(toResp3Exec(queued, b(reply)).toString("latin1")).toBe(
      "*3\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n,2\r\n_\r\n",
    );
    expect(toResp3Exec(queued, b("*-1\r\n"))).toEqual(resp3Null);
    expect(toResp3Exec(queued, b("-EXECABORT x\r\n")).toString("latin1")).toBe("-EXECABORT x\r\n");
  });

  it("returns a malformed reply unchanged", () => {
    const malformed = [
      "",
      "x",
      "$",
      "$-1",
      "$-1\r",
      "$-2\r\n",
      "*-3\r\n",
      "$3\r\nab\r\n",
      "$3\r\nabcd\r\n",
      "$1\r\na\n\n",
      "$x\r\na\r\n",
      "$1x\r\na\r\n",
      "$\r\n\r\n",
      "$1234567890123456\r\n",
      "*2\r\n:1\r\n",
      "*1\r\n$-1\r\n*",
      "+OK",
      "+OK\r",
      "+OK\n",
      ":1\r\n?",
      "%1\r\n:1\r\n:1\r\n",
      "_\r\n",
      `${"*1\r\n".repeat(100_000)}:1\r\n`,
    ];
    const commands = [
      "GET k",
      "HGETALL h",
      "ZRANGE z 0 -1 WITHSCORES",
      "XREAD STREAMS s 0",
      "PING",
    ];
    for (const reply of malformed) {
      for (const command of commands) expect(convert(command, reply)).toBe(reply);
    }
  });

  it("never throws, and changes nothing it cannot parse", () => {
    const commands = [
      ...RESP3_SHAPED_COMMANDS.map((name) => name.split("|")),
      ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
      ["HRANDFIELD", "h", "1", "WITHVALUES"],
      ["ZPOPMIN", "z", "1"],
      ["GET", "k"],
    ];
    const valid = [
      "*4\r\n$1\r\na\r\n$1\r\n1\r\n$-1\r\n*2\r\n$1\r\nb\r\n*-1\r\n",
      "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
      "*10\r\n$3\r\nget\r\n:2\r\n*1\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*1\r\n*2\r\n$5\r\nflags\r\n*0\r\n*0\r\n",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...commands),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
          fc
            .tuple(fc.constantFrom(...valid), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }))
            .map(([reply, cut, at, byte]) => {
              const buffer = b(reply);
              const mutated = Buffer.from(buffer.subarray(0, cut % (buffer.length + 1)));
              if (mutated.length > 0 && at % 2 === 0) mutated[at % mutated.length] = byte;
              return mutated;
            }),
        ),
        (command, reply) => {
          const before = Buffer.from(reply);
          const out = toResp3(command.map(b), reply);
          expect(reply.equals(before)).toBe(true);
          // The output is well-formed RESP3 whenever it differs from the input.
          if (out !== reply) expect(replyLength(out)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("pushMessage", () => {
  it("builds a push of bulks, integers and nulls", () => {
    expect(pushMessage([b("message"), b("ch"), b("a\r\nb")]).toString("latin1")).toBe(
      ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\na\r\nb\r\n",
    );
    expect(pushMessage([b("unsubscribe"), null, 0]).toString("latin1")).toBe(
      ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n",
    );
    expect(pushMessage([]).toString("latin1")).toBe(">0\r\n");
  });
});

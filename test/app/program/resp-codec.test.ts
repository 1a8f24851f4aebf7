/**
 * The RESP codec of transparent mode: requests re-encoded one command each, replies framed
 * (RESP2 and RESP3) however the stream is split, and both checked against a real redis-server
 * (skipped, with a message, when it is not installed).
 */
import { execFileSync } from "node:child_process";
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CodecError,
  type CutReply,
  type CutRequest,
  isCodecError,
} from "../../../src/app/program/codec.ts";
import { isRespAnswer, respCodec, respPushKind } from "../../../src/app/program/resp-codec.ts";
import { type RedisServer, startRedisServer } from "../redis-server-process.ts";
import { randomChunks, splitAt } from "./chunks.ts";

const latin1 = (text: string): Buffer => Buffer.from(text, "latin1");
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

/** Every reply cut from `chunks` (next() drained after each push), or the error that stopped it. */
function cutReplies(
  chunks: readonly Uint8Array[],
  limits = {},
): { replies: CutReply[]; error: CodecError | null } {
  const cutter = respCodec(limits).replies();
  const replies: CutReply[] = [];
  for (const chunk of chunks) {
    cutter.push(chunk);
    for (let reply = cutter.next(); reply !== null; reply = cutter.next()) {
      if (isCodecError(reply)) return { replies, error: reply };
      replies.push(reply);
    }
  }
  return { replies, error: null };
}

function cutRequests(chunks: readonly Uint8Array[]): (CutRequest | CodecError)[] {
  const cutter = respCodec().requests();
  const out: (CutRequest | CodecError)[] = [];
  for (const chunk of chunks) {
    cutter.push(chunk);
    for (let request = cutter.next(); request !== null; request = cutter.next()) {
      out.push(request);
      if (isCodecError(request)) return out;
    }
  }
  return out;
}

function multibulk(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, "latin1")}\r\n${a}\r\n`).join("")}`;
}

// ---- generated replies ------------------------------------------------------------------------

/** A generated RESP value: its encoding and the type byte of its outermost (non-attribute) value. */
interface Gen {
  readonly bytes: string;
  readonly type: string;
}

const byteChar = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const lineChar = fc.constantFrom(..."abcXYZ 019.-_:+*$>%|!=#(,");
const body = fc.string({
  unit: fc.oneof(byteChar, fc.constantFrom("\r", "\n", "\r\n")),
  maxLength: 40,
});
const line = fc.string({ unit: lineChar, maxLength: 20 });

const scalar: fc.Arbitrary<Gen> = fc.oneof(
  line.map((s) => ({ bytes: `+${s}\r\n`, type: "+" })),
  line.map((s) => ({ bytes: `-ERR ${s}\r\n`, type: "-" })),
  fc.integer().map((n) => ({ bytes: `:${n}\r\n`, type: ":" })),
  body.map((s) => ({ bytes: `$${s.length}\r\n${s}\r\n`, type: "$" })),
  fc.constant({ bytes: "$-1\r\n", type: "$" }),
  fc.constant({ bytes: "*-1\r\n", type: "*" }),
  fc.constant({ bytes: "_\r\n", type: "_" }),
  fc.double({ noNaN: true }).map((d) => ({ bytes: `,${d}\r\n`, type: "," })),
  fc.boolean().map((b) => ({ bytes: `#${b ? "t" : "f"}\r\n`, type: "#" })),
  fc.bigInt().map((n) => ({ bytes: `(${n}\r\n`, type: "(" })),
  body.map((s) => ({ bytes: `!${s.length}\r\n${s}\r\n`, type: "!" })),
  body.map((s) => ({ bytes: `=${s.length + 4}\r\ntxt:${s}\r\n`, type: "=" })),
);

const { value } = fc.letrec<{ value: Gen; aggregate: Gen; map: Gen; annotated: Gen }>((tie) => ({
  value: fc.oneof({ depthSize: "small" }, scalar, tie("aggregate"), tie("map"), tie("annotated")),
  aggregate: fc
    .tuple(fc.constantFrom("*", "~", ">"), fc.array(tie("value"), { maxLength: 4 }))
    .map(([type, items]) => ({
      bytes: `${type}${items.length}\r\n${items.map((i) => i.bytes).join("")}`,
      type,
    })),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((pairs) => ({
    bytes: `%${pairs.length}\r\n${pairs.map(([k, v]) => k.bytes + v.bytes).join("")}`,
    type: "%",
  })),
  // An attribute belongs to the value after it: one value, typed by what it annotates.
  annotated: fc
    .tuple(fc.array(fc.tuple(scalar, tie("value")), { maxLength: 2 }), tie("value"))
    .map(([pairs, annotated]) => ({
      bytes: `|${pairs.length}\r\n${pairs.map(([k, v]) => k.bytes + v.bytes).join("")}${annotated.bytes}`,
      type: annotated.type,
    })),
}));

// ---- replies ----------------------------------------------------------------------------------

describe("RESP reply cutter", () => {
  it("cuts generated RESP2/RESP3 replies, split at random boundaries, into the replies sent", () => {
    fc.assert(
      fc.property(
        fc.array(value, { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        (replies, fractions) => {
          const stream = latin1(replies.map((r) => r.bytes).join(""));
          const { replies: cut, error } = cutReplies(splitAt(stream, fractions));
          expect(error).toBeNull();
          expect(cut.map((r) => text(r.bytes))).toEqual(replies.map((r) => r.bytes));
          expect(cut.map((r) => r.push)).toEqual(replies.map((r) => r.type === ">"));
        },
      ),
      { numRuns: 300 },
    );
  });

  const sample = [
    "+OK\r\n",
    "-ERR wrong\r\n",
    ":-42\r\n",
    "$5\r\na\r\nbc\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "$0\r\n\r\n",
    "*0\r\n",
    "*2\r\n*1\r\n:1\r\n%1\r\n+k\r\n~2\r\n_\r\n#t\r\n",
    ",3.14\r\n",
    "(123456789012345678901234567890\r\n",
    "!9\r\nERR\r\nbad!\r\n",
    "=8\r\ntxt:a\r\nb\r\n",
    "|1\r\n+ttl\r\n:5\r\n$3\r\nval\r\n",
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
    "*1\r\n|1\r\n+a\r\n+b\r\n:7\r\n",
  ];
  const stream = latin1(sample.join(""));

  it("cuts the same replies with the stream split in two at every byte boundary", () => {
    for (let at = 0; at <= stream.length; at++) {
      const { replies, error } = cutReplies([stream.subarray(0, at), stream.subarray(at)]);
      expect(error).toBeNull();
      expect(replies.map((r) => text(r.bytes))).toEqual(sample);
    }
  });

  it("cuts the same replies fed one byte at a time, and flags only `>` as a push", () => {
    const bytes = [...stream].map((b) => Uint8Array.of(b));
    const { replies } = cutReplies(bytes);
    expect(replies.map((r) => text(r.bytes))).toEqual(sample);
    expect(replies.map((r) => r.push)).toEqual(sample.map((s) => s.startsWith(">")));
  });

  it("cuts many replies from one chunk, and a big bulk from small chunks, in linear time", () => {
    const many = latin1(":1\r\n".repeat(100_000));
    expect(cutReplies([many]).replies).toHaveLength(100_000);
    // 8 MiB in 256-byte pushes, drained after each: a rescan or a copy per push would not finish.
    const size = 8 * 1024 * 1024;
    const big = Buffer.concat([
      latin1(`$${size}\r\n`),
      Buffer.alloc(size, 120),
      latin1("\r\n+OK\r\n"),
    ]);
    const { replies } = cutReplies(randomChunks(big, 1, 512));
    expect(replies.map((r) => r.bytes.length)).toEqual([big.length - 5, 5]);
    expect(Buffer.from(replies[0]!.bytes).equals(big.subarray(0, big.length - 5))).toBe(true);
  });

  it("keeps each cut reply's bytes intact while later chunks arrive", () => {
    const cutter = respCodec().replies();
    cutter.push(latin1("$3\r\nab"));
    expect(cutter.next()).toBeNull();
    cutter.push(latin1("c\r\n$2\r\nx"));
    const first = cutter.next() as CutReply;
    cutter.push(latin1("y\r\n"));
    expect(text((cutter.next() as CutReply).bytes)).toBe("$2\r\nxy\r\n");
    expect(text(first.bytes)).toBe("$3\r\nabc\r\n");
    expect(cutter.bufferedBytes).toBe(0);
  });

  it.each([
    ["$?\r\n;3\r\nabc\r\n;0\r\n", "ERR_CODEC_UNSUPPORTED"],
    ["*?\r\n:1\r\n.\r\n", "ERR_CODEC_UNSUPPORTED"],
    [";3\r\nabc\r\n", "ERR_CODEC_UNSUPPORTED"],
    ["@5\r\n", "ERR_CODEC_SYNTAX"],
    ["$3\r\nabcXY", "ERR_CODEC_SYNTAX"],
    ["+OK\n", "ERR_CODEC_SYNTAX"],
    ["\r\n", "ERR_CODEC_SYNTAX"],
    ["$-2\r\n", "ERR_CODEC_SYNTAX"],
    ["%-1\r\n", "ERR_CODEC_SYNTAX"],
    ["$01x\r\n", "ERR_CODEC_SYNTAX"],
    ["_x\r\n", "ERR_CODEC_SYNTAX"],
    ["#x\r\n", "ERR_CODEC_SYNTAX"],
  ])("refuses %j with %s, finally", (input, code) => {
    const cutter = respCodec().replies();
    cutter.push(latin1(`:1\r\n${input}`));
    expect(text((cutter.next() as CutReply).bytes)).toBe(":1\r\n");
    const error = cutter.next() as CodecError;
    expect(error.code).toBe(code);
    expect(error.final).toBe(true);
    cutter.push(latin1("+OK\r\n"));
    expect(cutter.next()).toBe(error);
  });

  it("refuses a reply above replyBytesMax as soon as its length is declared", () => {
    const limits = { replyBytesMax: 1000 };
    expect(cutReplies([latin1("$2000\r\n")], limits).error?.code).toBe("ERR_CODEC_LIMIT");
    expect(cutReplies([latin1("*1000\r\n")], limits).error?.code).toBe("ERR_CODEC_LIMIT");
    const spread = `*100\r\n${"$5\r\nabcde\r\n".repeat(100)}`;
    expect(cutReplies([latin1(spread)], limits).error?.code).toBe("ERR_CODEC_LIMIT");
    expect(cutReplies([latin1(spread)], { replyBytesMax: 2000 }).replies).toHaveLength(1);
  });

  it("refuses lines above replyLineBytesMax and nesting above replyDepthMax", () => {
    const long = latin1(`+${"a".repeat(100)}`);
    expect(cutReplies([long], { replyLineBytesMax: 50 }).error?.code).toBe("ERR_CODEC_LIMIT");
    expect(cutReplies([latin1("*1\r\n".repeat(11))], { replyDepthMax: 10 }).error?.code).toBe(
      "ERR_CODEC_LIMIT",
    );
    const nested = latin1(`${"*1\r\n".repeat(10)}:1\r\n`);
    expect(cutReplies([nested], { replyDepthMax: 10 }).replies).toHaveLength(1);
  });

  it("tells pub/sub messages and confirmations apart (respPushKind, isRespAnswer)", () => {
    const message = latin1(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    const confirmation = latin1(">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    const resp2Message = latin1("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    expect(respPushKind(message)).toBe("message");
    expect(respPushKind(resp2Message)).toBe("message");
    expect(respPushKind(latin1("*2\r\n+PONG\r\n$0\r\n\r\n"))).toBe("pong");
    expect(respPushKind(latin1(":1\r\n"))).toBeNull();
    expect(isRespAnswer({ bytes: message, push: true })).toBe(false);
    expect(isRespAnswer({ bytes: confirmation, push: true })).toBe(true);
    expect(isRespAnswer({ bytes: resp2Message, push: false })).toBe(true);
  });
});

// ---- requests ---------------------------------------------------------------------------------

describe("RESP request cutter", () => {
  it("cuts one command per request, inline or multibulk, re-encoded as a multibulk", () => {
    const requests = cutRequests([
      latin1(
        'SET k "a b"\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nping\r\n\r\nSubscribe a b c\r\nUNSUBSCRIBE\r\n',
      ),
    ]) as CutRequest[];
    expect(requests.map((r) => text(r.bytes))).toEqual([
      multibulk(["SET", "k", "a b"]),
      multibulk(["GET", "k"]),
      multibulk(["ping"]),
      multibulk(["Subscribe", "a", "b", "c"]),
      multibulk(["UNSUBSCRIBE"]),
    ]);
    expect(requests.map((r) => r.name)).toEqual(["set", "get", "ping", "subscribe", "unsubscribe"]);
    expect(requests.map((r) => r.replies)).toEqual([1, 1, 1, 3, 1]);
    expect(requests[0]!.args?.map(text)).toEqual(["k", "a b"]);
    expect(requests.every((r) => r.replyFrame === "resp")).toBe(true);
  });

  it("cuts the same requests however the client stream is split", () => {
    const arg = fc.string({ unit: byteChar, minLength: 1, maxLength: 12 });
    const command = fc.tuple(
      fc.constantFrom("SET", "get", "Del", "hset"),
      fc.array(arg, { maxLength: 4 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(command, fc.boolean()), { minLength: 1, maxLength: 10 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }),
        (commands, fractions) => {
          // Inline when every argument is plain; multibulk otherwise.
          const plain = (a: string): boolean => /^[a-zA-Z0-9]+$/.test(a);
          const client = commands
            .map(([[name, args], inline]) =>
              inline && args.every(plain)
                ? `${[name, ...args].join(" ")}\r\n`
                : multibulk([name, ...args]),
            )
            .join("");
          const requests = cutRequests(splitAt(latin1(client), fractions)) as CutRequest[];
          expect(requests.map((r) => text(r.bytes))).toEqual(
            commands.map(([[name, args]]) => multibulk([name, ...args])),
          );
          expect(requests.map((r) => r.args?.map(text))).toEqual(
            commands.map(([[, args]]) => args),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it("ends the stream on a protocol error, answering with Redis's error", () => {
    const out = cutRequests([latin1("PING\r\n*1\r\nx\r\n")]);
    expect((out[0] as CutRequest).name).toBe("ping");
    const error = out[1] as CodecError;
    expect(error.code).toBe("ERR_CODEC_SYNTAX");
    expect(error.final).toBe(true);
    expect(text(error.clientReply!)).toBe("-ERR Protocol error: expected '$', got 'x'\r\n");
    const big = respCodec({
      request: { argsMax: 8, bulkBytesMax: 8, inlineBytesMax: 8, requestBytesMax: 64 },
    });
    const cutter = big.requests();
    cutter.push(latin1("*1\r\n$9\r\n"));
    expect((cutter.next() as CodecError).code).toBe("ERR_CODEC_SYNTAX");
    const inline = big.requests();
    inline.push(latin1("GET aaaaaaaaaaaa"));
    expect((inline.next() as CodecError).code).toBe("ERR_CODEC_LIMIT");
  });
});

// ---- against redis-server ---------------------------------------------------------------------

function hasRedis(): boolean {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const REDIS = hasRedis();
if (!REDIS) console.warn("redis-server not installed: skipping the RESP codec's real-server tests");

/** A client connection that keeps every byte received. */
class Connection {
  received = Buffer.alloc(0);
  private readonly waiters: (() => void)[] = [];
  readonly socket: net.Socket;
  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
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
        if (attempt > 100) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Waits until the bytes received end with `tail`. */
  async until(tail: string): Promise<Buffer> {
    const deadline = Date.now() + 10_000;
    while (!this.received.toString("latin1").endsWith(tail)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(tail)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.received;
  }
}

/** The client's bytes cut into requests (in random chunks); their re-encoded bytes. */
function requestBytes(client: string, seed: number): Buffer {
  const requests = cutRequests(randomChunks(latin1(client), seed, 40));
  expect(requests.every((r) => !isCodecError(r))).toBe(true);
  return Buffer.concat((requests as CutRequest[]).map((r) => r.bytes));
}

/** Cuts `received` in random chunks with several seeds; every cut must be the same. */
function cutEveryWay(received: Buffer): CutReply[] {
  const first = cutReplies([received]);
  expect(first.error).toBeNull();
  for (let seed = 1; seed <= 20; seed++) {
    const { replies, error } = cutReplies(randomChunks(received, seed, 1 + seed * 7));
    expect(error).toBeNull();
    expect(replies.map((r) => text(r.bytes))).toEqual(first.replies.map((r) => text(r.bytes)));
  }
  expect(Buffer.concat(first.replies.map((r) => r.bytes)).equals(received)).toBe(true);
  return first.replies;
}

describe.skipIf(!REDIS)("RESP codec against redis-server", () => {
  let server: RedisServer | undefined;
  let port = 0;
  const connections: Connection[] = [];

  beforeAll(async () => {
    server = await startRedisServer([
      "--save",
      "",
      "--appendonly",
      "no",
      "--enable-debug-command",
      "yes",
    ]);
    port = server.port;
  });

  afterAll(() => {
    for (const connection of connections) connection.socket.destroy();
    server?.stop();
  });

  async function open(): Promise<Connection> {
    const connection = await Connection.open(port);
    connections.push(connection);
    return connection;
  }

  it("cuts a pipelined RESP2 then RESP3 conversation into one reply per command", async () => {
    const big = `x\r\n${"0123456789".repeat(20_000)}\r\nEND\r\n`;
    const steps: [string, string | RegExp][] = [
      ["FLUSHALL", "+OK\r\n"],
      ['SET k1 "hello world"', "+OK\r\n"],
      ["GET k1", "$11\r\nhello world\r\n"],
      ["GET missing", "$-1\r\n"],
      [multibulk(["SET", "big", big]), "+OK\r\n"],
      [multibulk(["GET", "big"]), `$${big.length}\r\n${big}\r\n`],
      ["RPUSH l a b c", ":3\r\n"],
      ["LRANGE l 0 -1", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"],
      ["MULTI", "+OK\r\n"],
      ["INCR n", "+QUEUED\r\n"],
      ["LRANGE l 0 0", "+QUEUED\r\n"],
      ["EXEC", "*2\r\n:1\r\n*1\r\n$1\r\na\r\n"],
      ["INCR k1", "-ERR value is not an integer or out of range\r\n"],
      ["HSET h f1 v1 f2 v2", ":2\r\n"],
      ["HGETALL h", "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"],
      ["LPOP nolist 2", "*-1\r\n"],
      ["ZADD z 1.5 m", ":1\r\n"],
      ["ZSCORE z m", "$3\r\n1.5\r\n"],
      ["HELLO 3", /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n[\s\S]*\$7\r\nmodules\r\n\*0\r\n$/],
      ["HGETALL h", "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"],
      ["SADD s 3 1 2", ":3\r\n"],
      ["SMEMBERS s", "~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"],
      ["ZSCORE z m", ",1.5\r\n"],
      ["GET missing", "_\r\n"],
      ["LPOP nolist 2", "_\r\n"],
      ["DEBUG PROTOCOL bignum", "(1234567999999999999999999999999999999\r\n"],
      [
        "DEBUG PROTOCOL attrib",
        "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
      ],
      ["DEBUG PROTOCOL verbatim", "=29\r\ntxt:This is a verbatim\nstring\r\n"],
      ["DEBUG PROTOCOL true", "#t\r\n"],
      ["DEBUG PROTOCOL false", "#f\r\n"],
      ["DEBUG PROTOCOL double", ",3.141\r\n"],
      ["DEBUG PROTOCOL null", "_\r\n"],
      ["DEBUG PROTOCOL map", "%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n"],
      ["EXISTS k1 big", ":2\r\n"],
      ["ECHO resp-sentinel-1", "$15\r\nresp-sentinel-1\r\n"],
    ];
    const client = steps.map(([c]) => (c.startsWith("*") ? c : `${c}\r\n`)).join("");
    const connection = await open();
    connection.socket.write(requestBytes(client, 7));
    const received = await connection.until("$15\r\nresp-sentinel-1\r\n");
    const replies = cutEveryWay(received);
    expect(replies).toHaveLength(steps.length);
    steps.forEach(([command, expected], i) => {
      const reply = text(replies[i]!.bytes);
      if (typeof expected === "string") expect(reply, command).toBe(expected);
      else expect(reply, command).toMatch(expected);
      expect(replies[i]!.push).toBe(false);
    });
  });

  it("cuts RESP3 pushes (pub/sub, tracking, DEBUG PROTOCOL push) apart from replies", async () => {
    const subscriber = await open();
    const publisher = await open();
    const subscribe = cutRequests([latin1("HELLO 3\r\nSUBSCRIBE ch1 ch2\r\n")]) as CutRequest[];
    expect(subscribe.map((r) => r.replies)).toEqual([1, 2]);
    subscriber.socket.write(Buffer.concat(subscribe.map((r) => r.bytes)));
    await subscriber.until(">3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n");
    publisher.socket.write(requestBytes("PUBLISH ch1 hello\r\n", 1));
    await publisher.until(":1\r\n");
    await subscriber.until("$5\r\nhello\r\n");
    subscriber.socket.write(
      requestBytes("PING\r\nCLIENT TRACKING on\r\nGET tracked\r\nDEBUG PROTOCOL push\r\n", 2),
    );
    await subscriber.until("$40\r\nSome real reply following the push reply\r\n");
    publisher.socket.write(requestBytes("SET tracked 1\r\n", 3));
    await subscriber.until("$7\r\ntracked\r\n");
    const replies = cutEveryWay(subscriber.received);
    const kinds = replies.map((r) => [r.push, respPushKind(r.bytes), isRespAnswer(r)]);
    expect(kinds).toEqual([
      [false, null, true], // HELLO 3 (a map)
      [true, "subscribe", true],
      [true, "subscribe", true],
      [true, "message", false],
      [false, null, true], // +PONG
      [false, null, true], // +OK
      [false, null, true], // _ (GET tracked)
      [true, "server-cpu-usage", false],
      [false, null, true], // the reply after DEBUG PROTOCOL push
      [true, "invalidate", false],
    ]);
    expect(text(replies[3]!.bytes)).toBe(">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n");
  });

  it("cuts RESP2 pub/sub messages as arrays (push false; respPushKind tells)", async () => {
    const subscriber = await open();
    const publisher = await open();
    subscriber.socket.write(requestBytes("SUBSCRIBE news\r\n", 4));
    await subscriber.until("$4\r\nnews\r\n:1\r\n");
    publisher.socket.write(requestBytes("PUBLISH news extra\r\n", 5));
    await subscriber.until("$5\r\nextra\r\n");
    subscriber.socket.write(requestBytes("PING\r\n", 6));
    await subscriber.until("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    const replies = cutEveryWay(subscriber.received);
    expect(replies.map((r) => [r.push, respPushKind(r.bytes)])).toEqual([
      [false, "subscribe"],
      [false, "message"],
      [false, "pong"],
    ]);
  });
});

/**
 * The memcached text-protocol codec of transparent mode: requests cut (with their data blocks)
 * and canonicalized, quiet requests fenced with `mn`, replies framed by the request they answer
 * however the stream is split; then both against a real memcached (skipped, with a message, when
 * it is not installed).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CodecError,
  type CutReply,
  type CutRequest,
  isCodecError,
  type ReplyFrame,
} from "../../../src/app/program/codec.ts";
import {
  MEMCACHE_KEY_BYTES_MAX,
  MEMCACHE_LINE_BYTES_MAX,
  type MemcacheCodecLimits,
  memcacheCodec,
} from "../../../src/app/program/memcache-codec.ts";
import { randomChunks, splitAt } from "./chunks.ts";

const latin1 = (text: string): Buffer => Buffer.from(text, "latin1");
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

function cutRequests(
  chunks: readonly Uint8Array[],
  limits: Partial<MemcacheCodecLimits> = {},
): (CutRequest | CodecError)[] {
  const cutter = memcacheCodec(limits).requests();
  const out: (CutRequest | CodecError)[] = [];
  for (const chunk of chunks) {
    cutter.push(chunk);
    for (let request = cutter.next(); request !== null; request = cutter.next()) {
      out.push(request);
      if (isCodecError(request) && request.final) return out;
    }
  }
  return out;
}

/** A request as the reply cutter needs it (only the frame matters there). */
function framed(replyFrame: ReplyFrame): CutRequest {
  return { bytes: Buffer.alloc(0), replies: replyFrame === "none" ? 0 : 1, replyFrame, name: "x" };
}

function cutReplies(
  requests: readonly CutRequest[],
  chunks: readonly Uint8Array[],
  limits: Partial<MemcacheCodecLimits> = {},
): { replies: string[]; error: CodecError | null } {
  const cutter = memcacheCodec(limits).replies();
  for (const request of requests) cutter.expect(request);
  const replies: string[] = [];
  for (const chunk of chunks) {
    cutter.push(chunk);
    for (let reply = cutter.next(); reply !== null; reply = cutter.next()) {
      if (isCodecError(reply)) return { replies, error: reply };
      expect(reply.push).toBe(false);
      replies.push(text(reply.bytes));
    }
  }
  return { replies, error: null };
}

// ---- requests ---------------------------------------------------------------------------------

describe("memcache request cutter", () => {
  it("cuts commands with their data blocks, in canonical form", () => {
    const data = "a\r\nEND\r\nb";
    const out = cutRequests([
      latin1(`set  k 1 0 ${data.length}\n${data}\r\nget k  other\r\ngat 10 k\r\nmg k v f\r\n`),
      latin1("ms k 2 T0\r\nhi\r\nmn\r\nstats\r\nversion\r\nquit\r\n"),
    ]) as CutRequest[];
    expect(out.map((r) => text(r.bytes))).toEqual([
      `set k 1 0 ${data.length}\r\n${data}\r\n`,
      "get k other\r\n",
      "gat 10 k\r\n",
      "mg k v f\r\n",
      "ms k 2 T0\r\nhi\r\n",
      "mn\r\n",
      "stats\r\n",
      "version\r\n",
      "quit\r\n",
    ]);
    expect(out.map((r) => r.replyFrame)).toEqual([
      "line",
      "values",
      "values",
      "meta",
      "meta",
      "line",
      "stats",
      "line",
      "none",
    ]);
    expect(out.map((r) => r.replies)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expect(out[0]!.args?.map(text)).toEqual(["k", "1", "0", String(data.length)]);
    expect(out[1]!.args?.map(text)).toEqual(["k", "other"]);
  });

  it("fences quiet requests (noreply, the meta q flag) with an mn", () => {
    const out = cutRequests([
      latin1("set k 0 0 1 noreply\r\nx\r\ncas k 0 0 1 99 noreply\r\ny\r\ndelete k noreply\r\n"),
      latin1("incr n 1 noreply\r\nflush_all noreply\r\nmg k v q\r\nms k 1 q T0\r\nz\r\nmd k q\r\n"),
      latin1("delete noreply\r\nme k q\r\n"),
    ]) as CutRequest[];
    expect(out.map((r) => text(r.bytes))).toEqual([
      "set k 0 0 1 noreply\r\nx\r\nmn\r\n",
      "cas k 0 0 1 99 noreply\r\ny\r\nmn\r\n",
      "delete k noreply\r\nmn\r\n",
      "incr n 1 noreply\r\nmn\r\n",
      "flush_all noreply\r\nmn\r\n",
      "mg k v q\r\nmn\r\n",
      "ms k 1 q T0\r\nz\r\nmn\r\n",
      "md k q\r\nmn\r\n",
      "delete noreply\r\n", // the key is "noreply"
      "me k q\r\n", // me takes no q flag
    ]);
    expect(out.map((r) => r.replyFrame)).toEqual([...Array(8).fill("fenced"), "line", "meta"]);
    expect(out.every((r) => r.replies === 1)).toBe(true);
  });

  it("refuses unknown commands, keyless retrievals and bad keys with memcached's answer, and reads on", () => {
    const longKey = "k".repeat(MEMCACHE_KEY_BYTES_MAX + 1);
    const out = cutRequests([
      latin1(
        `SET k 0 0 1\r\nwatch\r\n\r\nget\r\nget a ${longKey}\r\nmg ${longKey} v\r\nget a\tb\r\n`,
      ),
      latin1(`touch\r\nget ${"k".repeat(MEMCACHE_KEY_BYTES_MAX)}\r\n`),
    ]);
    const errors = out.slice(0, 8) as CodecError[];
    expect(errors.map((e) => [e.code, e.final, text(e.clientReply!)])).toEqual([
      ["ERR_CODEC_UNSUPPORTED", false, "ERROR\r\n"],
      ["ERR_CODEC_UNSUPPORTED", false, "ERROR\r\n"],
      ["ERR_CODEC_SYNTAX", false, "ERROR\r\n"],
      ["ERR_CODEC_SYNTAX", false, "ERROR\r\n"],
      ["ERR_CODEC_LIMIT", false, "CLIENT_ERROR bad command line format\r\n"],
      ["ERR_CODEC_LIMIT", false, "CLIENT_ERROR bad command line format\r\n"],
      ["ERR_CODEC_LIMIT", false, "CLIENT_ERROR bad command line format\r\n"],
      ["ERR_CODEC_SYNTAX", false, "ERROR\r\n"],
    ]);
    expect((out[8] as CutRequest).name).toBe("get");
    expect(out).toHaveLength(9);
  });

  it.each([
    ["set k 0 0 1 junk\r\nx\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["set k 0 0\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["set k 0 0 abc\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["set k -1 0 1\r\nx\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["set k 4294967296 0 1\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    [
      "cas k 0 0 1 18446744073709551616\r\n",
      "ERR_CODEC_SYNTAX",
      "CLIENT_ERROR bad command line format\r\n",
    ],
    ["cas k 0 0 1\r\nx\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    [
      `set ${"k".repeat(251)} 0 0 1\r\nx\r\n`,
      "ERR_CODEC_LIMIT",
      "CLIENT_ERROR bad command line format\r\n",
    ],
    ["ms k\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["ms k x\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad command line format\r\n"],
    ["set k 0 0 1\r\nxyz\r\n", "ERR_CODEC_SYNTAX", "CLIENT_ERROR bad data chunk\r\n"],
    ["set k 0 0 1048577\r\n", "ERR_CODEC_LIMIT", "SERVER_ERROR object too large for cache\r\n"],
    [`get ${"k ".repeat(1100)}\r\n`, "ERR_CODEC_LIMIT", "CLIENT_ERROR line too long\r\n"],
    [`get ${"k ".repeat(1100)}`, "ERR_CODEC_LIMIT", "CLIENT_ERROR line too long\r\n"],
  ])("ends the stream on %j (%s)", (input, code, reply) => {
    const out = cutRequests([latin1(`version\r\n${input}`)]);
    expect((out[0] as CutRequest).name).toBe("version");
    const error = out[1] as CodecError;
    expect([error.code, error.final, text(error.clientReply!)]).toEqual([code, true, reply]);
    expect(out).toHaveLength(2);
  });

  it("accepts a command line of exactly lineBytesMax bytes, ended by CRLF or LF", () => {
    const keys = [...Array(8).fill("k".repeat(MEMCACHE_KEY_BYTES_MAX)), "j".repeat(36)];
    const line = `get ${keys.join(" ")}`;
    expect(line.length).toBe(MEMCACHE_LINE_BYTES_MAX);
    for (const end of ["\r\n", "\n"]) {
      const [request] = cutRequests([latin1(line + end)]) as CutRequest[];
      expect(text(request!.bytes)).toBe(`${line}\r\n`);
    }
    const [tooLong] = cutRequests([latin1(`${line}j\r\n`)]) as CodecError[];
    expect(tooLong!.code).toBe("ERR_CODEC_LIMIT");
  });

  it("cuts the same requests however the client stream is split", () => {
    const key = fc.string({
      unit: fc.constantFrom(..."abcxyz0189_:-"),
      minLength: 1,
      maxLength: 12,
    });
    const data = fc.string({
      unit: fc.oneof(
        fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
        fc.constantFrom("\r\n", "END\r\n", "\r\nEND\r\n", "MN\r\n"),
      ),
      maxLength: 30,
    });
    const noreply = fc.boolean();
    // [client spelling, canonical bytes]
    const request: fc.Arbitrary<[string, string]> = fc.oneof(
      fc
        .tuple(fc.constantFrom("set", "add", "append"), key, fc.nat(99), data, noreply)
        .map(([cmd, k, flags, d, q]): [string, string] => {
          const line = `${cmd} ${k} ${flags} 0 ${d.length}${q ? " noreply" : ""}`;
          return [
            `${line.replaceAll(" ", "  ")}\n${d}\r\n`,
            `${line}\r\n${d}\r\n${q ? "mn\r\n" : ""}`,
          ];
        }),
      fc.tuple(key, data, fc.boolean()).map(([k, d, q]): [string, string] => {
        const line = `ms ${k} ${d.length} T0${q ? " q" : ""}`;
        return [`${line}\r\n${d}\r\n`, `${line}\r\n${d}\r\n${q ? "mn\r\n" : ""}`];
      }),
      fc.array(key, { minLength: 1, maxLength: 5 }).map((keys): [string, string] => {
        const line = `gets ${keys.join(" ")}`;
        return [` ${line} \r\n`, `${line}\r\n`];
      }),
      fc
        .tuple(fc.constantFrom("incr", "decr", "delete"), key, noreply)
        .map(([cmd, k, q]): [string, string] => {
          const line = q ? `${cmd} ${k} noreply` : `${cmd} ${k}`;
          return [`${line}\r\n`, `${line}\r\n${q ? "mn\r\n" : ""}`];
        }),
    );
    fc.assert(
      fc.property(
        fc.array(request, { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }),
        (requests, fractions) => {
          const client = latin1(requests.map(([spelled]) => spelled).join(""));
          const out = cutRequests(splitAt(client, fractions)) as CutRequest[];
          expect(out.map((r) => text(r.bytes))).toEqual(requests.map(([, canonical]) => canonical));
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- replies ----------------------------------------------------------------------------------

/** A generated reply: the frame it answers, the bytes the copy sends, the bytes relayed. */
type GenReply = [ReplyFrame, string, string];

const dataBytes = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
    fc.constantFrom("\r\n", "END\r\n", "MN\r\n", "\r\nEND\r\n", "VALUE x 0 1\r\n"),
  ),
  maxLength: 30,
});
const word = fc.string({ unit: fc.constantFrom(..."abcz019_:"), minLength: 1, maxLength: 10 });
const errorLine = fc.constantFrom(
  "ERROR\r\n",
  "CLIENT_ERROR bad data chunk\r\n",
  "SERVER_ERROR out of memory\r\n",
);
const vaBlock = fc
  .tuple(dataBytes, fc.constantFrom("", " f0", " t-1 c5"))
  .map(([d, flags]) => `VA ${d.length}${flags}\r\n${d}\r\n`);

const genReply: fc.Arbitrary<GenReply> = fc.oneof(
  fc
    .constantFrom("STORED\r\n", "NOT_FOUND\r\n", "42\r\n", "VERSION 1.6.18\r\n")
    .map((s): GenReply => ["line", s, s]),
  errorLine.map((s): GenReply => ["line", s, s]),
  fc
    .tuple(
      fc.array(fc.tuple(word, dataBytes, fc.boolean()), { maxLength: 4 }),
      fc.oneof(fc.constant("END\r\n"), errorLine),
    )
    .map(([items, end]): GenReply => {
      const body = items
        .map(([k, d, cas]) => `VALUE ${k} 0 ${d.length}${cas ? " 77" : ""}\r\n${d}\r\n`)
        .join("");
      return ["values", body + end, body + end];
    }),
  fc.array(fc.tuple(word, word), { maxLength: 5 }).map(([...stats]): GenReply => {
    const s = `${stats.map(([k, v]) => `STAT ${k} ${v}\r\n`).join("")}END\r\n`;
    return ["stats", s, s];
  }),
  fc.constantFrom("RESET\r\n", "OK\r\n", "ERROR\r\n").map((s): GenReply => ["stats", s, s]),
  fc
    .oneof(
      vaBlock,
      fc.constantFrom("HD\r\n", "EN\r\n", "NF\r\n", "HD c5 kfoo\r\n", "ME k exp=-1\r\n"),
    )
    .map((s): GenReply => ["meta", s, s]),
  fc
    .array(fc.oneof(vaBlock, fc.constantFrom("NS\r\n", "EX\r\n", "NF\r\n"), errorLine), {
      maxLength: 2,
    })
    .map((parts): GenReply => ["fenced", `${parts.join("")}MN\r\n`, parts.join("")]),
);

describe("memcache reply cutter", () => {
  it("cuts generated replies by the frame of the request they answer, split anywhere", () => {
    fc.assert(
      fc.property(
        fc.array(genReply, { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
        (replies, fractions) => {
          const requests = replies.map(([frame]) => framed(frame));
          const stream = latin1(replies.map(([, sent]) => sent).join(""));
          const { replies: cut, error } = cutReplies(requests, splitAt(stream, fractions));
          expect(error).toBeNull();
          expect(cut).toEqual(replies.map(([, , relayed]) => relayed));
        },
      ),
      { numRuns: 300 },
    );
  });

  const sample: GenReply[] = [
    ["line", "STORED\r\n", "STORED\r\n"],
    [
      "values",
      "VALUE k 0 9\r\na\r\nEND\r\nb\r\nVALUE j 3 0 12\r\n\r\nEND\r\n",
      "VALUE k 0 9\r\na\r\nEND\r\nb\r\nVALUE j 3 0 12\r\n\r\nEND\r\n",
    ],
    ["values", "END\r\n", "END\r\n"],
    [
      "values",
      "CLIENT_ERROR bad command line format\r\n",
      "CLIENT_ERROR bad command line format\r\n",
    ],
    ["stats", "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"],
    ["stats", "RESET\r\n", "RESET\r\n"],
    ["meta", "VA 4 t-1\r\nMN\r\n\r\n", "VA 4 t-1\r\nMN\r\n\r\n"],
    ["meta", "EN\r\n", "EN\r\n"],
    ["fenced", "MN\r\n", ""],
    ["fenced", "VA 4\r\nMN\r\n\r\nMN\r\n", "VA 4\r\nMN\r\n\r\n"],
    ["fenced", "NS\r\nMN\r\n", "NS\r\n"],
    ["line", "17\r\n", "17\r\n"],
  ];
  const stream = latin1(sample.map(([, sent]) => sent).join(""));
  const requests = [framed("none"), ...sample.map(([frame]) => framed(frame)), framed("none")];

  it("cuts the same replies with the stream split in two at every byte boundary, or byte by byte", () => {
    for (let at = 0; at <= stream.length; at++) {
      const { replies, error } = cutReplies(requests, [
        stream.subarray(0, at),
        stream.subarray(at),
      ]);
      expect(error).toBeNull();
      expect(replies).toEqual(sample.map(([, , relayed]) => relayed));
    }
    const bytes = [...stream].map((b) => Uint8Array.of(b));
    expect(cutReplies(requests, bytes).replies).toEqual(sample.map(([, , relayed]) => relayed));
  });

  it("keeps up with a long pipeline (the expected-frame queue stays bounded)", () => {
    const cutter = memcacheCodec({ pendingRepliesMax: 8 }).replies();
    for (let i = 0; i < 10_000; i++) {
      cutter.expect(framed("line"));
      if (i > 0) cutter.push(latin1("STORED\r\n"));
      if (i > 0) expect(text((cutter.next() as CutReply).bytes)).toBe("STORED\r\n");
    }
    expect(() => {
      for (let i = 0; i < 8; i++) cutter.expect(framed("line"));
    }).toThrow(/pendingRepliesMax/);
  });

  it.each<[ReplyFrame[], string, string]>([
    [[], "STORED\r\n", "ERR_CODEC_UNEXPECTED"],
    [["line"], "STORED\r\nEXTRA\r\n", "ERR_CODEC_UNEXPECTED"],
    [["line"], "STORED\n", "ERR_CODEC_SYNTAX"],
    [["values"], "STORED\r\n", "ERR_CODEC_SYNTAX"],
    [["values"], "VALUE k 0 x\r\n", "ERR_CODEC_SYNTAX"],
    [["values"], "VALUE k 0 1\r\nxyz", "ERR_CODEC_SYNTAX"],
    [["meta"], "VA 2\r\nabcd", "ERR_CODEC_SYNTAX"],
    [["values"], "VALUE k 0 2000\r\n", "ERR_CODEC_LIMIT"],
    [["line"], "x".repeat(300), "ERR_CODEC_LIMIT"],
    [["stats"], "STAT a b\r\n".repeat(300), "ERR_CODEC_LIMIT"],
  ])("with frames %j, refuses %j finally (%s)", (frames, input, code) => {
    const limits = {
      valueBytesMax: 1000,
      replyLineBytesMax: 256,
      replyBytesMax: 2000,
      keyBytesMax: 200,
      lineBytesMax: 256,
    };
    const { replies, error } = cutReplies(
      frames.map((frame) => framed(frame)),
      [latin1(input)],
      limits,
    );
    expect(replies.length).toBeLessThanOrEqual(1);
    expect([error?.code, error?.final]).toEqual([code, true]);
  });
});

// ---- against memcached ------------------------------------------------------------------------

function hasMemcached(): boolean {
  try {
    execFileSync("memcached", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const MEMCACHED = hasMemcached();
if (!MEMCACHED)
  console.warn("memcached not installed: skipping the memcache codec's real-server tests");

describe.skipIf(!MEMCACHED)("memcache codec against memcached", () => {
  let server: ChildProcess | undefined;
  let socket: net.Socket;
  let received = Buffer.alloc(0);

  beforeAll(async () => {
    // Below the ephemeral range (32768+), where a client socket may already hold the port.
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const args = ["-p", String(port), "-l", "127.0.0.1", "-U", "0"];
    if (process.getuid?.() === 0) args.push("-u", "root");
    server = spawn("memcached", args, { stdio: "ignore" });
    for (let attempt = 0; ; attempt++) {
      try {
        socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.once("error", reject);
        });
        break;
      } catch (error) {
        if (attempt > 100) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
    });
  });

  afterAll(() => {
    socket?.destroy();
    server?.kill();
  });

  /**
   * Cuts `client` (random chunks) into requests, sends them, waits for the `version` reply that
   * ends every exchange, and cuts the replies with 20 chunkings; returns the relayed replies.
   */
  async function exchange(client: string, seed: number): Promise<string[]> {
    const out = cutRequests(randomChunks(latin1(client), seed, 30));
    const requests = out.filter((r): r is CutRequest => !isCodecError(r));
    expect(requests.at(-1)?.name).toBe("version");
    const from = received.length;
    socket.write(Buffer.concat(requests.map((r) => r.bytes)));
    const deadline = Date.now() + 10_000;
    while (!/VERSION [^\r\n]+\r\n$/.test(received.subarray(from).toString("latin1"))) {
      if (Date.now() > deadline) throw new Error("memcached did not answer");
      await new Promise((r) => setTimeout(r, 10));
    }
    const stream = received.subarray(from);
    const first = cutReplies(requests, [stream]);
    expect(first.error).toBeNull();
    for (let s = 1; s <= 20; s++) {
      expect(cutReplies(requests, randomChunks(stream, s, s * 5))).toEqual(first);
    }
    return first.replies;
  }

  it("cuts a pipelined mix of classic and meta commands into one reply per request", async () => {
    const tricky = "line one\r\nEND\r\nVALUE x 0 1\r\nMN\r\n";
    const steps: [string, string | RegExp][] = [
      [`set k1 3 0 ${tricky.length}\r\n${tricky}`, "STORED\r\n"],
      ["get k1", `VALUE k1 3 ${tricky.length}\r\n${tricky}\r\nEND\r\n`],
      [
        "gets k1",
        new RegExp(
          `^VALUE k1 3 ${tricky.length} \\d+\\r\\n${tricky.replaceAll("\r\n", "\\r\\n")}\\r\\nEND\\r\\n$`,
        ),
      ],
      ["set n 5 0 2 noreply\r\n10", ""],
      ["incr n 7", "17\r\n"],
      ["decr n 100", "0\r\n"],
      ["incr missing 1", "NOT_FOUND\r\n"],
      [
        "get k1 nokey n",
        `VALUE k1 3 ${tricky.length}\r\n${tricky}\r\nVALUE n 5 2\r\n0 \r\nEND\r\n`,
      ], // decr pads with a space
      ["add k1 0 0 1\r\nx", "NOT_STORED\r\n"],
      ["append k1 0 0 3\r\nabc", "STORED\r\n"],
      ["cas k1 0 0 1 987654\r\nz", "EXISTS\r\n"],
      ["cas nokey 0 0 1 1\r\nz", "NOT_FOUND\r\n"],
      ["delete nokey", "NOT_FOUND\r\n"],
      ["incr k1 1 noreply", ""],
      ["touch k1 100", "TOUCHED\r\n"],
      ["gat 100 nokey k1", `VALUE k1 3 ${tricky.length + 3}\r\n${tricky}abc\r\nEND\r\n`],
      ["verbosity 1", "OK\r\n"],
      ["ms m1 5 T0 F3\r\nhello", "HD\r\n"],
      ["mg m1 v f t", "VA 5 f3 t-1\r\nhello\r\n"],
      ["mg nokey v", "EN\r\n"],
      ["mg nokey v q", ""],
      ["mg m1 v q", "VA 5\r\nhello\r\n"],
      ["ms m2 2 q\r\nhi", ""],
      ["ms m2 2 q ME\r\nhi", "NS\r\n"],
      ["md m2 q", ""],
      ["md m2", "NF\r\n"],
      ["ma cnt N0 J10 v", "VA 2\r\n10\r\n"],
      ["ma cnt v", "VA 2\r\n11\r\n"],
      ["mn", "MN\r\n"],
      ["me m1", /^ME m1 exp=-1 la=\d+ cas=\d+ fetch=yes cls=\d+ size=\d+\r\n$/],
      ["stats", /^(STAT \S+ [^\r\n]*\r\n)+END\r\n$/],
      ["stats detail dump", "END\r\n"],
      ["stats reset", "RESET\r\n"],
      ["delete n noreply", ""],
      ["get n", "END\r\n"],
      ["version", /^VERSION \S+\r\n$/],
    ];
    // Refused by the codec, never sent: the replies must still line up.
    const refused = ["SET k 0 0 1", `get ${"x".repeat(251)}`, "watch"];
    const client = [...refused, ...steps.map(([c]) => c)].map((c) => `${c}\r\n`).join("");
    const replies = await exchange(client, 3);
    expect(replies).toHaveLength(steps.length);
    steps.forEach(([command, expected], i) => {
      if (typeof expected === "string") expect(replies[i], command).toBe(expected);
      else expect(replies[i], command).toMatch(expected);
    });
  });

  it("cas with the value gets returned stores; a big value crosses many reads", async () => {
    const [gets] = await exchange("set c 0 0 1\r\na\r\ngets c\r\nversion\r\n", 4).then((r) =>
      r.slice(1),
    );
    const cas = /^VALUE c 0 1 (\d+)\r\n/.exec(gets!)![1]!;
    const big = `${"0123456789".repeat(50_000)}\r\nEND\r\n`;
    const replies = await exchange(
      `cas c 0 0 2 ${cas}\r\nok\r\nget c\r\nset big 0 0 ${big.length}\r\n${big}\r\nget big c\r\nversion\r\n`,
      5,
    );
    expect(replies.slice(0, 4)).toEqual([
      "STORED\r\n",
      "VALUE c 0 2\r\nok\r\nEND\r\n",
      "STORED\r\n",
      `VALUE big 0 ${big.length}\r\n${big}\r\nVALUE c 0 2\r\nok\r\nEND\r\n`,
    ]);
  });
});

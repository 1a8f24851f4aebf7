import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isProtocolError,
  RESP_PARSER_DEFAULTS,
  RespParser,
  type RespParserOptions,
  type RespRequest,
} from "../../src/app/resp-parser.ts";

function multibulk(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg, "latin1") : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/** Every request the parser yields for `chunks`, as latin1 strings; errors as { error }. */
function parseAll(
  chunks: readonly Buffer[],
  options: Partial<RespParserOptions> = {},
): (string[] | { error: string })[] {
  const parser = new RespParser(options);
  const out: (string[] | { error: string })[] = [];
  const drain = (): boolean => {
    for (;;) {
      const request: RespRequest = parser.next();
      if (request === null) return true;
      if (isProtocolError(request)) {
        out.push({ error: request.error });
        return false;
      }
      out.push(request.map((arg) => arg.toString("latin1")));
    }
  };
  for (const chunk of chunks) {
    parser.feed(chunk);
    if (!drain()) break;
  }
  return out;
}

const one = (text: string, options: Partial<RespParserOptions> = {}) =>
  parseAll([Buffer.from(text, "latin1")], options);

describe("RespParser multibulk", () => {
  it("parses one command, and pipelined commands in one chunk", () => {
    expect(one("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")).toEqual([["GET", "k"]]);
    const pipelined = Buffer.concat([multibulk(["SET", "a", "1"]), multibulk(["GET", "a"])]);
    expect(parseAll([pipelined])).toEqual([
      ["SET", "a", "1"],
      ["GET", "a"],
    ]);
  });

  it("is binary-safe: CRLF and NUL inside a bulk", () => {
    const value = Buffer.from([0, 13, 10, 255, 36, 42]);
    expect(parseAll([multibulk(["SET", "k", value])])).toEqual([
      ["SET", "k", value.toString("latin1")],
    ]);
  });

  it("skips *0 and *-1, and accepts empty bulks", () => {
    expect(one("*0\r\n*-1\r\n*1\r\n$0\r\n\r\n")).toEqual([[""]]);
  });

  it("gives the same commands fed byte by byte", () => {
    const stream = Buffer.concat([
      multibulk(["SET", "key:000123", "x".repeat(64)]),
      Buffer.from("PING\r\n"),
      multibulk(["GET", "key:000123"]),
      multibulk(["SET", "big", "y".repeat(40_000)]),
      Buffer.from('ECHO "a b"\n'),
    ]);
    const whole = parseAll([stream]);
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(parseAll(bytes)).toEqual(whole);
    expect(whole.map((c) => (c as string[])[0])).toEqual(["SET", "PING", "GET", "SET", "ECHO"]);
  });

  it("gives the same commands for any split of the stream (property)", () => {
    const arg = fc.uint8Array({ maxLength: 70 }).map((a) => Buffer.from(a));
    const command = fc.array(arg, { minLength: 1, maxLength: 5 });
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (commands, cuts) => {
          const stream = Buffer.concat(commands.map((c) => multibulk(c)));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort(
            (a, b) => a - b,
          );
          const chunks: Buffer[] = [];
          let from = 0;
          for (const point of [...points, stream.length]) {
            chunks.push(stream.subarray(from, point));
            from = point;
          }
          const expected = commands.map((c) => c.map((a) => a.toString("latin1")));
          expect(parseAll(chunks)).toEqual(expected);
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it("returned arguments stay intact after more input arrives", () => {
    const parser = new RespParser();
    const stream = Buffer.concat([multibulk(["SET", "a", "1"]), multibulk(["SET", "b", "2"])]);
    parser.feed(stream.subarray(0, 20));
    parser.feed(stream.subarray(20, 30));
    const first = parser.next() as Buffer[];
    parser.feed(stream.subarray(30));
    const second = parser.next() as Buffer[];
    expect(first.map(String)).toEqual(["SET", "a", "1"]);
    expect(second.map(String)).toEqual(["SET", "b", "2"]);
    expect(parser.next()).toBeNull();
  });

  it("reports bufferedBytes and drops the consumed chunk", () => {
    const parser = new RespParser();
    parser.feed(Buffer.from("*1\r\n$4\r\nPI"));
    expect(parser.next()).toBeNull();
    expect(parser.bufferedBytes).toBe(2); // the headers are consumed; "PI" waits
    parser.feed(Buffer.from("NG\r\n"));
    expect((parser.next() as Buffer[]).map(String)).toEqual(["PING"]);
    expect(parser.bufferedBytes).toBe(0);
  });
});

describe("RespParser inline", () => {
  it("splits on whitespace, ignores empty lines, takes LF or CRLF", () => {
    expect(one("\r\n\nSET  a   b\r\n  \nGET a\n")).toEqual([
      ["SET", "a", "b"],
      ["GET", "a"],
    ]);
  });

  it("handles quotes like sdssplitargs", () => {
    expect(one('SET "a b" "c\\n\\x41\\"d"\r\n')).toEqual([["SET", "a b", 'c\nA"d']]);
    expect(one("SET 'it\\'s' 'x\\ny'\r\n")).toEqual([["SET", "it's", "x\\ny"]]);
    expect(one('SET a"b c" ""\r\n')).toEqual([["SET", "ab c", ""]]);
  });

  it("rejects unbalanced quotes", () => {
    const error = { error: "Protocol error: unbalanced quotes in request" };
    expect(one('SET "a b\r\n')).toEqual([error]);
    expect(one('SET "a"b\r\n')).toEqual([error]);
    expect(one("SET 'a\r\n")).toEqual([error]);
  });

  it("rejects a line over inlineBytesMax, with or without its newline", () => {
    const error = { error: "Protocol error: too big inline request" };
    expect(one("x".repeat(101), { inlineBytesMax: 100 })).toEqual([error]);
    expect(one(`${"x".repeat(101)}\n`, { inlineBytesMax: 100 })).toEqual([error]);
    expect(one(`${"x".repeat(100)}\n`, { inlineBytesMax: 100 })).toEqual([["x".repeat(100)]]);
    expect(one("x".repeat(64 * 1024 + 1))).toEqual([error]);
  });
});

describe("RespParser protocol errors and limits", () => {
  const MULTIBULK = { error: "Protocol error: invalid multibulk length" };
  const BULK = { error: "Protocol error: invalid bulk length" };

  it("rejects bad multibulk lengths", () => {
    for (const text of [
      "*x\r\n",
      "*01\r\n",
      "*+1\r\n",
      "*1 \r\n",
      "*-0\r\n",
      "*\r\n",
      "*1234567890123456\r\n",
    ]) {
      expect(one(text), text).toEqual([MULTIBULK]);
    }
    expect(one("*5\r\n", { argsMax: 4 })).toEqual([MULTIBULK]);
    expect(one(`*${RESP_PARSER_DEFAULTS.argsMax + 1}\r\n`)).toEqual([MULTIBULK]);
  });

  it("rejects a missing '$'", () => {
    expect(one("*1\r\nx3\r\n")).toEqual([{ error: "Protocol error: expected '$', got 'x'" }]);
  });

  it("rejects bad bulk lengths, and one over bulkBytesMax as soon as it is declared", () => {
    for (const text of ["*1\r\n$x\r\n", "*1\r\n$-1\r\n", "*1\r\n$01\r\n", "*1\r\n$\r\n"]) {
      expect(one(text), text).toEqual([BULK]);
    }
    expect(one("*1\r\n$11\r\n", { bulkBytesMax: 10 })).toEqual([BULK]);
    expect(one(`*1\r\n$${8 * 1024 * 1024 + 1}\r\n`)).toEqual([BULK]);
    expect(one(`*1\r\n$${8 * 1024 * 1024}\r\n`)).toEqual([]);
  });

  it("rejects a request over requestBytesMax as soon as its lengths say so", () => {
    // Each argument also counts ARG_CHARGE_BYTES (64): 4 + 6 + 102 + 64 = 176 for the first.
    const options = { bulkBytesMax: 100, requestBytesMax: 300 };
    expect(one("*3\r\n$100\r\n", options)).toEqual([]);
    const text = `*3\r\n$60\r\n${"a".repeat(60)}\r\n$60\r\n${"b".repeat(60)}\r\n$60\r\n`;
    expect(one(text, options)).toEqual([{ error: "Protocol error: too big request" }]);
  });

  it("counts every argument against requestBytesMax, so empty ones cannot pile up heap", () => {
    // A million empty arguments are 6 MiB on the wire but held ~113 MiB of heap (found by fuzzing).
    const parser = new RespParser({ requestBytesMax: 64 * 1024, bulkBytesMax: 1024 });
    parser.feed(Buffer.from(`*1048576\r\n${"$0\r\n\r\n".repeat(2000)}`));
    expect(parser.next()).toEqual({ error: "Protocol error: too big request" });
  });

  it("keeps returning the error and ignores later input", () => {
    const parser = new RespParser();
    parser.feed(Buffer.from("*x\r\n"));
    expect(parser.next()).toEqual(MULTIBULK);
    parser.feed(Buffer.from("PING\r\n"));
    expect(parser.next()).toEqual(MULTIBULK);
    expect(parser.bufferedBytes).toBe(0);
  });

  it("validates its options, naming the option", () => {
    expect(() => new RespParser({ argsMax: 0 })).toThrow(/argsMax/);
    expect(() => new RespParser({ bulkBytesMax: 100, requestBytesMax: 50 })).toThrow(
      /bulkBytesMax/,
    );
  });

  it("never throws on random bytes (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
        parseAll(
          chunks.map((c) => Buffer.from(c)),
          { inlineBytesMax: 64, bulkBytesMax: 64, requestBytesMax: 256 },
        );
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});

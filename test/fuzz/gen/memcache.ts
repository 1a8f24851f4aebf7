/**
 * Valid memcached text-protocol traffic: client requests (classic and meta commands, data blocks,
 * noreply and `q`), and replies paired with the frame the reply cutter expects for them.
 */
import fc from "fast-check";
import type { ReplyFrame } from "../../../src/app/program/codec.ts";

const keyChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789:_-.");
const key = fc.string({ unit: keyChar, minLength: 1, maxLength: 12 });
const data = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const u32 = fc.nat().map(String);
const exptime = fc.integer({ min: -1000, max: 100_000 }).map(String);
const metaFlags = fc.array(
  fc.constantFrom("v", "t", "f", "c", "k", "q", "O123", "T30", "N5", "s"),
  {
    maxLength: 4,
  },
);

/** One request line (without its line end) and its data block, if any. */
export interface MemcacheRequest {
  readonly line: string;
  readonly data: string | null;
  /** "\r\n" or "\n" (memcached takes both for the line; a data block always ends with CRLF). */
  readonly eol: string;
}

const eol = fc.constantFrom("\r\n", "\r\n", "\n");
const noreply = fc.constantFrom("", " noreply");

const storage = fc
  .tuple(
    fc.constantFrom("set", "add", "replace", "append", "prepend"),
    key,
    u32,
    exptime,
    data,
    noreply,
    eol,
  )
  .map(([name, k, flags, exp, d, nr, e]) => ({
    line: `${name} ${k} ${flags} ${exp} ${d.length}${nr}`,
    data: d,
    eol: e,
  }));

const cas = fc
  .tuple(key, u32, exptime, data, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), noreply, eol)
  .map(([k, flags, exp, d, unique, nr, e]) => ({
    line: `cas ${k} ${flags} ${exp} ${d.length} ${unique}${nr}`,
    data: d,
    eol: e,
  }));

const metaSet = fc.tuple(key, data, metaFlags, eol).map(([k, d, flags, e]) => ({
  line: ["ms", k, String(d.length), ...flags].join(" "),
  data: d,
  eol: e,
}));

const lineOnly = (line: fc.Arbitrary<string>): fc.Arbitrary<MemcacheRequest> =>
  fc.tuple(line, eol).map(([l, e]) => ({ line: l, data: null, eol: e }));

const keys = fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => ks.join(" "));

export const memcacheRequestArb: fc.Arbitrary<MemcacheRequest> = fc.oneof(
  storage,
  cas,
  metaSet,
  lineOnly(fc.tuple(fc.constantFrom("get", "gets"), keys).map(([n, ks]) => `${n} ${ks}`)),
  lineOnly(
    fc.tuple(fc.constantFrom("gat", "gats"), exptime, keys).map(([n, t, ks]) => `${n} ${t} ${ks}`),
  ),
  lineOnly(
    fc
      .tuple(fc.constantFrom("delete", "touch"), key, noreply)
      .map(([n, k, nr]) => `${n} ${k}${nr}`),
  ),
  lineOnly(
    fc
      .tuple(fc.constantFrom("incr", "decr"), key, u32, noreply)
      .map(([n, k, v, nr]) => `${n} ${k} ${v}${nr}`),
  ),
  lineOnly(
    fc
      .tuple(fc.constantFrom("mg", "md", "ma", "me"), key, metaFlags)
      .map(([n, k, f]) => [n, k, ...f].join(" ")),
  ),
  lineOnly(
    fc.constantFrom(
      "version",
      "stats",
      "flush_all",
      "flush_all noreply",
      "verbosity 1",
      "mn",
      "quit",
    ),
  ),
);

export const memcacheRequestsArb = fc.array(memcacheRequestArb, { minLength: 1, maxLength: 5 });

export function encodeMemcacheRequests(requests: readonly MemcacheRequest[]): Buffer {
  const text = requests
    .map((r) => `${r.line}${r.eol}${r.data === null ? "" : `${r.data}\r\n`}`)
    .join("");
  return Buffer.from(text, "latin1");
}

/** A reply and the frame of the request it answers. */
export interface MemcacheReply {
  readonly frame: Exclude<ReplyFrame, "resp" | "raw" | "none">;
  readonly bytes: string;
  /** What the cutter relays: `bytes`, less the `MN` line of a fenced reply. */
  readonly relayed: string;
}

const value = fc
  .tuple(key, u32, data, fc.option(fc.bigInt({ min: 0n, max: 99n }), { nil: null }))
  .map(
    ([k, flags, d, unique]) =>
      `VALUE ${k} ${flags} ${d.length}${unique === null ? "" : ` ${unique}`}\r\n${d}\r\n`,
  );
const errorLine = fc.constantFrom(
  "ERROR\r\n",
  "CLIENT_ERROR bad command line format\r\n",
  "SERVER_ERROR out of memory\r\n",
);
const metaReply = fc.oneof(
  fc.constantFrom("HD\r\n", "NS\r\n", "EX\r\n", "NF\r\n", "EN\r\n", "HD c123 t-1\r\n"),
  data.map((d) => `VA ${d.length} f0\r\n${d}\r\n`),
);

const reply = (frame: MemcacheReply["frame"], bytes: string): MemcacheReply => ({
  frame,
  bytes,
  relayed: bytes,
});

export const memcacheReplyArb: fc.Arbitrary<MemcacheReply> = fc.oneof(
  fc
    .constantFrom("STORED\r\n", "NOT_STORED\r\n", "DELETED\r\n", "42\r\n", "VERSION 1.6.21\r\n")
    .map((b) => reply("line", b)),
  errorLine.map((b) => reply("line", b)),
  fc
    .tuple(fc.array(value, { maxLength: 3 }), fc.constantFrom("END\r\n", "SERVER_ERROR x\r\n"))
    .map(([vs, end]) => reply("values", vs.join("") + end)),
  fc
    .array(fc.tuple(fc.constantFrom("STAT", "ITEM", "PREFIX"), key, u32), {
      minLength: 1,
      maxLength: 4,
    })
    .map((stats) =>
      reply("stats", `${stats.map(([p, k, v]) => `${p} ${k} ${v}\r\n`).join("")}END\r\n`),
    ),
  fc.constantFrom("RESET\r\n", "OK\r\n", "ERROR\r\n").map((b) => reply("stats", b)),
  metaReply.map((b) => reply("meta", b)),
  fc.array(fc.oneof(metaReply, errorLine), { maxLength: 3 }).map((lines) => {
    const relayed = lines.join("");
    return { frame: "fenced" as const, bytes: `${relayed}MN\r\n`, relayed };
  }),
);

export const memcacheRepliesArb = fc.array(memcacheReplyArb, { minLength: 1, maxLength: 5 });

export function encodeMemcacheReplies(replies: readonly MemcacheReply[]): Buffer {
  return Buffer.from(replies.map((r) => r.bytes).join(""), "latin1");
}

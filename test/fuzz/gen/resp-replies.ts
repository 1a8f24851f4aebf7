/**
 * Valid RESP2 and RESP3 replies, nested, as the copy of a server would send them: each with its
 * encoding (latin1 text) and whether its outermost value (past any attribute) is a `>` push.
 */
import fc from "fast-check";

export interface RespReply {
  readonly bytes: string;
  readonly push: boolean;
}

const byteChar = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const lineChar = fc.constantFrom(..."abcXYZ 019.-_:+*$>%|!=#(,");
const body = fc.string({
  unit: fc.oneof(byteChar, fc.constantFrom("\r", "\n", "\r\n")),
  maxLength: 40,
});
const line = fc.string({ unit: lineChar, maxLength: 20 });

const reply = (bytes: string): RespReply => ({ bytes, push: false });

const scalar: fc.Arbitrary<RespReply> = fc.oneof(
  line.map((s) => reply(`+${s}\r\n`)),
  line.map((s) => reply(`-ERR ${s}\r\n`)),
  fc.integer().map((n) => reply(`:${n}\r\n`)),
  body.map((s) => reply(`$${s.length}\r\n${s}\r\n`)),
  fc.constantFrom(reply("$-1\r\n"), reply("*-1\r\n"), reply("_\r\n"), reply("#t\r\n")),
  fc.double({ noNaN: true }).map((d) => reply(`,${d}\r\n`)),
  fc.bigInt().map((n) => reply(`(${n}\r\n`)),
  body.map((s) => reply(`!${s.length}\r\n${s}\r\n`)),
  body.map((s) => reply(`=${s.length + 4}\r\ntxt:${s}\r\n`)),
);

const { value } = fc.letrec<{
  value: RespReply;
  aggregate: RespReply;
  map: RespReply;
  annotated: RespReply;
}>((tie) => ({
  value: fc.oneof({ depthSize: "small" }, scalar, tie("aggregate"), tie("map"), tie("annotated")),
  aggregate: fc
    .tuple(fc.constantFrom("*", "~", ">"), fc.array(tie("value"), { maxLength: 4 }))
    .map(([type, items]) => ({
      bytes: `${type}${items.length}\r\n${items.map((i) => i.bytes).join("")}`,
      push: type === ">",
    })),
  map: fc
    .array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 })
    .map((pairs) =>
      reply(`%${pairs.length}\r\n${pairs.map(([k, v]) => k.bytes + v.bytes).join("")}`),
    ),
  // An attribute belongs to the value after it: one reply, a push when what it annotates is.
  annotated: fc
    .tuple(fc.array(fc.tuple(scalar, tie("value")), { maxLength: 2 }), tie("value"))
    .map(([pairs, annotated]) => ({
      bytes: `|${pairs.length}\r\n${pairs.map(([k, v]) => k.bytes + v.bytes).join("")}${annotated.bytes}`,
      push: annotated.push,
    })),
}));

export const respRepliesArb: fc.Arbitrary<readonly RespReply[]> = fc.array(value, {
  minLength: 1,
  maxLength: 6,
});

export function encodeRespReplies(replies: readonly RespReply[]): Buffer {
  return Buffer.from(replies.map((r) => r.bytes).join(""), "latin1");
}

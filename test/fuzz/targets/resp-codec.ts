/**
 * The RESP codec of transparent mode (src/app/program/resp-codec.ts): client requests cut and
 * re-encoded, and the copy's replies cut, both from mutated streams in any chunking.
 */
import fc from "fast-check";
import type { CutReply, CutRequest } from "../../../src/app/program/codec.ts";
import {
  RESP_CODEC_LIMITS,
  type RespCodecLimits,
  respCodec,
  respRequest,
} from "../../../src/app/program/resp-codec.ts";
import { isProtocolError, RespParser } from "../../../src/app/resp-parser.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { drive, summary } from "../cutters.ts";
import { encodeRespReplies, type RespReply, respRepliesArb } from "../gen/resp-replies.ts";
import {
  encodeRespCommands,
  type RespCommand,
  respCommandsArb,
  SMALL_LIMITS,
} from "../gen/resp-requests.ts";
import { chunk, chunkingArb, fuzzBytes, largestChunk } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";
import { allocationBound } from "./resp-parser.ts";

const latin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");

/** Small limits: replies reach the line, size and depth limits. */
const SMALL_REPLY_LIMITS: RespCodecLimits = Object.freeze({
  request: SMALL_LIMITS,
  replyBytesMax: 16 * 1024,
  replyLineBytesMax: 256,
  replyDepthMax: 6,
});

const limitsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(SMALL_REPLY_LIMITS) },
  { weight: 1, arbitrary: fc.constant(RESP_CODEC_LIMITS) },
);

/** A cut request's bytes are one canonical multibulk: parsed again and re-cut, the same bytes. */
function checkCanonical(request: CutRequest): void {
  const parser = new RespParser();
  parser.feed(Buffer.from(request.bytes));
  const args = parser.next();
  check(args !== null && !isProtocolError(args), "a cut request parses again");
  check(parser.next() === null, "a cut request is one command");
  const again = respRequest(args);
  check(Buffer.compare(again.bytes, request.bytes) === 0, "a cut request is canonical");
  check(again.name === request.name, "name");
  check(request.name === request.name.toLowerCase(), "the name is lower-case");
  check(request.replies >= 1 && request.replyFrame === "resp", "one resp reply or more");
}

export const respCodecRequestsTarget = syncTarget({
  name: "resp-codec-requests",
  summary: [
    "respCodec().requests() over mutated request streams, whole and chunked",
    "never throws; CodecError values with declared codes, final and sticky, -ERR client reply",
    "every cut request is one canonical multibulk (re-parsed and re-encoded: the same bytes)",
    "same cuts however chunked; valid streams: one cut per command, in order; allocation bound",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly RespCommand[]>(respCommandsArb, encodeRespCommands),
    chunking: chunkingArb,
  }),
  check: ({ input, chunking }) => {
    const codec = respCodec({ request: SMALL_LIMITS });
    const chunks = chunk(input.bytes, chunking);
    const { result, largestBytes } = measureAllocations(() => drive(codec.requests(), chunks));
    const chunkBytesMax = largestChunk(chunks);
    // The parser's own bound, plus the re-encoded copy of one whole request.
    const bound =
      allocationBound(SMALL_LIMITS, chunkBytesMax) + SMALL_LIMITS.requestBytesMax * 2 + 64;
    check(largestBytes <= bound, `allocated ${largestBytes} bytes, above ${bound}`);
    for (const cut of result.results) {
      check(!("code" in cut), "RESP request errors are all final");
      checkCanonical(cut);
    }
    if (result.final !== null) {
      check(
        latin1(result.final.clientReply ?? new Uint8Array()).startsWith("-ERR Protocol error"),
        "client reply",
      );
    }
    const show = (r: CutRequest) => latin1(r.bytes);
    const whole = drive(codec.requests(), [input.bytes]);
    check(summary(whole, show) === summary(result, show), "chunking changed the cuts");
    tally(`${input.origin}: ${result.final?.code ?? "ok"}`);
    if (input.value !== undefined && result.final === null) {
      check(result.results.length === input.value.length, "one cut per valid command");
    }
  },
});

export const respCodecRepliesTarget = syncTarget({
  name: "resp-codec-replies",
  summary: [
    "respCodec().replies() over mutated RESP2/RESP3 reply streams (nested, attributes, pushes)",
    "never throws; final CodecError with a declared code, sticky; replies are the stream's bytes in order",
    "held bytes <= replyBytesMax + replyLineBytesMax; allocations <= 2x the bytes received",
    "same cuts however chunked; valid streams cut into exactly the replies sent, push flags right",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly RespReply[]>(respRepliesArb, encodeRespReplies),
    chunking: chunkingArb,
    limits: limitsArb,
  }),
  check: ({ input, chunking, limits }) => {
    const codec = respCodec(limits);
    const chunks = chunk(input.bytes, chunking);
    const { result, largestBytes } = measureAllocations(() => drive(codec.replies(), chunks));
    const bound = Math.max(16 * 1024, 2 * input.bytes.length);
    check(
      largestBytes <= bound,
      `allocated ${largestBytes} bytes for ${input.bytes.length} received`,
    );
    const heldBound = limits.replyBytesMax + limits.replyLineBytesMax;
    check(result.heldMax <= heldBound, `held ${result.heldMax} bytes, above ${heldBound}`);
    const cuts = result.results as CutReply[];
    const joined = Buffer.concat(cuts.map((r) => r.bytes));
    check(
      Buffer.compare(joined, input.bytes.subarray(0, joined.length)) === 0,
      "replies are consecutive slices of the stream",
    );
    for (const cut of cuts) check(cut.bytes.byteLength <= limits.replyBytesMax, "reply size");
    const show = (r: CutReply) => `${r.push} ${latin1(r.bytes)}`;
    const whole = drive(codec.replies(), [input.bytes]);
    check(summary(whole, show) === summary(result, show), "chunking changed the cuts");
    tally(`${input.origin}: ${result.final?.code ?? "ok"}`);
    const sent = input.value;
    if (sent === undefined || limits !== RESP_CODEC_LIMITS) return;
    check(result.final === null, `valid replies refused: ${result.final?.message}`);
    check(
      JSON.stringify(cuts.map((r) => [latin1(r.bytes), r.push])) ===
        JSON.stringify(sent.map((r) => [r.bytes, r.push])),
      "valid replies cut as sent",
    );
  },
});

/**
 * The memcached codec of transparent mode (src/app/program/memcache-codec.ts): client requests cut
 * and canonicalized, and the copy's replies cut by the frames expected, from mutated streams in
 * any chunking.
 */
import fc from "fast-check";
import type { CutReply, CutRequest, ReplyFrame } from "../../../src/app/program/codec.ts";
import {
  MEMCACHE_CODEC_LIMITS,
  type MemcacheCodecLimits,
  memcacheCodec,
} from "../../../src/app/program/memcache-codec.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { drive, summary } from "../cutters.ts";
import {
  encodeMemcacheReplies,
  encodeMemcacheRequests,
  type MemcacheReply,
  type MemcacheRequest,
  memcacheRepliesArb,
  memcacheRequestsArb,
} from "../gen/memcache.ts";
import { chunk, chunkingArb, fuzzBytes, largestChunk } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const latin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");

const SMALL_LIMITS: MemcacheCodecLimits = Object.freeze({
  lineBytesMax: 256,
  keyBytesMax: 32,
  valueBytesMax: 4096,
  replyLineBytesMax: 512,
  replyBytesMax: 16 * 1024,
  pendingRepliesMax: 64,
});

const limitsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(SMALL_LIMITS) },
  { weight: 1, arbitrary: fc.constant(MEMCACHE_CODEC_LIMITS) },
);

const FENCE = "mn\r\n";

/** A cut request is canonical: its bytes (less the fence a quiet one gets) cut again the same. */
function checkCanonical(request: CutRequest, limits: MemcacheCodecLimits): void {
  const text = latin1(request.bytes);
  const fenced = request.replyFrame === "fenced";
  check(!fenced || text.endsWith(FENCE), "a quiet request ends with the mn fence");
  const unfenced = fenced
    ? request.bytes.subarray(0, request.bytes.byteLength - FENCE.length)
    : request.bytes;
  const again = drive(memcacheCodec(limits).requests(), [unfenced]);
  check(again.final === null && again.results.length === 1, "a cut request cuts again as one");
  const cut = again.results[0] as CutRequest;
  check(!("code" in cut), "a cut request is not refused when cut again");
  check(latin1(cut.bytes) === text, "a cut request is canonical");
  check(cut.name === request.name && cut.replyFrame === request.replyFrame, "name and frame");
}

export const memcacheRequestsTarget = syncTarget({
  name: "memcache-codec-requests",
  summary: [
    "memcacheCodec().requests() over mutated classic and meta request streams, whole and chunked",
    "never throws; refusals and final errors as CodecError with a declared code and client reply",
    "every cut request is canonical (cut again: the same bytes, name and reply frame)",
    "held <= max(lineBytesMax, valueBytesMax) + 2; allocation bound; same cuts however chunked",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly MemcacheRequest[]>(memcacheRequestsArb, encodeMemcacheRequests),
    chunking: chunkingArb,
    limits: limitsArb,
  }),
  check: ({ input, chunking, limits }) => {
    const chunks = chunk(input.bytes, chunking);
    const chunkBytesMax = largestChunk(chunks);
    const codec = memcacheCodec(limits);
    const { result, largestBytes } = measureAllocations(() => drive(codec.requests(), chunks));
    const unreadMax = Math.max(limits.lineBytesMax, limits.valueBytesMax) + 2;
    const bound = Math.max(
      16 * 1024,
      limits.lineBytesMax + limits.valueBytesMax + 16,
      2 * (unreadMax + chunkBytesMax),
    );
    check(largestBytes <= bound, `allocated ${largestBytes} bytes, above ${bound}`);
    check(result.heldMax <= unreadMax, `held ${result.heldMax} bytes, above ${unreadMax}`);
    let refused = 0;
    for (const cut of result.results) {
      if ("code" in cut) {
        refused++;
        check(cut.clientReply !== null && latin1(cut.clientReply).endsWith("\r\n"), "reply");
        continue;
      }
      checkCanonical(cut, limits);
    }
    const show = (r: CutRequest) => `${r.replyFrame} ${latin1(r.bytes)}`;
    const whole = drive(codec.requests(), [input.bytes]);
    check(summary(whole, show) === summary(result, show), "chunking changed the cuts");
    tally(`${input.origin}: ${result.final?.code ?? (refused > 0 ? "refused" : "ok")}`);
    const sent = input.value;
    if (sent === undefined) return;
    check(result.final === null && refused === 0, "valid requests are all cut");
    check(result.results.length === sent.length, "one cut per valid request");
    sent.forEach((request, i) => {
      const cut = result.results[i] as CutRequest;
      check(cut.name === request.line.split(" ")[0], "valid request names in order");
      if (request.data !== null)
        check(latin1(cut.bytes).includes(`\r\n${request.data}\r\n`), "data");
    });
  },
});

const frameArb: fc.Arbitrary<MemcacheReply["frame"]> = fc.constantFrom(
  "line",
  "values",
  "stats",
  "meta",
  "fenced",
);

function framed(replyFrame: ReplyFrame): CutRequest {
  return { bytes: Buffer.alloc(0), replies: 1, replyFrame, name: "x" };
}

export const memcacheRepliesTarget = syncTarget({
  name: "memcache-codec-replies",
  summary: [
    "memcacheCodec().replies() over mutated reply streams, for the frames of the requests sent",
    "never throws; a final CodecError with a declared code, sticky; at most one reply per frame",
    "each reply is the stream's next bytes (a fenced one less its MN line); held and allocation bounds",
    "same cuts however chunked; valid replies cut exactly as sent",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly MemcacheReply[]>(memcacheRepliesArb, encodeMemcacheReplies),
    frames: fc.array(frameArb, { maxLength: 6 }),
    chunking: chunkingArb,
    limits: limitsArb,
  }),
  check: ({ input, frames: generated, chunking, limits }) => {
    const frames = input.value?.map((r) => r.frame) ?? generated;
    const codec = memcacheCodec(limits);
    const cutter = () => {
      const replies = codec.replies();
      for (const frame of frames) replies.expect(framed(frame));
      return replies;
    };
    const chunks = chunk(input.bytes, chunking);
    const { result, largestBytes } = measureAllocations(() => drive(cutter(), chunks));
    const bound = Math.max(16 * 1024, 2 * input.bytes.length);
    check(
      largestBytes <= bound,
      `allocated ${largestBytes} bytes for ${input.bytes.length} received`,
    );
    const heldBound = limits.replyBytesMax + limits.replyLineBytesMax;
    check(result.heldMax <= heldBound, `held ${result.heldMax} bytes, above ${heldBound}`);
    check(result.results.length <= frames.length, "no more replies than requests");
    let offset = 0;
    result.results.forEach((r, i) => {
      check(!("code" in r), "reply errors are all final");
      const reply = r as CutReply;
      const expected = input.bytes.subarray(offset, offset + reply.bytes.byteLength);
      check(
        Buffer.compare(Buffer.from(reply.bytes), expected) === 0,
        "replies are the stream's bytes",
      );
      offset += reply.bytes.byteLength;
      if (frames[i] === "fenced") {
        check(latin1(input.bytes.subarray(offset, offset + 4)) === "MN\r\n", "fenced: MN follows");
        offset += 4;
      }
    });
    const show = (r: CutReply) => latin1(r.bytes);
    const whole = drive(cutter(), [input.bytes]);
    check(summary(whole, show) === summary(result, show), "chunking changed the cuts");
    tally(`${input.origin}: ${result.final?.code ?? "ok"}`);
    const sent = input.value;
    if (sent === undefined) return;
    check(result.final === null, `valid replies refused: ${result.final?.message}`);
    check(
      JSON.stringify(result.results.map((r) => latin1((r as CutReply).bytes))) ===
        JSON.stringify(sent.map((r) => r.relayed)),
      "valid replies cut as sent",
    );
  },
});

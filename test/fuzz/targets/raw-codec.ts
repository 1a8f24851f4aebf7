/**
 * The raw codec of transparent mode (src/app/program/raw-codec.ts): whatever arrives is cut into
 * pieces of at most chunkBytesMax, in order, and nothing is lost, added or refused.
 */
import fc from "fast-check";
import type { CutReply, CutRequest } from "../../../src/app/program/codec.ts";
import { rawCodec } from "../../../src/app/program/raw-codec.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { drive } from "../cutters.ts";
import { chunk, chunkingArb } from "../mutate.ts";
import { check, syncTarget } from "../target.ts";

export const rawCodecTarget = syncTarget({
  name: "raw-codec",
  summary: [
    "rawCodec().requests() and .replies() over random bytes in any chunking",
    "never throws, never refuses; the cuts joined are the bytes received, each <= chunkBytesMax",
    "allocates nothing (cuts are views)",
  ],
  arbitrary: fc.record({
    bytes: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
    chunking: chunkingArb,
    chunkBytesMax: fc.integer({ min: 1, max: 128 }),
  }),
  check: ({ bytes, chunking, chunkBytesMax }) => {
    const codec = rawCodec({ chunkBytesMax });
    const chunks = chunk(bytes, chunking);
    const { result: requests, largestBytes } = measureAllocations(() =>
      drive(codec.requests(), chunks),
    );
    check(largestBytes === 0, `allocated ${largestBytes} bytes`);
    check(requests.final === null, "raw never fails");
    const cuts = requests.results as CutRequest[];
    for (const cut of cuts) {
      check(!("code" in cut), "raw never refuses");
      check(cut.bytes.byteLength >= 1 && cut.bytes.byteLength <= chunkBytesMax, "cut size");
    }
    check(
      Buffer.compare(Buffer.concat(cuts.map((c) => c.bytes)), bytes) === 0,
      "requests lossless",
    );
    const replies = drive(codec.replies(), chunks);
    const joined = Buffer.concat((replies.results as CutReply[]).map((r) => r.bytes));
    check(replies.final === null && Buffer.compare(joined, bytes) === 0, "replies lossless");
  },
});

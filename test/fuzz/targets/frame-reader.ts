/**
 * The TCP stream cutter (src/transport/frame-reader.ts FrameReader): length-prefixed frames cut
 * from a byte stream, before anything is authenticated, so from anyone who can connect.
 */
import fc from "fast-check";
import { FRAME_BYTES_MIN, LENGTH_PREFIX_BYTES } from "../../../src/transport/frame.ts";
import { FrameReader } from "../../../src/transport/frame-reader.ts";
import { DROP_REASONS } from "../../../src/transport/transport.ts";
import { measureAllocations } from "../alloc-probe.ts";
import { chunk, chunkingArb, fuzzBytes } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const FRAME_BYTES_MAX = FRAME_BYTES_MIN + 200;

const framesArb = fc.array(
  fc.uint8Array({ minLength: FRAME_BYTES_MIN, maxLength: FRAME_BYTES_MAX }),
  { minLength: 1, maxLength: 4 },
);

function encodeStream(frames: readonly Uint8Array[]): Buffer {
  return Buffer.concat(
    frames.flatMap((frame) => {
      const prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);
      prefix.writeUInt32LE(frame.byteLength);
      return [prefix, Buffer.from(frame)];
    }),
  );
}

export const frameReaderTarget = syncTarget({
  name: "frame-reader",
  summary: [
    "FrameReader.push/next over mutated streams of length-prefixed frames, in any chunking",
    "never throws; a frame is [FRAME_BYTES_MIN, frameBytesMax] bytes, the stream's next bytes after its prefix",
    "a bad prefix is a declared drop reason, before any byte of the frame is waited for or allocated",
    "allocates at most frameBytesMax; valid streams give back their frames",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly Uint8Array[]>(framesArb, encodeStream),
    chunking: chunkingArb,
  }),
  check: ({ input, chunking }) => {
    const reader = new FrameReader(FRAME_BYTES_MAX);
    const frames: Buffer[] = [];
    let dropped: string | null = null;
    const { largestBytes } = measureAllocations(() => {
      for (const piece of chunk(input.bytes, chunking)) {
        reader.push(piece);
        for (let next = reader.next(); next !== null && dropped === null; next = reader.next()) {
          if (typeof next === "string") dropped = next;
          else frames.push(Buffer.from(next));
          check(frames.length <= input.bytes.length / FRAME_BYTES_MIN, "next() does not terminate");
        }
        if (dropped !== null) break;
      }
    });
    check(largestBytes <= FRAME_BYTES_MAX, `allocated ${largestBytes} bytes`);
    tally(`${input.origin}: ${dropped ?? "ok"}`);
    if (dropped !== null)
      check(DROP_REASONS.includes(dropped as never), `undeclared reason ${dropped}`);
    let offset = 0;
    for (const frame of frames) {
      check(frame.length >= FRAME_BYTES_MIN && frame.length <= FRAME_BYTES_MAX, "frame size");
      check(input.bytes.readUInt32LE(offset) === frame.length, "the prefix gives the length");
      offset += LENGTH_PREFIX_BYTES;
      check(
        Buffer.compare(frame, input.bytes.subarray(offset, offset + frame.length)) === 0,
        "frame bytes",
      );
      offset += frame.length;
    }
    if (input.value !== undefined) {
      check(dropped === null && frames.length === input.value.length, "valid frames round-trip");
    }
  },
});

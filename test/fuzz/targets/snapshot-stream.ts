/**
 * The snapshot stream's reader (src/transport/snapshot-stream-frame.ts StreamOpener, behind the
 * FrameReader that cuts the TCP stream): what an authenticated peer's connection, or a host on the
 * path injecting bytes into it, can make the receiver read. Streams of frames sealed in order are
 * mutated (bit flips, truncation, splices of another stream, length fields) and cut anyhow.
 */
import fc from "fast-check";
import { LENGTH_PREFIX_BYTES } from "../../../src/transport/frame.ts";
import { FrameReader } from "../../../src/transport/frame-reader.ts";
import {
  DoneOutcome,
  deriveStreamKeys,
  STREAM_FRAME_BYTES_MIN,
  type StreamFrame,
  StreamFrameType,
  StreamOpener,
  StreamSealer,
} from "../../../src/transport/snapshot-stream-frame.ts";
import { chunk, chunkingArb, fuzzBytes } from "../mutate.ts";
import { check, syncTarget, tally } from "../target.ts";

const KEYS = deriveStreamKeys(
  new TextEncoder().encode("fuzz-snapshot-stream-key-0123456789"),
  new Uint8Array(32).fill(7),
  new Uint8Array(32),
);
const CHUNK_BYTES_MAX = 64;
const PROBLEMS = ["malformed", "auth", "replay", "oversize"];

type Spec =
  | {
      readonly kind: "offer";
      readonly slot: number;
      readonly total: number;
      readonly digest: Uint8Array;
      readonly head: Uint8Array;
    }
  | { readonly kind: "resume" | "ack"; readonly offset: number }
  | { readonly kind: "chunk"; readonly offset: number; readonly data: Uint8Array }
  | { readonly kind: "done"; readonly outcome: 0 | 1 | 2 };

const u64 = fc.oneof(fc.nat(), fc.constantFrom(0, 1, 2 ** 32, 2 ** 53 - 1));
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({
    kind: fc.constant("offer" as const),
    slot: u64,
    total: u64.map((n) => Math.max(1, n)),
    digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    head: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({ kind: fc.constantFrom("resume" as const, "ack" as const), offset: u64 }),
  fc.record({
    kind: fc.constant("chunk" as const),
    offset: u64,
    data: fc.uint8Array({ minLength: 1, maxLength: CHUNK_BYTES_MAX }),
  }),
  fc.record({
    kind: fc.constant("done" as const),
    outcome: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
  }),
);

function seal(sealer: StreamSealer, spec: Spec): Buffer {
  switch (spec.kind) {
    case "offer":
      return sealer.offer(spec.slot, spec.total, spec.digest, spec.head);
    case "resume":
      return sealer.resume(spec.offset);
    case "ack":
      return sealer.ack(spec.offset);
    case "chunk":
      return sealer.chunk(spec.offset, spec.data);
    case "done":
      return sealer.done(spec.outcome);
  }
}

/** The frame `opened` sealed again at position `index`: what a genuine sender wrote there. */
function resealed(opened: StreamFrame, index: number): Buffer {
  const sealer = new StreamSealer(KEYS.initiator);
  for (let i = 0; i < index; i++) sealer.done(DoneOutcome.Delivered);
  switch (opened.type) {
    case StreamFrameType.Offer:
      return sealer.offer(opened.slot, opened.totalBytes, opened.digest, opened.head);
    case StreamFrameType.Resume:
      return sealer.resume(opened.offset);
    case StreamFrameType.Ack:
      return sealer.ack(opened.offset);
    case StreamFrameType.Chunk:
      return sealer.chunk(opened.offset, opened.data);
    case StreamFrameType.Done:
      return sealer.done(opened.outcome);
  }
}

function encodeStream(specs: readonly Spec[]): Buffer {
  const sealer = new StreamSealer(KEYS.initiator);
  return Buffer.concat(specs.map((spec) => seal(sealer, spec)));
}

export const snapshotStreamTarget = syncTarget({
  name: "snapshot-stream",
  summary: [
    "FrameReader + StreamOpener over mutated streams of sealed snapshot-stream frames, in any chunking",
    "never throws; a refusal is one of malformed, auth, replay, oversize",
    "every frame accepted is byte for byte the frame a holder of the key sealed at that position",
    "CHUNK data is 1..chunkBytesMax bytes; valid streams give back their frames in order",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly Spec[]>(
      fc.array(specArb, { minLength: 1, maxLength: 5 }),
      encodeStream,
    ),
    chunking: chunkingArb,
  }),
  check: ({ input, chunking }) => {
    const opener = new StreamOpener(KEYS.initiator, CHUNK_BYTES_MAX);
    const reader = new FrameReader(opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    const opened: StreamFrame[] = [];
    let problem: string | null = null;
    for (const piece of chunk(input.bytes, chunking)) {
      reader.push(piece);
      while (problem === null) {
        const next = reader.next();
        if (next === null) break;
        if (typeof next === "string") {
          problem = next;
          break;
        }
        const frame = opener.open(next);
        if (typeof frame === "string") {
          problem = frame;
          break;
        }
        const index = opened.length;
        opened.push(frame);
        const genuine = resealed(frame, index);
        check(
          genuine.subarray(LENGTH_PREFIX_BYTES).equals(next),
          `frame ${index} accepted but not what the key holder sealed there`,
        );
        if (frame.type === StreamFrameType.Chunk) {
          check(
            frame.data.byteLength >= 1 && frame.data.byteLength <= CHUNK_BYTES_MAX,
            "chunk size",
          );
        }
      }
      if (problem !== null) break;
    }
    tally(`${input.origin}: ${problem ?? "ok"}`);
    if (problem !== null) check(PROBLEMS.includes(problem), `undeclared refusal ${problem}`);
    if (input.value !== undefined) {
      check(problem === null, `a valid stream was refused: ${problem}`);
      check(opened.length === input.value.length, "valid frames round-trip");
    }
  },
});

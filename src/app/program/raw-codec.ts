/**
 * The raw codec of transparent mode (`--protocol raw`), for a TCP server whose protocol apus-smr
 * does not know.
 *
 * Requests: whatever chunk arrived from the client is one request (one log entry), split into
 * pieces of at most `chunkBytesMax`. Replies: whatever bytes arrived from the copy, one
 * `CutReply` per pushed chunk (`ProgramCodec.framesReplies` is false, `CutRequest.replies` is 0).
 *
 * What raw cannot guarantee, plainly:
 * - Request boundaries are the client's TCP segments as this replica read them, not the
 *   protocol's messages: a message split across reads becomes several log entries, and several
 *   messages may share one. Every copy still receives the same bytes in the same order, so a
 *   server that parses a byte stream behaves the same on every copy.
 * - Replies cannot be framed: the replica cannot know when a request has been answered, so the
 *   apply loop cannot wait for an answer before sending the next request, and a reply split
 *   across reads counts as several replies (or several replies read at once count as one).
 * - Reply bytes hashed or relayed per chunk differ between copies when their reads are split
 *   differently: compare copies over the whole stream, never per chunk.
 * - With several client connections, nothing ties a reply chunk to the request it answers beyond
 *   the loopback connection it arrived on; output a server sends unasked (timers, other
 *   connections' events) is indistinguishable from replies.
 * - A server whose output depends on anything other than its input bytes and their order (time,
 *   randomness, how its input was split into reads) will diverge between copies.
 */
import { assert } from "../../core/errors.ts";
import type {
  CodecError,
  CutReply,
  CutRequest,
  ProgramCodec,
  ReplyCutter,
  RequestCutter,
} from "./codec.ts";

/** Largest raw request (one log entry), bytes; a larger chunk is split into several. */
export const RAW_CHUNK_BYTES_MAX = 64 * 1024;

export interface RawCodecLimits {
  readonly chunkBytesMax: number;
}

export const RAW_CODEC_LIMITS: RawCodecLimits = Object.freeze({
  chunkBytesMax: RAW_CHUNK_BYTES_MAX,
});

export function rawCodec(limits: Partial<RawCodecLimits> = {}): ProgramCodec {
  const { chunkBytesMax } = { ...RAW_CODEC_LIMITS, ...limits };
  assert(Number.isSafeInteger(chunkBytesMax) && chunkBytesMax >= 1, "invalid chunkBytesMax");
  return {
    name: "raw",
    framesReplies: false,
    requests: () => new RawRequestCutter(chunkBytesMax),
    replies: () => new RawReplyCutter(),
  };
}

/** Chunks pushed and not yet handed out, first to last, from `head`. */
class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes in the chunks from `head` on. */
  bytes = 0;

  add(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The first chunk, or its first `max` bytes (the rest stays first). */
  shift(max: number): Uint8Array | null {
    const first = this.chunks[this.head];
    if (first === undefined) return null;
    if (first.byteLength <= max) {
      this.head++;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      }
      this.bytes -= first.byteLength;
      return first;
    }
    this.chunks[this.head] = first.subarray(max);
    this.bytes -= max;
    return first.subarray(0, max);
  }
}

class RawRequestCutter implements RequestCutter {
  private readonly queue = new ChunkQueue();
  private readonly chunkBytesMax: number;

  constructor(chunkBytesMax: number) {
    this.chunkBytesMax = chunkBytesMax;
  }

  get bufferedBytes(): number {
    return this.queue.bytes;
  }

  push(chunk: Uint8Array): void {
    this.queue.add(chunk);
  }

  next(): CutRequest | CodecError | null {
    const bytes = this.queue.shift(this.chunkBytesMax);
    if (bytes === null) return null;
    return { bytes, replies: 0, replyFrame: "raw", name: "raw" };
  }
}

class RawReplyCutter implements ReplyCutter {
  private readonly queue = new ChunkQueue();

  get bufferedBytes(): number {
    return this.queue.bytes;
  }

  expect(request: CutRequest): void {
    assert(request.replyFrame === "raw");
  }

  push(chunk: Uint8Array): void {
    this.queue.add(chunk);
  }

  next(): CutReply | CodecError | null {
    const bytes = this.queue.shift(Number.POSITIVE_INFINITY);
    return bytes === null ? null : { bytes, push: false };
  }
}

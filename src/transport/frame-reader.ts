import { assert } from "../core/errors.ts";
import { FRAME_BYTES_MIN, LENGTH_PREFIX_BYTES } from "./frame.ts";
import type { DropReason } from "./transport.ts";

/**
 * Splits a TCP byte stream into length-prefixed frames (u32 LE length, then the frame). The
 * claimed length is checked against FRAME_BYTES_MIN and frameBytesMax before anything waits for
 * it, and bytes are only ever allocated for what actually arrived: a peer that claims 16 MiB and
 * sends 10 bytes costs 10 bytes.
 */
export class FrameReader {
  /** Received chunks not yet consumed; chunks[0] starts at headOffset. */
  private chunks: Buffer[] = [];
  private headOffset = 0;
  /** Invariant: bufferedBytes = sum of chunk lengths - headOffset. */
  private bufferedBytes = 0;

  private readonly frameBytesMax: number;
  private readonly frameBytesMin: number;

  /** `frameBytesMin`: the transport frame's by default; the snapshot stream's frames are shorter. */
  constructor(frameBytesMax: number, frameBytesMin: number = FRAME_BYTES_MIN) {
    assert(frameBytesMin >= 1 && frameBytesMax >= frameBytesMin);
    this.frameBytesMax = frameBytesMax;
    this.frameBytesMin = frameBytesMin;
  }

  push(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.byteLength;
  }

  /** The next whole frame (a view or a copy), null if it has not all arrived, or why not. */
  next(): Buffer | DropReason | null {
    if (this.bufferedBytes < LENGTH_PREFIX_BYTES) return null;
    const length = this.peek(LENGTH_PREFIX_BYTES).readUInt32LE(0);
    if (length < this.frameBytesMin) return "malformed";
    if (length > this.frameBytesMax) return "oversize";
    if (this.bufferedBytes < LENGTH_PREFIX_BYTES + length) return null;
    this.take(LENGTH_PREFIX_BYTES);
    return this.take(length);
  }

  /** The first `count` buffered bytes, without consuming them. */
  private peek(count: number): Buffer {
    const head = this.chunks[0]!;
    if (head.byteLength - this.headOffset >= count) {
      return head.subarray(this.headOffset, this.headOffset + count);
    }
    return this.copyOut(count, false);
  }

  /** Consume `count` bytes: a view when one chunk holds them all, else a fresh copy. */
  private take(count: number): Buffer {
    assert(count <= this.bufferedBytes);
    const head = this.chunks[0]!;
    if (head.byteLength - this.headOffset >= count) {
      const out = head.subarray(this.headOffset, this.headOffset + count);
      this.advance(count);
      return out;
    }
    return this.copyOut(count, true);
  }

  private copyOut(count: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(count);
    let copied = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      const n = Math.min(chunk.byteLength - offset, count - copied);
      chunk.copy(out, copied, offset, offset + n);
      copied += n;
      offset = 0;
      if (copied === count) break;
    }
    assert(copied === count);
    if (consume) this.advance(count);
    return out;
  }

  private advance(count: number): void {
    this.bufferedBytes -= count;
    let left = count;
    while (left > 0) {
      const head = this.chunks[0]!;
      const available = head.byteLength - this.headOffset;
      if (available > left) {
        this.headOffset += left;
        return;
      }
      left -= available;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }
}

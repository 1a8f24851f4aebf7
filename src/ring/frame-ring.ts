/**
 * A single-producer single-consumer ring of length-framed binary records between two threads,
 * built on ringbuf.js (a wait-free SPSC byte ring over a SharedArrayBuffer).
 *
 * Frame: u32 little-endian record length, then the record bytes (header then body, as written).
 * Frames may wrap around the end of the storage; ringbuf.js handles the two parts.
 *
 * Handshake (who writes what, in which order):
 *   - ringbuf.js keeps a write index (written only by the producer) and a read index (written only
 *     by the consumer), both with Atomics.store.
 *   - The producer copies the whole frame (length, header, body) into free space and only then
 *     publishes it with ONE store of the write index (writeCallbackWithOffset). A frame is never
 *     half-visible, so a reader that sees >= 4 bytes sees the whole record that follows.
 *   - The consumer copies the frame out, then stores the read index, which frees the space.
 *   - After a burst of writes the producer rings the consumer's doorbell (doorbell.ts, P2-P4),
 *     which must come after the publish (P1).
 *
 * Measured reason for copying on read: ringbuf.js has no zero-copy read; copies out of a
 * SharedArrayBuffer run at about 1 byte/ns on this VM whether done by ringbuf.js's loop or by
 * TypedArray.set (4 KiB push + pop: 4.3 µs vs 2.3 µs for two `set`s), so its pop is kept.
 */
import { RingBuffer } from "ringbuf.js";
import { ApusError, assert } from "../core/errors.ts";
import { createDoorbell, DoorbellRinger } from "./doorbell.ts";
import { RingError } from "./ring-errors.ts";

/** Bytes of the length prefix of every frame (u32, little-endian). */
export const FRAME_LENGTH_BYTES = 4;
/** Smallest ring: room for one frame carrying an empty record, plus one byte. */
export const RING_CAPACITY_BYTES_MIN = FRAME_LENGTH_BYTES + 1;
/** Largest ring: ringbuf.js indexes are u32; 1 GiB keeps far from that and from memory limits. */
export const RING_CAPACITY_BYTES_MAX = 1 << 30;
/**
 * Bytes of ringbuf.js's own header in `data` (write index u32 at byte 0, read index u32 at byte 4);
 * its storage follows. Used only to check a SharedArrayBuffer handed across threads.
 */
const RINGBUF_HEADER_BYTES = 8;

/** Plain data: passes through workerData or postMessage once, at setup. */
export interface FrameRingShared {
  /** ringbuf.js storage: indexes and frames. */
  readonly data: SharedArrayBuffer;
  /** The consumer's doorbell (createDoorbell); shared by every ring that consumer reads. */
  readonly bell: SharedArrayBuffer;
}

/**
 * Make a ring that holds `capacityBytes` of frames (each frame is 4 bytes + its record). Pass the
 * consumer's doorbell as `bell` when that thread reads several rings; without it the ring gets a
 * doorbell of its own.
 */
export function createFrameRing(
  capacityBytes: number,
  bell: SharedArrayBuffer = createDoorbell(),
): FrameRingShared {
  if (
    !Number.isSafeInteger(capacityBytes) ||
    capacityBytes < RING_CAPACITY_BYTES_MIN ||
    capacityBytes > RING_CAPACITY_BYTES_MAX
  ) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `invalid ring capacityBytes ${capacityBytes}: use an integer from ${RING_CAPACITY_BYTES_MIN} to ${RING_CAPACITY_BYTES_MAX}`,
    );
  }
  return { data: RingBuffer.getStorageForCapacity(capacityBytes, Uint8Array), bell };
}

function openRing(shared: FrameRingShared): RingBuffer {
  const { data } = shared;
  if (
    !(data instanceof SharedArrayBuffer) ||
    data.byteLength < RINGBUF_HEADER_BYTES + RING_CAPACITY_BYTES_MIN + 1
  ) {
    throw new RingError("ERR_RING", "FrameRingShared.data is not a ring made by createFrameRing()");
  }
  const ring = new RingBuffer(data, Uint8Array);
  assert(ring.capacity() >= RING_CAPACITY_BYTES_MIN);
  return ring;
}

const EMPTY = new Uint8Array(0);

type WriteCallbackWithOffset = Parameters<RingBuffer["writeCallbackWithOffset"]>[1];

/** The producer's end of one ring. Exactly one per ring, in one thread. */
export class FrameRingWriter {
  private readonly ring: RingBuffer;
  private readonly ringer: DoorbellRinger;
  /** Largest record (header + body) that can ever fit: capacity - 4. */
  private readonly recordMax: number;
  private readonly lengthBytes = new Uint8Array(FRAME_LENGTH_BYTES);
  private readonly lengthView = new DataView(this.lengthBytes.buffer);
  // The frame being copied by copyFrame; set by tryWrite just before, cleared right after.
  private pendingHeader: Uint8Array = EMPTY;
  private pendingBody: Uint8Array = EMPTY;
  private pendingFrameBytes = 0;

  constructor(shared: FrameRingShared) {
    this.ring = openRing(shared);
    this.ringer = new DoorbellRinger(shared.bell);
    this.recordMax = this.ring.capacity() - FRAME_LENGTH_BYTES;
  }

  get recordBytesMax(): number {
    return this.recordMax;
  }

  /** Bytes free now (a frame needs 4 + record bytes). Can only grow until the next write. */
  get freeBytes(): number {
    return this.ring.availableWrite();
  }

  /**
   * Append one record made of a header and a body (either may be empty), all or nothing; false
   * when it does not fit now (caller applies backpressure). Throws ERR_RING for a record larger
   * than recordBytesMax, which could never fit: callers must bound their records.
   */
  tryWrite(header: Uint8Array, body: Uint8Array = EMPTY): boolean {
    const recordBytes = header.byteLength + body.byteLength;
    if (recordBytes > this.recordMax) {
      throw new RingError(
        "ERR_RING",
        `record of ${recordBytes} bytes can never fit this ring (recordBytesMax ${this.recordMax}); bound records or make the ring larger`,
      );
    }
    const frameBytes = FRAME_LENGTH_BYTES + recordBytes;
    // Free space only grows until we write (the consumer only frees), so this check holds below.
    if (this.ring.availableWrite() < frameBytes) return false;
    this.lengthView.setUint32(0, recordBytes, true);
    this.pendingHeader = header;
    this.pendingBody = body;
    this.pendingFrameBytes = frameBytes;
    // Copies the whole frame, then publishes it with one store of the write index.
    const written = this.ring.writeCallbackWithOffset(frameBytes, this.copyFrame);
    this.pendingHeader = EMPTY;
    this.pendingBody = EMPTY;
    assert(written === frameBytes, "ring published a partial frame");
    return true;
  }

  /** Ring the consumer's doorbell if it is parked (one atomic load when it is not). */
  notify(): void {
    this.ringer.ring();
  }

  /** ringbuf.js callback: the free space is storage[offset, +count) then storage[0, +countB). */
  private readonly copyFrame: WriteCallbackWithOffset = (
    storage,
    offset,
    count,
    offsetB,
    countB,
  ) => {
    assert(storage instanceof Uint8Array);
    assert(offsetB === 0);
    assert(count + countB === this.pendingFrameBytes, "not enough free space for the frame");
    let position = putBytes(storage, offset, this.lengthBytes);
    position = putBytes(storage, position, this.pendingHeader);
    putBytes(storage, position, this.pendingBody);
    return this.pendingFrameBytes;
  };
}

/** Copy `bytes` into the circular `storage` at `position`; returns the position after them. */
function putBytes(storage: Uint8Array, position: number, bytes: Uint8Array): number {
  const storageBytes = storage.length;
  const firstBytes = Math.min(bytes.length, storageBytes - position);
  if (firstBytes === bytes.length) {
    storage.set(bytes, position);
  } else {
    storage.set(bytes.subarray(0, firstBytes), position);
    storage.set(bytes.subarray(firstBytes), 0);
  }
  const next = position + bytes.length;
  return next >= storageBytes ? next - storageBytes : next;
}

/** The consumer's end of one ring. Exactly one per ring, in one thread. */
export class FrameRingReader {
  private readonly ring: RingBuffer;
  private readonly recordMax: number;
  private readonly lengthBytes = new Uint8Array(FRAME_LENGTH_BYTES);
  private readonly lengthView = new DataView(this.lengthBytes.buffer);
  /** Private copy of the record handed to drain's callback; reused for every record. */
  private readonly record: Uint8Array;
  /** True inside drain. Invariant: drain is not re-entered from its callback. */
  private draining = false;

  constructor(shared: FrameRingShared) {
    this.ring = openRing(shared);
    this.recordMax = this.ring.capacity() - FRAME_LENGTH_BYTES;
    this.record = new Uint8Array(this.recordMax);
  }

  /** Bytes of frames waiting (4 per frame + records). */
  get usedBytes(): number {
    return this.ring.availableRead();
  }

  /** True when at least one record waits: cheap enough to poll (two atomic loads). */
  get hasRecords(): boolean {
    return !this.ring.empty();
  }

  /**
   * Hand each waiting record to fn (the view is valid only during the call), up to max records;
   * returns how many. The space of each record is freed before fn sees the next one.
   */
  drain(fn: (record: Uint8Array) => void, max = Number.POSITIVE_INFINITY): number {
    assert(!this.draining, "drain called from its own callback");
    assert(max >= 0);
    this.draining = true;
    let count = 0;
    try {
      while (count < max) {
        const waitingBytes = this.ring.availableRead();
        if (waitingBytes === 0) break;
        // The producer publishes whole frames only: any byte waiting means a whole frame waits.
        assert(waitingBytes >= FRAME_LENGTH_BYTES, "ring holds a partial frame");
        this.ring.pop(this.lengthBytes, FRAME_LENGTH_BYTES);
        const recordBytes = this.lengthView.getUint32(0, true);
        assert(recordBytes <= this.recordMax, "frame length exceeds recordBytesMax");
        assert(recordBytes <= waitingBytes - FRAME_LENGTH_BYTES, "frame longer than the data");
        if (recordBytes > 0) {
          const popped = this.ring.pop(this.record, recordBytes);
          assert(popped === recordBytes);
        }
        count++;
        fn(this.record.subarray(0, recordBytes));
      }
    } finally {
      this.draining = false;
    }
    return count;
  }
}

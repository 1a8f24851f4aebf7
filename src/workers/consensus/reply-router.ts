import { assert } from "../../core/errors.ts";
import type { BellRinger } from "../../ring/bell.ts";
import { FrameRingWriter } from "../../ring/frame-ring.ts";
import {
  REPLY_CONN_ID,
  REPLY_FINAL,
  REPLY_FLAGS,
  REPLY_HEADER_BYTES,
  REPLY_SEQ,
  type WorkerRings,
} from "../../runtime/thread-contracts.ts";

interface QueuedReply {
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/**
 * Carries replies from the consensus worker to the connection workers' rings. A ring that is full
 * (its worker is slow) keeps the rest in a per-worker queue, retried on the next flush. That queue
 * is bounded by what can be outstanding: each client connection has at most one request in
 * flight, so at most --max-clients replies wait.
 */
export class ReplyRouter {
  private readonly writers: FrameRingWriter[];
  private readonly bells: readonly BellRinger[];
  private readonly overflow: QueuedReply[][];
  private readonly dirty: boolean[];
  /** Largest body per record: the ring's record limit less our header. */
  private readonly bodyBytesMax: number;
  /** Replies that had to wait for ring space (a metric). */
  overflowed = 0;

  /** `bells[i]` wakes the reader of `rings[i].replies` (a doorbell, or a LocalBell in-thread). */
  constructor(rings: readonly Pick<WorkerRings, "replies">[], bells: readonly BellRinger[]) {
    assert(bells.length === rings.length, "one bell per reply ring");
    this.writers = rings.map((r) => new FrameRingWriter(r.replies));
    this.bells = bells;
    this.overflow = rings.map(() => []);
    this.dirty = rings.map(() => false);
    const recordMax = Math.min(...this.writers.map((w) => w.recordBytesMax));
    this.bodyBytesMax = Math.min(recordMax - REPLY_HEADER_BYTES, 1 << 20);
  }

  /** Queue the reply to one request; it may be cut into several records. */
  send(worker: number, connId: number, seq: number, reply: Uint8Array): void {
    let offset = 0;
    do {
      const end = Math.min(reply.byteLength, offset + this.bodyBytesMax);
      const header = new Uint8Array(REPLY_HEADER_BYTES);
      const view = new DataView(header.buffer);
      view.setUint32(REPLY_CONN_ID, connId, true);
      view.setUint32(REPLY_SEQ, seq, true);
      view.setUint8(REPLY_FLAGS, end === reply.byteLength ? REPLY_FINAL : 0);
      this.write(worker, header, reply.subarray(offset, end));
      offset = end;
    } while (offset < reply.byteLength);
  }

  private write(worker: number, header: Uint8Array, body: Uint8Array): void {
    const queue = this.overflow[worker]!;
    if (queue.length === 0 && this.writers[worker]!.tryWrite(header, body)) {
      this.dirty[worker] = true;
      return;
    }
    // Keep order: once a reply waits, everything after it for this worker waits behind it.
    queue.push({ header, body: body.slice() });
    this.overflowed++;
  }

  /** Retry what waited and ring the bells of workers that got records. True if anything still waits. */
  flush(): boolean {
    let waiting = false;
    for (let worker = 0; worker < this.writers.length; worker++) {
      const queue = this.overflow[worker]!;
      let sent = 0;
      while (
        sent < queue.length &&
        this.writers[worker]!.tryWrite(queue[sent]!.header, queue[sent]!.body)
      )
        sent++;
      if (sent > 0) {
        queue.splice(0, sent);
        this.dirty[worker] = true;
      }
      if (queue.length > 0) waiting = true;
      if (this.dirty[worker]) {
        this.dirty[worker] = false;
        this.bells[worker]!.ring();
      }
    }
    return waiting;
  }

  /** Bytes waiting in each worker's reply ring (for the ring-occupancy gauge). */
  queuedRecords(): number {
    let count = 0;
    for (const queue of this.overflow) count += queue.length;
    return count;
  }
}

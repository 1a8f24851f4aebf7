import type { SeededPrng } from "../core/index.ts";

export interface NetworkFaults {
  /** Probability a packet is lost. */
  dropRate: number;
  /** Probability a packet is delivered twice (each copy with its own delay). */
  duplicateRate: number;
  /** Delivery delay in ticks, uniform in [delayTicksMin, delayTicksMax]; a spread reorders. */
  delayTicksMin: number;
  delayTicksMax: number;
  /** Probability a packet is held back much longer, up to lateTicksMax: stale messages from old leaders. */
  lateRate: number;
  lateTicksMax: number;
}

export interface Packet {
  readonly from: number;
  readonly to: number;
  /** The transport channel: core messages, or the runtime's forwards and refusals (sim-origin.ts). */
  readonly channel: number;
  readonly bytes: Uint8Array;
}

/**
 * A seeded lossy network. Packets travel as encoded bytes, so every delivery also exercises the
 * wire format. A partition assigns each replica a side; a packet whose ends are on different sides
 * when it arrives is lost.
 */
export class SimNetwork {
  faults: NetworkFaults;
  /** side[id]: replicas talk only within a side. */
  readonly side: number[];
  private readonly inTransit = new Map<number, Packet[]>();
  private readonly prng: SeededPrng;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(replicaCount: number, faults: NetworkFaults, prng: SeededPrng) {
    this.faults = faults;
    this.prng = prng;
    this.side = new Array(replicaCount + 1).fill(0);
  }

  get partitioned(): boolean {
    return this.side.some((s) => s !== 0);
  }

  heal(): void {
    this.side.fill(0);
  }

  /** Send a packet; `extraDelayTicks` holds it back on purpose (the adversary's targeted delay). */
  send(now: number, packet: Packet, extraDelayTicks = 0): void {
    this.sent++;
    if (this.prng.nextFloat() < this.faults.dropRate) {
      this.dropped++;
      return;
    }
    this.enqueue(now, packet, extraDelayTicks);
    if (this.prng.nextFloat() < this.faults.duplicateRate) {
      this.duplicated++;
      this.enqueue(now, packet, extraDelayTicks);
    }
  }

  private enqueue(now: number, packet: Packet, extraDelayTicks: number): void {
    const { delayTicksMin, delayTicksMax } = this.faults;
    let at =
      now + extraDelayTicks + delayTicksMin + this.prng.nextInt(delayTicksMax - delayTicksMin + 1);
    if (this.faults.lateRate > 0 && this.prng.nextFloat() < this.faults.lateRate) {
      at += this.prng.nextInt(this.faults.lateTicksMax + 1);
    }
    let bucket = this.inTransit.get(at);
    if (bucket === undefined) {
      bucket = [];
      this.inTransit.set(at, bucket);
    }
    bucket.push(packet);
  }

  /** Packets arriving at `now`, shuffled (same-tick order is arbitrary), minus partitioned ones. */
  deliver(now: number): Packet[] {
    const bucket = this.inTransit.get(now);
    if (bucket === undefined) return [];
    this.inTransit.delete(now);
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = this.prng.nextInt(i + 1);
      const t = bucket[i]!;
      bucket[i] = bucket[j]!;
      bucket[j] = t;
    }
    return bucket.filter((p) => {
      const across = this.side[p.from] !== this.side[p.to];
      if (across) this.dropped++;
      return !across;
    });
  }
}

import {
  type Batch,
  type CoreOptions,
  type Message,
  MessageType,
  type ReadState,
  type Ready,
  Replica,
  SeededPrng,
  type Slot,
} from "../../src/core/index.ts";
import { SimStorage } from "../../src/sim/sim-storage.ts";

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const words = (batch: Batch): string[] =>
  batch.commands.map((c) => new TextDecoder().decode(c));

/**
 * A hand-driven cluster for scripted tests: nothing moves unless the test says so. Messages wait
 * in `inbox` until delivered; `drop` filters let a test cut links.
 */
export class Cluster {
  readonly nodes: (Replica | null)[] = [];
  readonly disks: SimStorage[] = [];
  /** Applied commands per replica, in order: what the state machine would see. */
  readonly applied: string[][] = [];
  readonly appliedSlots: Slot[][] = [];
  /** Read indexes handed out per replica (Ready.reads), in order. */
  readonly reads: ReadState[][] = [];
  inbox: Message[] = [];
  /** Messages every Ready produced, for assertions on what was sent. */
  readonly sent: Message[] = [];
  /** Persist batches per replica, in order. */
  readonly readies: Ready[][] = [];
  private readonly options: Partial<CoreOptions>;
  readonly size: number;

  constructor(size: number, options: Partial<CoreOptions> = {}) {
    this.size = size;
    this.options = options;
    for (let id = 1; id <= size; id++) this.add(id);
  }

  /** Replicas that joined after the start (they began knowing no configuration). */
  private readonly joiners = new Set<number>();

  /** Every replica id this cluster has, up or down. */
  get ids(): number[] {
    const ids: number[] = [];
    for (let id = 1; id < this.nodes.length; id++) if (id in this.nodes) ids.push(id);
    return ids;
  }

  /** Start a new replica `id` that joins an existing cluster: it knows no configuration. */
  join(id: number): Replica {
    this.joiners.add(id);
    return this.add(id);
  }

  /** A new replica `id` with an empty disk, started. */
  private add(id: number): Replica {
    this.disks[id] = new SimStorage();
    this.applied[id] = [];
    this.appliedSlots[id] = [];
    this.reads[id] = [];
    this.readies[id] = [];
    this.nodes[id] = this.make(id, false);
    return this.nodes[id]!;
  }

  private make(id: number, fromDisk: boolean, recovering = false): Replica {
    const options: CoreOptions = {
      id,
      replicaCount: this.size,
      prng: new SeededPrng(id),
      ...this.options,
      ...(this.joiners.has(id) ? { members: null } : {}),
      recovering,
    };
    return new Replica(options, fromDisk ? this.disks[id]!.read() : undefined);
  }

  node(id: number): Replica {
    const node = this.nodes[id];
    if (!node) throw new Error(`replica ${id} is down`);
    return node;
  }

  /** Run every pending Ready of a replica: persist, queue messages, apply. */
  drain(id: number): void {
    const node = this.nodes[id];
    while (node?.hasReady()) {
      const ready = node.ready();
      this.readies[id]!.push(ready);
      this.inbox.push(...ready.messagesNow);
      if (ready.persist) this.disks[id]!.write(ready.persist);
      this.inbox.push(...ready.messages);
      this.sent.push(...ready.messagesNow, ...ready.messages);
      if (ready.snapshot) {
        this.applied[id] = [`<snapshot ${ready.snapshot.slot}>`];
        this.appliedSlots[id] = [ready.snapshot.slot];
      }
      for (const entry of ready.chosen) {
        this.applied[id]!.push(...words(entry.batch));
        this.appliedSlots[id]!.push(entry.slot);
      }
      this.reads[id]!.push(...ready.reads);
      node.advance();
    }
  }

  tick(id: number, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.nodes[id]?.tick();
      this.drain(id);
    }
  }

  /** Deliver queued messages (and whatever they cause) until quiet. `keep` drops the rest. */
  deliver(keep: (m: Message) => boolean = () => true): number {
    let delivered = 0;
    for (let rounds = 0; this.inbox.length > 0; rounds++) {
      if (rounds > 10_000) throw new Error("message storm");
      const batch = this.inbox;
      this.inbox = [];
      for (const message of batch) {
        const target = this.nodes[message.to];
        if (!target || !keep(message)) continue;
        target.step(message);
        delivered++;
        this.drain(message.to);
      }
    }
    return delivered;
  }

  /**
   * Make `id` leader: tick every live replica (leases expire on the acceptors' own clocks) but let
   * only `id`'s campaign messages through, so it wins whatever the random timeouts say.
   */
  elect(id: number, keep: (m: Message) => boolean = () => true): void {
    const campaign = new Set<number>([MessageType.Probe, MessageType.Prepare]);
    for (let i = 0; i < 200 && this.node(id).role !== "leader"; i++) {
      for (const other of this.ids) this.tick(other);
      this.deliver((m) => keep(m) && (m.from === id || !campaign.has(m.type)));
    }
    if (this.node(id).role !== "leader") throw new Error(`replica ${id} did not win`);
  }

  propose(id: number, ...commands: string[]): void {
    for (const command of commands) {
      const result = this.node(id).propose(text(command));
      if (result !== "queued") throw new Error(`propose at ${id}: ${result}`);
    }
    this.drain(id);
  }

  /** One heartbeat round from every replica, delivered. */
  heartbeat(): void {
    for (const id of this.ids) this.tick(id);
    this.deliver();
  }

  crash(id: number): void {
    this.nodes[id] = null;
    this.inbox = this.inbox.filter((m) => m.to !== id && m.from !== id);
  }

  /**
   * Start `id` again from its disk. `wiped`: its disk is gone (a replaced disk, or memory
   * durability), and `recovering` says whether it recovers before it votes.
   */
  restart(id: number, options: { wiped?: boolean; recovering?: boolean } = {}): void {
    if (options.wiped === true) this.disks[id] = new SimStorage();
    this.nodes[id] = this.make(id, true, options.recovering ?? false);
    this.applied[id] = [];
    this.appliedSlots[id] = [];
    this.drain(id);
  }
}

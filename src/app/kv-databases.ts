/**
 * The embedded store's numbered databases (SELECT 0–15, as redis-server's default `databases
 * 16`) and their snapshot. A store that only ever used database 0 snapshots as one keyspace, in
 * the same bytes as before databases existed (kv-snapshot.ts); once another database was used,
 * the snapshot is a container of every used one:
 *
 *   u32 MAGIC "APKD" | u32 VERSION | u32 count | count × (u32 index | u32 length | keyspace
 *   snapshot of `length` bytes), indexes ascending
 *
 * A database counts as used once it held a key (its insertion counter moved): SCAN cursors and
 * the pseudo-random picks depend on that counter, so a replica restored from a snapshot must
 * continue it exactly.
 */
import { ApusError, assert } from "../core/errors.ts";
import { Keyspace, type KeyspaceLimits } from "./kv-keyspace.ts";
import type { Databases } from "./kv-shared.ts";
import { readSnapshot, writeSnapshot } from "./kv-snapshot.ts";
import { SnapshotJob } from "./kv-snapshot-job.ts";

/** How many databases SELECT reaches, as redis-server's default. */
export const DATABASES = 16;

const MAGIC = 0x444b5041; // "APKD"
const VERSION = 1;
const KEYSPACE_MAGIC = 0x564b5041; // "APKV": a single keyspace's snapshot

/** The databases of one store. */
export class KvDatabases {
  readonly dbs: Keyspace[] = [];
  /** One view per index, built once: a command's `context.databases`. */
  readonly views: Databases[] = [];

  constructor(limits: KeyspaceLimits, dbs?: Keyspace[]) {
    for (let i = 0; i < DATABASES; i++) this.dbs.push(dbs?.[i] ?? new Keyspace(limits));
    for (let i = 0; i < DATABASES; i++) {
      this.views.push({
        count: DATABASES,
        current: i,
        get: (index) => this.dbs[index]!,
        swap: (a, b) => this.swap(a, b),
      });
    }
  }

  swap(a: number, b: number): void {
    assert(a >= 0 && a < DATABASES && b >= 0 && b < DATABASES, "SWAPDB index");
    const first = this.dbs[a]!;
    this.dbs[a] = this.dbs[b]!;
    this.dbs[b] = first;
  }

  /** The databases a snapshot must hold: database 0, and every other one that held a key. */
  private used(): number[] {
    const used = [0];
    for (let i = 1; i < DATABASES; i++) if (this.dbs[i]!.nextSeq > 1) used.push(i);
    return used;
  }

  snapshot(): Uint8Array {
    const used = this.used();
    if (used.length === 1) return writeSnapshot(this.dbs[0]!);
    return container(used.map((index) => [index, writeSnapshot(this.dbs[index]!)]));
  }

  /**
   * `prefix` and then the same bytes as snapshot() now, taken a piece at a time while commands
   * go on executing. With several databases used, every database's job starts now (so all hold
   * this instant) and the container is put together once they are done, in one copy.
   */
  beginSnapshot(prefix?: Uint8Array): KvSnapshotJob {
    const used = this.used();
    if (used.length === 1) return new SnapshotJob(this.dbs[0]!, prefix);
    return new ContainerJob(
      used.map((index) => [index, new SnapshotJob(this.dbs[index]!)] as const),
      prefix ?? new Uint8Array(0),
    );
  }

  static restore(bytes: Uint8Array, limits: KeyspaceLimits): KvDatabases {
    if (bytes.byteLength < 8) corrupt("truncated");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = view.getUint32(0, true);
    if (magic === KEYSPACE_MAGIC) return new KvDatabases(limits, [readSnapshot(bytes, limits)]);
    if (magic !== MAGIC) corrupt("bad magic");
    const version = view.getUint32(4, true);
    if (version !== VERSION)
      throw new ApusError(
        "ERR_WIRE_VERSION",
        `store snapshot container version ${version}, expected ${VERSION}`,
      );
    if (bytes.byteLength < 12) corrupt("truncated");
    const count = view.getUint32(8, true);
    if (count < 1 || count > DATABASES) corrupt(`${count} databases`);
    const dbs: Keyspace[] = [];
    let at = 12;
    let last = -1;
    for (let i = 0; i < count; i++) {
      if (at + 8 > bytes.byteLength) corrupt("truncated");
      const index = view.getUint32(at, true);
      const length = view.getUint32(at + 4, true);
      at += 8;
      if (index <= last || index >= DATABASES) corrupt(`database index ${index}`);
      if (length > bytes.byteLength - at) corrupt("truncated database");
      dbs[index] = readSnapshot(bytes.subarray(at, at + length), limits);
      at += length;
      last = index;
    }
    if (at !== bytes.byteLength) corrupt("trailing bytes");
    return new KvDatabases(limits, dbs);
  }
}

/** What KvStore.beginSnapshot hands out: a job stepped until done, then its bytes. */
export interface KvSnapshotJob {
  step(budgetMs: number): boolean;
  finish(): Uint8Array;
  readonly bytes: Uint8Array;
  readonly done: boolean;
  /** Entries serialized ahead of the walk because a write was about to change them. */
  readonly earlyCount: number;
}

function container(
  parts: readonly (readonly [number, Uint8Array])[],
  prefix?: Uint8Array,
): Uint8Array {
  let total = (prefix?.byteLength ?? 0) + 12;
  for (const [, bytes] of parts) total += 8 + bytes.byteLength;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  if (prefix !== undefined) {
    out.set(prefix, 0);
    at = prefix.byteLength;
  }
  at = out.writeUInt32LE(MAGIC, at);
  at = out.writeUInt32LE(VERSION, at);
  at = out.writeUInt32LE(parts.length, at);
  for (const [index, bytes] of parts) {
    at = out.writeUInt32LE(index, at);
    at = out.writeUInt32LE(bytes.byteLength, at);
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

/** Several databases' snapshot jobs, stepped in turn, then joined into the container. */
class ContainerJob implements KvSnapshotJob {
  private readonly jobs: readonly (readonly [number, SnapshotJob])[];
  private readonly prefix: Uint8Array;
  private image: Uint8Array | null = null;

  constructor(jobs: readonly (readonly [number, SnapshotJob])[], prefix: Uint8Array) {
    this.jobs = jobs;
    this.prefix = prefix;
  }

  get done(): boolean {
    return this.image !== null;
  }

  get earlyCount(): number {
    let count = 0;
    for (const [, job] of this.jobs) count += job.earlyCount;
    return count;
  }

  step(budgetMs: number): boolean {
    const deadline = performance.now() + budgetMs;
    for (const [, job] of this.jobs) {
      if (job.done) continue;
      if (!job.step(Math.max(0, deadline - performance.now()))) return false;
    }
    this.image = container(
      this.jobs.map(([index, job]) => [index, job.bytes] as const),
      this.prefix,
    );
    return true;
  }

  finish(): Uint8Array {
    this.step(Number.POSITIVE_INFINITY);
    return this.bytes;
  }

  get bytes(): Uint8Array {
    assert(this.image !== null, "snapshot job not finished");
    return this.image;
  }
}

function corrupt(message: string): never {
  throw new ApusError("ERR_WIRE_FIELD", `store snapshot is corrupt: ${message}`);
}

/**
 * Output checking (after APUS): every replica hashes everything its copy of the program answers,
 * in log order, and reports the digest every DIGEST_EVERY_STEPS applied steps to the leader. The
 * leader compares the reports for the same step count: once a majority of the replicas agree on
 * a digest, a replica that reported another one has diverged — its copy no longer computes what
 * the others do (a key changed behind the replica's back, another configuration, a different
 * program version, an expiry its own clock decided differently). Pure: no I/O, no clock.
 */

/** A replica whose output differed from the majority's, and where. */
export interface Divergence {
  readonly replica: number;
  /** The applied steps at which the digests were taken. */
  readonly steps: number;
  readonly digest: string;
  readonly majorityDigest: string;
}

/** Step counts whose reports are kept while they wait for a majority. */
export const OUTPUT_CHECK_PENDING_MAX = 64;

export class OutputCheck {
  private readonly replicaCount: number;
  /** Reports by step count: replica → digest. */
  private readonly reports = new Map<number, Map<number, string>>();
  /** Step counts already judged: the majority's digest, and the replicas already judged there. */
  private readonly settled = new Map<number, { digest: string; judged: Set<number> }>();
  /** Every divergence found so far (for /status). */
  readonly found: Divergence[] = [];

  constructor(replicaCount: number) {
    this.replicaCount = replicaCount;
  }

  /** One replica's digest at `steps`; returns the divergences this report reveals (often none). */
  report(replica: number, steps: number, digest: string): Divergence[] {
    const settled = this.settled.get(steps);
    if (settled !== undefined) {
      // A report sent again (a diverged replica repeats its last one before it stops) counts once.
      if (settled.judged.has(replica)) return [];
      settled.judged.add(replica);
      return settled.digest === digest
        ? []
        : this.diverged([[replica, digest]], steps, settled.digest);
    }
    let byReplica = this.reports.get(steps);
    if (byReplica === undefined) {
      byReplica = new Map();
      this.reports.set(steps, byReplica);
      this.forgetOldest();
    }
    byReplica.set(replica, digest);
    const counts = new Map<string, number>();
    for (const d of byReplica.values()) counts.set(d, (counts.get(d) ?? 0) + 1);
    const majority = Math.floor(this.replicaCount / 2) + 1;
    const winner = [...counts].find(([, count]) => count >= majority)?.[0];
    if (winner === undefined) return [];
    this.settled.set(steps, { digest: winner, judged: new Set(byReplica.keys()) });
    this.reports.delete(steps);
    const losers = [...byReplica].filter(([, d]) => d !== winner);
    return this.diverged(losers, steps, winner);
  }

  private diverged(
    losers: readonly (readonly [number, string])[],
    steps: number,
    majorityDigest: string,
  ): Divergence[] {
    const found = losers.map(([replica, digest]) => ({ replica, steps, digest, majorityDigest }));
    this.found.push(...found);
    return found;
  }

  /** Bounded memory: reports of long ago (a replica that never reported them) are dropped. */
  private forgetOldest(): void {
    while (this.reports.size > OUTPUT_CHECK_PENDING_MAX) {
      const oldest = Math.min(...this.reports.keys());
      this.reports.delete(oldest);
    }
    while (this.settled.size > OUTPUT_CHECK_PENDING_MAX) {
      const oldest = Math.min(...this.settled.keys());
      this.settled.delete(oldest);
    }
  }
}

/** A digest report on the wire: f64 steps | the digest as ASCII hex. */
export function encodeDigestReport(steps: number, digest: string): Uint8Array {
  const bytes = new Uint8Array(8 + digest.length);
  new DataView(bytes.buffer).setFloat64(0, steps, true);
  for (let i = 0; i < digest.length; i++) bytes[8 + i] = digest.charCodeAt(i);
  return bytes;
}

export function decodeDigestReport(bytes: Uint8Array): { steps: number; digest: string } | null {
  if (bytes.byteLength < 9 || bytes.byteLength > 8 + 64) return null;
  const steps = new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
  if (!Number.isSafeInteger(steps) || steps <= 0) return null;
  const digest = Buffer.from(bytes.subarray(8)).toString("latin1");
  return /^[0-9a-f]+$/.test(digest) ? { steps, digest } : null;
}

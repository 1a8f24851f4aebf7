import type { Logger } from "pino";
import type { ReplySink } from "../../app/replicated-app.ts";
import type { Ready } from "../../core/ready.ts";
import type { Snapshot } from "../../core/types.ts";
import { SNAPSHOT_EVERY_SLOTS } from "../../limits.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import type { ConsensusMetrics } from "./consensus-metrics.ts";
import { type Divergence, OutputCheck } from "./output-check.ts";
import type { StateMachine } from "./state-machine.ts";

/** What the applier needs from the consensus worker around it. */
export interface ApplierIo {
  /** The reply sink of one of this replica's requests about to run (null: nobody waits). */
  claim(requestId: number): ReplySink;
  /** Replies were queued for the rings: send them now. */
  flushReplies(): void;
  /** Replace the log up to the snapshot's slot with it (Replica.compact). */
  compact(snapshot: Snapshot): void;
  /** The application failed beyond repair: stop this replica. */
  fatal(error: Error): never;
  /**
   * This replica's copy diverged (its digest at `steps` is not the majority's): stop, after
   * repeating that report to the peers so that they raise the alarm too.
   */
  diverged(error: Error, steps: number, digest: string): void;
}

/**
 * The application side of the consensus worker: applies what the core hands out to the state
 * machine (and so to the replicated application), in slot order; takes snapshots and compacts
 * the log; bounds the log where the application cannot snapshot (--app); and judges the output
 * digests of a program's copies (output checking).
 */
export class Applier {
  readonly machine: StateMachine;
  private readonly config: ReplicaConfig;
  private readonly metrics: ConsensusMetrics;
  private readonly log: Logger;
  private readonly io: ApplierIo;
  private readonly outputCheck: OutputCheck;
  /** Last slot applied to the state machine (the snapshot point if one is taken now). */
  private appliedSlot = 0;
  private bytesSinceSnapshot = 0;
  private slotsSinceSnapshot = 0;
  /** Command bytes in the log since the last snapshot taken (all of them for a program's copy). */
  private uncompactedBytes = 0;
  private logFullWarned = false;
  /** A program's checkpoint is being taken (the hook runs asynchronously). */
  private checkpointing = false;

  constructor(
    machine: StateMachine,
    config: ReplicaConfig,
    metrics: ConsensusMetrics,
    log: Logger,
    io: ApplierIo,
  ) {
    this.machine = machine;
    this.config = config;
    this.metrics = metrics;
    this.log = log;
    this.io = io;
    this.outputCheck = new OutputCheck(config.peers.length);
  }

  /** The last slot applied to the state machine. */
  get applied(): number {
    return this.appliedSlot;
  }

  /**
   * Install the snapshot and apply the chosen entries of `ready`, in slot order. Returns whether
   * another replica's request was among them (a leader then announces the commit at once: that
   * replica waits for it to answer its client).
   */
  apply(ready: Ready): { foreignApplied: boolean } {
    let foreignApplied = false;
    if (ready.snapshot !== null) {
      this.machine.install(ready.snapshot);
      this.appliedSlot = ready.snapshot.slot;
      this.bytesSinceSnapshot = 0;
      this.slotsSinceSnapshot = 0;
      this.uncompactedBytes = 0;
    }
    const skippedBefore = this.machine.duplicates + this.machine.malformed;
    for (const entry of ready.chosen) {
      const applied = this.machine.applyBatch(entry.batch, (requestId) => this.io.claim(requestId));
      this.appliedSlot = entry.slot;
      if (applied.foreign) foreignApplied = true;
      this.bytesSinceSnapshot += applied.bytes;
      this.uncompactedBytes += applied.bytes;
      this.slotsSinceSnapshot++;
      this.metrics.chosenSlots.inc();
      this.metrics.appliedCommands.inc(applied.commands);
      if (applied.requests > 0) this.metrics.batchSize.observe(applied.requests);
    }
    const skipped = this.machine.duplicates + this.machine.malformed - skippedBefore;
    if (skipped > 0) this.metrics.skippedRequests.inc(skipped);
    if (ready.chosen.length > 0) this.io.flushReplies();
    this.maybeSnapshot();
    return { foreignApplied };
  }

  /**
   * Log compaction: once enough was applied, the application's image at the applied slot
   * replaces the log up to it (the WAL writes it to its own file and drops the segments it
   * covers). A peer that falls behind it is sent the snapshot. The embedded store is serialized
   * in pieces of a few milliseconds while applying goes on (src/app/kv-snapshot-job.ts).
   */
  private maybeSnapshot(): void {
    if (
      this.bytesSinceSnapshot < this.config.snapshotEveryBytes &&
      this.slotsSinceSnapshot < SNAPSHOT_EVERY_SLOTS
    )
      return;
    if (this.checkpointing) return; // one at a time; the next trigger tries again
    const started = performance.now();
    const slot = this.appliedSlot;
    this.bytesSinceSnapshot = 0;
    this.slotsSinceSnapshot = 0;
    // The image as of `slot`, taken in the background when the app can (the embedded store a
    // piece at a time, a program's copy by its checkpoint hook): it belongs at `slot` even though
    // more is applied meanwhile. Only an app that cannot is serialized here and now.
    const later = this.machine.snapshotLater();
    if (later === null) {
      const data = this.machine.snapshot();
      if (data !== null) this.compacted(slot, data, started);
      return; // no snapshot at all: the whole log stays (--app-log-max-bytes)
    }
    this.checkpointing = true;
    const bytesAtSlot = this.uncompactedBytes;
    later.then(
      (checkpoint) => {
        this.checkpointing = false;
        if (checkpoint === null) {
          this.log.info(
            { slot },
            "no checkpoint now: a client connection holds state a checkpoint cannot keep (MULTI, SELECT, a subscription, a blocked command); trying again later",
          );
          return;
        }
        const appliedSince = this.uncompactedBytes - bytesAtSlot;
        this.compacted(slot, checkpoint, started);
        this.uncompactedBytes = Math.max(0, appliedSince);
      },
      (error: unknown) => {
        this.checkpointing = false;
        this.log.error({ err: error, slot }, "the checkpoint hook failed; the log is kept");
      },
    );
  }

  /** The log up to `slot` is replaced by `data`. */
  private compacted(slot: number, data: Uint8Array, startedMs: number): void {
    this.io.compact({ slot, data });
    this.uncompactedBytes = 0;
    this.log.info(
      {
        slot,
        bytes: data.byteLength,
        keys: this.machine.app.keyCount(),
        ms: Math.round(performance.now() - startedMs),
      },
      "snapshot taken; the log before it is dropped",
    );
    this.metrics.snapshots.inc();
  }

  /** Under --app the log is never compacted: past --app-log-max-bytes new requests are refused. */
  logFull(): boolean {
    if (this.config.app === null || this.uncompactedBytes < this.config.appLogBytesMax)
      return false;
    if (!this.logFullWarned) {
      this.logFullWarned = true;
      this.log.error(
        { bytes: this.uncompactedBytes, limit: this.config.appLogBytesMax },
        "the log is full (--app-log-max-bytes): a program's copy cannot be snapshotted yet, so the log cannot be compacted; new requests are refused with an error",
      );
    }
    return true;
  }

  get logBytes(): number {
    return this.uncompactedBytes;
  }

  /** One replica's output digest (ours or a peer's) against the others' (output-check.ts). */
  judgeOutput(replica: number, steps: number, digest: string): void {
    for (const d of this.outputCheck.report(replica, steps, digest)) {
      this.metrics.outputDivergences.inc({ replica: String(d.replica) });
      if (d.replica === this.config.id) {
        this.io.diverged(
          new Error(
            `this replica's copy of the program diverged: after ${d.steps} applied steps its output digest is ${d.digest}, a majority's is ${d.majorityDigest} (its copy was changed behind the replica's back, runs another configuration or version, or decided something by its own clock). Stopping; on restart it rebuilds its copy from the log`,
          ),
          d.steps,
          d.digest,
        );
        continue;
      }
      this.log.error(
        { replica: d.replica, steps: d.steps, digest: d.digest, majorityDigest: d.majorityDigest },
        `OUTPUT DIVERGENCE: replica ${d.replica}'s copy of the program answered differently from the majority's by step ${d.steps}; it stops serving and voting until it is rebuilt from the log`,
      );
    }
  }

  /** What /status shows under "app". */
  describe(): Record<string, unknown> {
    const divergences: readonly Divergence[] = this.outputCheck.found.slice(-8);
    return {
      ...this.machine.app.describe(),
      divergences,
      logBytes: this.uncompactedBytes,
      logBytesMax: this.config.app === null ? null : this.config.appLogBytesMax,
    };
  }
}

import * as hdr from "hdr-histogram-js";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LatencySummary } from "../../runtime/thread-contracts.ts";

/** Seconds; fine at the low end, where a healthy consensus round lives (50 µs .. 5 ms). */
const LATENCY_BUCKETS_S = [
  0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
  0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Metrics of the consensus worker, on a registry of its own (the main thread aggregates). */
/** The core's counters (src/core/replica.ts `counts`). */
export interface CoreCounters {
  readonly droppedMessages: number;
  readonly retransmittedAccepts: number;
  readonly droppedFarSlots: number;
  readonly droppedReads: number;
  readonly transfersStarted: number;
  readonly transfersCompleted: number;
  readonly transfersTimedOut: number;
  readonly transfersAborted: number;
  readonly transferCampaigns: number;
  readonly transferCampaignsWon: number;
}

export class ConsensusMetrics {
  readonly registry = new Registry();
  readonly proposals = new Counter({
    name: "apus_proposals_total",
    help: "Client requests proposed by this replica as leader (each may hold pipelined commands)",
    registers: [this.registry],
  });
  readonly leaderTransfers = new Counter({
    name: "apus_leader_transfers_total",
    help: "Leadership transfers this replica began as leader, by outcome: started; completed (it met its target's higher ballot and stepped down); timed-out (the target did not take over within an election timeout; it leads on); aborted (it stopped leading before meeting its target's higher ballot: check-quorum or a third replica's ballot; or a transfer to another target replaced it); campaigned (this replica was a target and started Phase 1 at once); campaign-won (... and won with that ballot)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly forwarded = new Counter({
    name: "apus_forwarded_total",
    help: "Client requests this follower forwarded to the leader",
    registers: [this.registry],
  });
  readonly reads = new Counter({
    name: "apus_reads_total",
    help: "Read-only requests served without the log (--reads index), by outcome: served at a read index; timeout (no index or apply within --request-timeout-ms); dropped-at-leader (the leader's read queue was full)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly skippedRequests = new Counter({
    name: "apus_skipped_requests_total",
    help: "Log commands not run: a copy of a request that already ran (sent again after a leader change), or undecodable",
    registers: [this.registry],
  });
  readonly resent = new Counter({
    name: "apus_requests_resent_total",
    help: "Requests sent again after a leader change or a lost forward (they run once)",
    registers: [this.registry],
  });
  readonly forwardRefused = new Counter({
    name: "apus_forward_refused_total",
    help: "Forwarded requests a former leader refused without proposing them, sent again",
    registers: [this.registry],
  });
  readonly appliedCommands = new Counter({
    name: "apus_applied_commands_total",
    help: "Client commands applied to the state machine",
    registers: [this.registry],
  });
  readonly chosenSlots = new Counter({
    name: "apus_chosen_slots_total",
    help: "Consensus slots learned chosen and applied",
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "apus_batch_requests",
    help: "Client requests per chosen slot",
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });
  readonly consensusLatency = new Histogram({
    name: "apus_consensus_latency_seconds",
    help: "At the leader: a request taken from its ring until its slot is chosen and applied",
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly requestLatency = new Histogram({
    name: "apus_request_latency_seconds",
    help: "Any replica: a request taken from its ring until its reply is handed back",
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly requestErrors = new Counter({
    name: "apus_request_errors_total",
    help: "Requests answered with an error before reaching the log, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly elections = new Counter({
    name: "apus_leader_changes_total",
    help: "Times this replica saw the leader change (including becoming leader)",
    registers: [this.registry],
  });
  readonly becameLeader = new Counter({
    name: "apus_became_leader_total",
    help: "Times this replica became leader",
    registers: [this.registry],
  });
  readonly messagesSent = new Counter({
    name: "apus_peer_messages_sent_total",
    help: "Core messages sent to peers, by type",
    labelNames: ["type"],
    registers: [this.registry],
  });
  readonly retransmits = new Counter({
    name: "apus_accept_retransmits_total",
    help: "Accept messages sent again for a slot already sent to that peer",
    registers: [this.registry],
  });
  readonly droppedPackets = new Counter({
    name: "apus_dropped_packets_total",
    help: "Peer packets or messages dropped, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly peerSettings = new Gauge({
    name: "apus_peer_settings_agree",
    help: "Per peer: 1 when its settings that must agree (--max-value-bytes, --max-reply-bytes, --max-memory, the app) match this replica's, 0 when they differ (its messages are dropped), absent before its first hello",
    labelNames: ["peer"],
    registers: [this.registry],
  });
  readonly peerFramesSecondKey = new Counter({
    name: "apus_peer_frames_second_key_total",
    help: "Peer frames accepted under the second key of --secret-file (the old one, once the new key is on the first line), by sending replica: when no replica's count grows, every replica signs with the first key",
    labelNames: ["peer"],
    registers: [this.registry],
  });
  readonly fsyncLatency = new Histogram({
    name: "apus_wal_fsync_seconds",
    help: "WAL write + fdatasync per group commit",
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly fsyncBytes = new Counter({
    name: "apus_wal_bytes_total",
    help: "Bytes written to the WAL",
    registers: [this.registry],
  });
  readonly snapshots = new Counter({
    name: "apus_snapshots_total",
    help: "Snapshots of the store taken for log compaction",
    registers: [this.registry],
  });
  readonly outputDivergences = new Counter({
    name: "apus_output_divergences_total",
    help: "Output checking (--app): times a replica's copy answered differently from a majority's",
    labelNames: ["replica"],
    registers: [this.registry],
  });
  readonly role = new Gauge({
    name: "apus_role",
    help: "1 for this replica's current role",
    labelNames: ["role"],
    registers: [this.registry],
  });
  readonly members = new Gauge({
    name: "apus_members",
    help: "Members of the configuration that governs this replica's next slot, by role (voter, learner); 0 while a joining replica knows none",
    labelNames: ["role"],
    registers: [this.registry],
  });
  readonly commitIndex = new Gauge({
    name: "apus_commit_index",
    help: "Highest slot known chosen",
    registers: [this.registry],
  });
  readonly pendingRequests = new Gauge({
    name: "apus_pending_requests",
    help: "Requests waiting for consensus at this replica",
    registers: [this.registry],
  });
  readonly ringRequestBytes = new Gauge({
    name: "apus_ring_request_bytes",
    help: "Bytes waiting in the request rings (connection workers to consensus worker)",
    registers: [this.registry],
  });
  readonly replyOverflow = new Gauge({
    name: "apus_reply_overflow_records",
    help: "Reply records waiting for space in a full reply ring",
    registers: [this.registry],
  });
  readonly keys = new Gauge({
    name: "apus_store_keys",
    help: "Keys in the embedded store",
    registers: [this.registry],
  });

  readonly snapshotStreamBytesSent = new Counter({
    name: "apus_snapshot_stream_bytes_sent_total",
    help: "Snapshot bytes written to the snapshot stream (chunks; a resumed transfer sends only what the receiver lacked)",
    registers: [this.registry],
  });
  readonly snapshotStreamBytesReceived = new Counter({
    name: "apus_snapshot_stream_bytes_received_total",
    help: "Snapshot bytes received on the snapshot stream and kept (authenticated chunks at the expected offset)",
    registers: [this.registry],
  });
  readonly snapshotStreamCompleted = new Counter({
    name: "apus_snapshot_stream_transfers_completed_total",
    help: "Snapshot transfers completed, by direction (out: the receiver said delivered; in: whole, digest checked, handed to the core)",
    labelNames: ["direction"],
    registers: [this.registry],
  });
  readonly snapshotStreamResumed = new Counter({
    name: "apus_snapshot_stream_transfers_resumed_total",
    help: "Snapshot transfers resumed after a break at the offset the receiver held (not 0), by direction",
    labelNames: ["direction"],
    registers: [this.registry],
  });
  readonly snapshotStreamFailed = new Counter({
    name: "apus_snapshot_stream_transfers_failed_total",
    help: "Snapshot transfers (or attempts, which resume) that failed, by direction and reason: connection, stalled, handshake, auth (a forged or replayed frame), malformed (a truncated or out-of-order one), digest, refused, replaced, gave-up, decode",
    labelNames: ["direction", "reason"],
    registers: [this.registry],
  });

  /** Exact quantiles for /status and benchmarks (a Prometheus histogram has only buckets). */
  private readonly consensusHdr = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  /** The core's running totals as last exported (see exportCoreCounters). */
  private coreCountersExported: CoreCounters = {
    droppedMessages: 0,
    retransmittedAccepts: 0,
    droppedFarSlots: 0,
    droppedReads: 0,
    transfersStarted: 0,
    transfersCompleted: 0,
    transfersTimedOut: 0,
    transfersAborted: 0,
    transferCampaigns: 0,
    transferCampaignsWon: 0,
  };

  /**
   * Publish the core's own counters (Replica.status().counters, running totals) into the
   * Prometheus counters: each call adds what grew since the last. Called before every scrape, so
   * nothing counts by diffing the core around tick() or step().
   */
  exportCoreCounters(counters: CoreCounters): void {
    const last = this.coreCountersExported;
    const grew = (now: number, then: number) => Math.max(0, now - then);
    const resent = grew(counters.retransmittedAccepts, last.retransmittedAccepts);
    const refused = grew(counters.droppedMessages, last.droppedMessages);
    const far = grew(counters.droppedFarSlots, last.droppedFarSlots);
    const reads = grew(counters.droppedReads, last.droppedReads);
    if (reads > 0) this.reads.inc({ outcome: "dropped-at-leader" }, reads);
    if (resent > 0) this.retransmits.inc(resent);
    if (refused > 0) this.droppedPackets.inc({ reason: "core-refused" }, refused);
    if (far > 0) this.droppedPackets.inc({ reason: "far-slot" }, far);
    const transfers = [
      ["started", counters.transfersStarted, last.transfersStarted],
      ["completed", counters.transfersCompleted, last.transfersCompleted],
      ["timed-out", counters.transfersTimedOut, last.transfersTimedOut],
      ["aborted", counters.transfersAborted, last.transfersAborted],
      ["campaigned", counters.transferCampaigns, last.transferCampaigns],
      ["campaign-won", counters.transferCampaignsWon, last.transferCampaignsWon],
    ] as const;
    for (const [outcome, now, then] of transfers) {
      const more = grew(now, then);
      if (more > 0) this.leaderTransfers.inc({ outcome }, more);
    }
    this.coreCountersExported = { ...counters };
  }

  observeConsensus(micros: number): void {
    this.consensusLatency.observe(micros / 1e6);
    this.consensusHdr.recordValue(Math.max(1, Math.min(60_000_000, Math.round(micros))));
  }

  latency(reset: boolean): LatencySummary {
    const h = this.consensusHdr;
    const summary: LatencySummary = {
      count: h.totalCount,
      p50Us: h.getValueAtPercentile(50),
      p90Us: h.getValueAtPercentile(90),
      p99Us: h.getValueAtPercentile(99),
      maxUs: h.maxValue,
    };
    if (reset) h.reset();
    return summary;
  }
}

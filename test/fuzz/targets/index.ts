/** Every fuzz target, in the order the runner and the CI test run them. */
import type { FuzzTarget } from "../target.ts";
import { commandCodecTarget } from "./command-codec.ts";
import { copyCheckpointTarget } from "./copy-checkpoint.ts";
import { digestReportTarget } from "./digest-report.ts";
import { frameRecordsTarget, reassemblyTarget } from "./frame-body.ts";
import { frameOpenTarget } from "./frame-open.ts";
import { frameReaderTarget } from "./frame-reader.ts";
import { kvSnapshotTarget } from "./kv-snapshot.ts";
import { logCommandTarget } from "./log-command.ts";
import { memcacheRepliesTarget, memcacheRequestsTarget } from "./memcache-codec.ts";
import { peerHelloTarget } from "./peer-hello.ts";
import { rawCodecTarget } from "./raw-codec.ts";
import { respCodecRepliesTarget, respCodecRequestsTarget } from "./resp-codec.ts";
import { respParserTarget } from "./resp-parser.ts";
import { snapshotStreamTarget } from "./snapshot-stream.ts";
import { tcpHandshakeTarget } from "./tcp-handshake.ts";
import { walRecoveryTarget } from "./wal-recovery.ts";
import { walSegmentTarget } from "./wal-segment.ts";
import { wireTarget } from "./wire.ts";

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  // Client bytes: anyone who reaches the client port.
  respParserTarget,
  respCodecRequestsTarget,
  memcacheRequestsTarget,
  rawCodecTarget,
  // A program copy's replies (transparent mode).
  respCodecRepliesTarget,
  memcacheRepliesTarget,
  // Peer bytes: before authentication, then after the MAC.
  tcpHandshakeTarget,
  frameReaderTarget,
  frameOpenTarget,
  frameRecordsTarget,
  reassemblyTarget,
  snapshotStreamTarget,
  wireTarget,
  commandCodecTarget,
  logCommandTarget,
  peerHelloTarget,
  digestReportTarget,
  // Disk and snapshots.
  walSegmentTarget,
  walRecoveryTarget,
  kvSnapshotTarget,
  copyCheckpointTarget,
];

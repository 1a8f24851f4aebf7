import { formatBallot } from "../../core/ballot.ts";
import type { Replica } from "../../core/replica.ts";
import type { ReplicaConfig } from "../../runtime/config.ts";
import { formatPeerAddress } from "../../runtime/peer-list.ts";
import type {
  MembersView,
  ReplicaStatus,
  SnapshotTransferStatus,
} from "../../runtime/thread-contracts.ts";

/** What the core says of itself (Replica.status()). */
export type CoreStatus = ReturnType<Replica["status"]>;

/** The consensus worker's state around the core, for /status. */
export interface StatusInputs {
  readonly config: ReplicaConfig;
  readonly core: CoreStatus;
  /** Ticks since start, and their length: how long ago the leader heard each peer. */
  readonly ticks: number;
  readonly tickMs: number;
  readonly pendingRequests: number;
  readonly keys: number;
  readonly app: Record<string, unknown>;
  readonly workers: number;
  readonly uptimeMs: number;
  /** Snapshot transfers on the snapshot stream now, both ways (absent: none). */
  readonly snapshotTransfers?: readonly SnapshotTransferStatus[];
  /** The configuration (membership-admin.ts). */
  readonly members: MembersView;
}

/** A replica's peer address: the configuration's, else --peers'. */
function peerAddress(inputs: StatusInputs, id: number): string {
  const fromConfiguration = [inputs.members.latest, inputs.members.current]
    .flatMap((c) => c?.members ?? [])
    .find((m) => m.id === id && m.address !== "");
  if (fromConfiguration !== undefined) return fromConfiguration.address;
  const listed = inputs.config.peers[id - 1];
  return listed == null ? "" : formatPeerAddress(listed);
}

/** /status of one replica, as JSON: a pure function of the core's status and the runtime's. */
export function describeReplica(inputs: StatusInputs): ReplicaStatus {
  const { config, core: s } = inputs;
  return {
    id: config.id,
    role: s.role,
    leader: s.leaderId === 0 ? null : s.leaderId,
    // A follower has no ballot of its own: show the one it promised (its leader's, normally).
    ballot: formatBallot(s.role === "follower" ? s.promised : s.ballot),
    promised: formatBallot(s.promised),
    commitIndex: s.chosenSlot,
    appliedIndex: s.appliedSlot,
    lastSlot: s.lastSlot,
    inFlightSlots: s.inFlightSlots,
    ...(s.transferTarget !== 0 ? { transferringTo: s.transferTarget } : {}),
    pendingRequests: inputs.pendingRequests,
    keys: inputs.keys,
    app: inputs.app,
    durability: config.durability,
    transport: config.transport,
    workers: inputs.workers,
    uptimeMs: Math.round(inputs.uptimeMs),
    ...(inputs.snapshotTransfers !== undefined && inputs.snapshotTransfers.length > 0
      ? { snapshotTransfers: inputs.snapshotTransfers }
      : {}),
    members: {
      current: inputs.members.current,
      latest: inputs.members.latest,
      changing: inputs.members.changing,
      removed: inputs.members.removed,
    },
    peers: s.peers.map((p) => ({
      id: p.id,
      address: peerAddress(inputs, p.id),
      chosenSlot: p.id === config.id ? s.chosenSlot : p.chosenSlot,
      lastHeardMsAgo:
        p.id === config.id || s.role !== "leader"
          ? null
          : (inputs.ticks - p.heardTick) * inputs.tickMs,
    })),
  };
}

/** The replication section of INFO: Redis's own fields, then apus-smr's. */
export function replicationInfo(config: ReplicaConfig, s: CoreStatus): string {
  const role = s.role === "leader" ? "master" : "slave";
  return [
    `role:${role}`,
    `apus_role:${s.role}`,
    `apus_replica_id:${config.id}`,
    `apus_replicas:${s.peers.length + 1}`,
    `apus_leader_id:${s.leaderId}`,
    `apus_ballot:${formatBallot(s.role === "follower" ? s.promised : s.ballot)}`,
    `apus_commit_index:${s.chosenSlot}`,
    `apus_applied_index:${s.appliedSlot}`,
    `apus_durability:${config.durability}`,
  ].join("\r\n");
}

import { ApusError } from "../core/errors.ts";
import { REPLICA_ID_MAX } from "../core/membership.ts";
import { MESSAGE_BYTES_MAX_DEFAULT, MESSAGE_BYTES_MAX_LIMIT, SECRET_BYTES_MIN } from "../limits.ts";
import { PEER_SECRETS_MAX } from "./peer-keys.ts";
import type { PeerTlsMaterial } from "./peer-tls.ts";
import { TransportError } from "./transport-errors.ts";

/**
 * Peer transports: how the consensus thread of one replica exchanges messages with its peers.
 * The transport carries opaque bytes (the core's `encodeMessage` output on channel 0, forwarded
 * client requests on channel 1); it authenticates every frame with an HMAC under a key derived
 * from the cluster secret, drops replayed frames, and drops, counting by reason, anything it
 * cannot trust. It never throws for network
 * conditions: a peer that is down, a lost datagram or a hostile packet are normal operation,
 * and Paxos retransmits.
 */

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TransportOptions {
  /** This replica's id (a stable identity, 1..peerIdsMax(options)); peers[id-1] is where we bind. */
  readonly id: number;
  /**
   * Index id - 1: replica id's address; null (or a hole) where no replica has that id at start. Replicas
   * come and go later with addPeer and removePeer (the membership, src/core/membership.ts).
   */
  readonly peers: readonly (PeerAddress | null)[];
  /** u32; frames of another cluster are dropped ("cluster"). */
  readonly clusterId: number;
  /**
   * The cluster secrets, each at least SECRET_BYTES_MIN bytes: one, or two during a key roll.
   * Frame keys are derived from them (peer-keys.ts); the first signs, either verifies.
   */
  readonly secrets: readonly Uint8Array[];
  /**
   * This run of the replica: a safe integer >= 1, greater than any earlier run's (peers drop
   * frames of an older incarnation as replays). replica-runner.ts makes it (peer-incarnation.ts).
   */
  readonly incarnation: number;
  /**
   * Largest payload accepted or sent, in bytes (MESSAGE_BYTES_MAX_DEFAULT = 16 MiB is the usual
   * setting). A larger send() is dropped and counted "oversize".
   */
  readonly messageBytesMax: number;
  /**
   * UDP only: bytes per datagram (the whole frame: header, body and tag). The default,
   * UDP_DATAGRAM_BYTES_DEFAULT (65000), suits loopback and LANs that carry IP fragments; use 1400
   * on WAN paths with a 1500-byte MTU (1500 - 20 IPv4 - 8 UDP = 1472, less room for IPv6 and
   * tunnels), so no datagram relies on IP fragmentation. macOS limits loopback datagrams to
   * 9216 bytes unless `sysctl net.inet.udp.maxdgram` is raised.
   */
  readonly datagramBytesMax?: number;
  /**
   * Called for every dropped frame, message or partial message. `from` is the remote address
   * ("127.0.0.1:7002") for inbound drops, or "peer N" for drops of our own sends and of
   * partial messages that timed out.
   */
  readonly onDrop?: (reason: DropReason, from: string) => void;
  /**
   * Called for every frame accepted under the second secret of a key roll, with its sender: in
   * the roll's second round (new secret first, old second), when no peer's count grows any more,
   * every replica signs with the new secret (peer-keys.ts).
   */
  readonly onSecondKey?: (from: number) => void;
  /**
   * TCP only: mutual TLS between peers (peer-tls.ts; readPeerTls reads and checks the files of
   * --peer-tls-cert, --peer-tls-key, --peer-tls-ca). Absent: plain TCP. The peer handshake and
   * the frame MAC run inside TLS as without it.
   */
  readonly tls?: PeerTlsMaterial;
  /**
   * TCP only (--peer-handshake-timeout-ms): a connection that has not finished TLS (if on) and
   * the peer handshake this long after it was accepted or connected is closed, counted
   * "handshake". Default TCP_HANDSHAKE_TIMEOUT_MS_DEFAULT (5000).
   */
  readonly handshakeTimeoutMs?: number;
  /**
   * TCP only: an authenticated connection part way through a frame that receives nothing for
   * this long is closed, counted "stalled" (idle between frames is fine). Default
   * TCP_FRAME_STALL_TIMEOUT_MS_DEFAULT (10000).
   */
  readonly frameStallTimeoutMs?: number;
  /**
   * UDP only (--peer-recv-buffer-bytes): SO_RCVBUF to ask for; absent or 0, UDP_SOCKET_BUFFER_BYTES.
   * A message larger than the buffer, sent in one burst of fragments, is lost every time: the
   * reason snapshots travel on the snapshot stream instead.
   */
  readonly recvBufferBytes?: number;
}

export type DropReason =
  /** The HMAC tag does not match (wrong secret, corrupted or forged frame). */
  | "auth"
  /** Too short, bad magic or version, unknown flags, or a body that does not parse. */
  | "malformed"
  /** Well formed but of another clusterId. */
  | "cluster"
  /** A send() or a claimed length above messageBytesMax. */
  | "oversize"
  /**
   * Authenticated, but `from` is outside 1..peerIdsMax or not a peer now (not in the membership
   * this replica knows, or removed from it), or `to` is not this replica; or a send to an id
   * that is no peer now (a member the runtime has not added yet).
   */
  | "unknown-peer"
  /**
   * Authenticated, but seen before: an older incarnation of its sender, or a sequence number
   * already seen or below the replay window (replay-window.ts).
   */
  | "replay"
  /**
   * Authenticated, but its sender did not yet know this replica's current incarnation: sent
   * before this replica restarted, or a recording replayed. UDP answers with a session frame;
   * TCP counts it (its handshake already told the sender our incarnation) and discards frames
   * queued for an earlier run. A few right after either side starts are normal.
   */
  | "stale-session"
  /** A partial message dropped: timed out, evicted by the per-peer limit, or inconsistent. */
  | "reassembly"
  /** The socket refused a datagram or frame, or the transport is closed. */
  | "send-error"
  /** The per-peer send queue is at its byte limit (a peer that is down or slow). */
  | "queue-full"
  /**
   * TCP: a connection closed before it authenticated — a handshake message that fails a check
   * (another secret or cluster, a replayed transcript), a refused certificate, the handshake
   * timeout, evicted by a newer stranger, or closed by its sender — or, outbound, a peer that
   * did not authenticate itself to us. One per connection.
   */
  | "handshake"
  /** TCP: an authenticated connection stopped part way through a frame (frameStallTimeoutMs). */
  | "stalled";

export const DROP_REASONS: readonly DropReason[] = [
  "auth",
  "malformed",
  "cluster",
  "oversize",
  "unknown-peer",
  "replay",
  "stale-session",
  "reassembly",
  "send-error",
  "queue-full",
  "handshake",
  "stalled",
];

export interface TransportStats {
  /** Messages accepted by send() and queued for the wire. */
  readonly messagesSent: number;
  /** Messages delivered to onMessage. */
  readonly messagesReceived: number;
  /** Bytes handed to the socket (frames with headers and tags; TCP length prefixes included). */
  readonly bytesSent: number;
  /** Bytes read from the socket, dropped ones included. */
  readonly bytesReceived: number;
  /** Datagrams (UDP) or frames (TCP) handed to the socket. */
  readonly datagramsSent: number;
  /** Frames accepted under the second secret of a key roll (see TransportOptions.onSecondKey). */
  readonly framesSecondKey: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

export interface Transport {
  /**
   * Queue a message for peer `to` on `channel` (0..255; the runtime uses 0 for core messages, 1
   * for client requests forwarded to the leader). The payload is copied before send() returns:
   * the caller may reuse its buffer at once. Never throws for network conditions; a `to` that is
   * no peer now is dropped, counted "unknown-peer" (the membership moves under the sender); one
   * outside 1..peerIdsMax, or an invalid `channel`, is a programmer error and asserts.
   */
  send(to: number, channel: number, payload: Uint8Array): void;
  /**
   * Follow the membership: `id` (not ours) is reached at `address` from now on, a new member or
   * one that moved (its queue and connections to the old address go). Idempotent. False when
   * this transport cannot reach replicas it did not start with (shm: fixed at start).
   */
  addPeer(id: number, address: PeerAddress): boolean;
  /**
   * `id` is no peer any more (removed from the configuration): what is queued for it is dropped,
   * its connections closed, and its frames dropped "unknown-peer" until it is added again.
   */
  removePeer(id: number): void;
  /** Whether `id` is a peer now (added at start or by addPeer, and not removed). */
  hasPeer(id: number): boolean;
  /**
   * Put everything queued on the wire: small messages to the same peer are coalesced into one
   * datagram/frame write. The runtime calls this once per event-loop turn of work.
   */
  flush(): void;
  /**
   * Set before start(). Called for each authenticated, complete message. `payload` may be a view
   * valid only during the call (copy it to keep it). The UDP and TCP transports hand out views
   * of buffers they never reuse, so for them a view stays valid afterwards, but it keeps the
   * whole datagram or frame alive; a shared-memory transport may not give that guarantee.
   */
  onMessage: (from: number, channel: number, payload: Uint8Array) => void;
  /** Bind/listen. Rejects with TransportError("ERR_TRANSPORT") naming the address and what to do. */
  start(): Promise<void>;
  /** Release sockets and timers; queued messages are discarded. Idempotent. */
  close(): Promise<void>;
  stats(): TransportStats;
}

/** Shared limits of the transport (src/limits.ts): a shorter HMAC key is a configuration mistake. */
export { MESSAGE_BYTES_MAX_DEFAULT, MESSAGE_BYTES_MAX_LIMIT, SECRET_BYTES_MIN };
/** Replica ids are one byte on the wire. */
export const PEERS_MAX = 255;

/**
 * The ids a transport takes frames from and may be told to send to: 1..REPLICA_ID_MAX (the
 * core's stable ids; a member may join with any of them), or 1..peers.length when longer.
 */
export function peerIdsMax(options: Pick<TransportOptions, "peers">): number {
  return Math.max(options.peers.length, REPLICA_ID_MAX);
}
const U32_MAX = 0xffff_ffff;

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

/** Validate options once, at the edge, naming the option. */
export function validateTransportOptions(options: TransportOptions): void {
  const { id, peers, clusterId, secrets, incarnation, messageBytesMax } = options;
  if (peers.length < 1 || peers.length > PEERS_MAX) {
    throw invalid(`peers lists ${peers.length} replicas; a cluster has 1 to ${PEERS_MAX}`);
  }
  if (!Number.isInteger(id) || id < 1 || id > peers.length || peers[id - 1] == null) {
    throw invalid(`id is ${id} but peers has no address for it (peers[${id - 1}])`);
  }
  peers.forEach((peer, index) => {
    if (peer !== null) checkPeerAddress(index + 1, peer);
  });
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > U32_MAX) {
    throw invalid(`clusterId ${clusterId} is not a u32 (0..${U32_MAX})`);
  }
  if (secrets.length < 1 || secrets.length > PEER_SECRETS_MAX) {
    throw invalid(
      `secrets lists ${secrets.length} keys; give 1, or ${PEER_SECRETS_MAX} during a key roll`,
    );
  }
  secrets.forEach((secret, index) => {
    if (secret.byteLength < SECRET_BYTES_MIN) {
      throw invalid(
        `secrets[${index}] is ${secret.byteLength} bytes; use at least ${SECRET_BYTES_MIN} (e.g. openssl rand -hex 32)`,
      );
    }
  });
  if (!Number.isSafeInteger(incarnation) || incarnation < 1) {
    throw invalid(`incarnation ${incarnation} is not a safe integer >= 1`);
  }
  if (
    !Number.isInteger(messageBytesMax) ||
    messageBytesMax < 1 ||
    messageBytesMax > MESSAGE_BYTES_MAX_LIMIT
  ) {
    throw invalid(
      `messageBytesMax ${messageBytesMax} is out of range; use 1..${MESSAGE_BYTES_MAX_LIMIT}`,
    );
  }
}

/** A peer's address as the transports take it, else ApusError naming the replica. */
export function checkPeerAddress(id: number, peer: PeerAddress): void {
  if (typeof peer.host !== "string" || peer.host.length === 0) {
    throw invalid(`peers[${id - 1}] (replica ${id}) has an empty host`);
  }
  if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
    throw invalid(`peers[${id - 1}] (replica ${id}) has port ${peer.port}; use 1..65535`);
  }
}

/** Mutable counters behind TransportStats. */
export class StatsCounter {
  messagesSent = 0;
  messagesReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  datagramsSent = 0;
  framesSecondKey = 0;
  readonly dropped: Record<DropReason, number> = {
    auth: 0,
    malformed: 0,
    cluster: 0,
    oversize: 0,
    "unknown-peer": 0,
    replay: 0,
    "stale-session": 0,
    reassembly: 0,
    "send-error": 0,
    "queue-full": 0,
    handshake: 0,
    stalled: 0,
  };

  snapshot(): TransportStats {
    return {
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      datagramsSent: this.datagramsSent,
      framesSecondKey: this.framesSecondKey,
      dropped: { ...this.dropped },
    };
  }
}

/** Address string for drop reports about our own sends and partial messages. */
export function peerLabel(id: number): string {
  return `peer ${id}`;
}

/** The bind error, turned into what the operator should do about it. */
export function bindError(kind: "udp" | "tcp", peer: PeerAddress, cause: unknown): TransportError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const where = `${kind} ${peer.host}:${peer.port}`;
  let advice: string;
  switch (code) {
    case "EADDRINUSE":
      advice =
        "address in use: another replica or process is bound there; stop it or change this replica's entry in --peers";
      break;
    case "EADDRNOTAVAIL":
      advice =
        "address not available on this machine: this replica's entry in --peers must be a local address";
      break;
    case "EACCES":
      advice = "permission denied: ports below 1024 need privileges; pick a higher port";
      break;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      advice = "host name does not resolve; check --peers";
      break;
    default:
      advice = `${code ?? String(cause)}; check this replica's entry in --peers`;
  }
  return new TransportError("ERR_TRANSPORT", `cannot bind ${where}: ${advice}`, { cause });
}

/**
 * The snapshot stream: what the sender (snapshot-sender.ts) and the receiver
 * (snapshot-receiver.ts) share. A core message that carries a snapshot is not given to the peer
 * transport (one UDP message cut in fragments, where one lost fragment loses all of it, and a
 * socket buffer smaller than the message loses it every time): the runtime hands its encoding to
 * the sender, which streams it over a TCP connection of its own to the receiver, in chunks, with
 * back-pressure, resuming after a break at the offset the receiver holds.
 *
 * Where it listens: TCP on the replica's peer host and port + --snapshot-port-offset (0 by
 * default: under the UDP transport the TCP port of the same number is free). Under
 * --transport tcp the TCP port is the transport's, so the stream runs only with a non-zero
 * offset, and without one a snapshot travels on the transport's connection as before (reliable,
 * but one message, at most --max-message-bytes; see the README).
 *
 * Security is the TCP transport's: the same handshake (tcp-handshake.ts) under the handshake key,
 * mutual TLS with --peer-tls-*, the certificate naming the --peers host, and frames under keys of
 * the connection (snapshot-stream-frame.ts).
 */
import { randomBytes } from "node:crypto";
import type net from "node:net";
import tls from "node:tls";
import { ApusError, assert } from "../core/errors.ts";
import type { PeerTlsMaterial } from "./peer-tls.ts";
import {
  CHANNEL_BINDING_BYTES,
  HANDSHAKE_NONCE_BYTES,
  type HandshakeParams,
  NO_CHANNEL_BINDING,
  TLS_EXPORTER_LABEL,
} from "./tcp-handshake.ts";
import {
  TCP_INBOUND_CONNECTIONS_MAX,
  TCP_UNAUTHENTICATED_PER_SOURCE_MAX,
} from "./tcp-transport.ts";
import type { PeerAddress } from "./transport.ts";

/** --snapshot-chunk-bytes's default: bytes of the transfer per CHUNK frame. */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1024 * 1024;
/** Smallest and largest chunk accepted (the receiver reads frames up to the largest). */
export const SNAPSHOT_CHUNK_BYTES_MIN = 4 * 1024;
export const SNAPSHOT_CHUNK_BYTES_MAX = 16 * 1024 * 1024;
/**
 * --snapshot-stall-timeout-ms's default: a connection whose transfer makes no progress this long
 * (no chunk read at the receiver, no ACK at the sender) is closed; the sender connects again and
 * resumes.
 */
export const SNAPSHOT_STALL_TIMEOUT_MS_DEFAULT = 10_000;
/**
 * --snapshot-memory-max-bytes's default: the largest transfer a receiver without a data directory
 * (--durability memory) holds in memory; a larger OFFER is refused (DONE refused), counted.
 */
export const SNAPSHOT_MEMORY_BYTES_MAX_DEFAULT = 1024 * 1024 * 1024;
/**
 * A sender that has made no progress (bytes acknowledged) for this long gives its transfer up,
 * counted "gave-up", and frees the bytes; the core sends the snapshot again later, and a receiver
 * that kept what it had resumes.
 */
export const SNAPSHOT_GIVE_UP_MS = 60_000;
/**
 * A transfer completed to a peer is not started again for the same message within this long: the
 * core may resend it before the receiver's answer shows it installed.
 */
export const SNAPSHOT_REPEAT_AFTER_MS = 10_000;
/**
 * A transfer delivered to the core is kept whole (in the partial store: on disk with a data
 * directory, else in memory, at most --snapshot-memory-max-bytes per peer as while it arrived)
 * and marked checked for this long, then thrown away. "Delivered" only means the core was handed
 * the message: it drops an InstallSnapshot while it recovers, so the sender's next offer of the
 * same snapshot must reach the core again; within this window it does without moving or hashing
 * a byte, after it the snapshot moves again. Longer than SNAPSHOT_REPEAT_AFTER_MS, the sender's
 * quiet time after a completed transfer, so a resend finds it.
 */
export const SNAPSHOT_DELIVERED_KEEP_MS = 60_000;
assert(
  SNAPSHOT_DELIVERED_KEEP_MS > SNAPSHOT_REPEAT_AFTER_MS,
  "a delivered transfer outlives the sender's quiet time",
);
/** Reconnect delay after a broken connection: doubles from MIN up to MAX. */
export const SNAPSHOT_RECONNECT_DELAY_MS_MIN = 50;
export const SNAPSHOT_RECONNECT_DELAY_MS_MAX = 2000;
/**
 * Unauthenticated inbound stream connections held at once, and from one source address: the TCP
 * transport's limits and policy (tcp-transport.ts says why). A new connection from a source at
 * its limit evicts that source's oldest; at the overall limit, the oldest of the source holding
 * the most goes, so a genuine peer's handshake (one connection from its source) is evicted only
 * when no source holds more than one, by about this many attacking addresses. Authenticated
 * connections are not counted: at most one per peer.
 */
export const SNAPSHOT_UNAUTHENTICATED_MAX = TCP_INBOUND_CONNECTIONS_MAX;
export const SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX = TCP_UNAUTHENTICATED_PER_SOURCE_MAX;

export type StreamDirection = "out" | "in";

/** Why a transfer (or one attempt of it) failed; counted per reason. */
export type StreamFailure =
  /** The connection closed or failed before the transfer ended (it resumes on the next). */
  | "connection"
  /** No progress for --snapshot-stall-timeout-ms. */
  | "stalled"
  /** The peer handshake (or TLS, or the certificate) failed. */
  | "handshake"
  /** A frame failed its tag, its seq or its format (forged, truncated, replayed). */
  | "auth"
  | "malformed"
  /** The whole transfer's SHA-256 is not the offered one (it restarts from 0). */
  | "digest"
  /**
   * The receiver refused it: too large for --snapshot-memory-max-bytes, for the free disk space
   * less a reserve, or for the host's memory; or its disk failed.
   */
  | "refused"
  /** The receiver's partial store failed outside a transfer's refusal (a disk error). */
  | "store"
  /** A newer message for the same peer replaced it. */
  | "replaced"
  /** No progress for SNAPSHOT_GIVE_UP_MS: dropped (the core sends again). */
  | "gave-up"
  /** The bytes arrived whole and checked, but did not decode as a core message. */
  | "decode"
  /** Whole and checked, but the receiver could not take it yet (settings agreement); kept. */
  | "not-ready";

/** What the stream reports, for metrics and logs (the runtime turns them into both). */
export type StreamEvent =
  | {
      readonly kind: "started";
      readonly direction: StreamDirection;
      readonly peer: number;
      readonly slot: number;
      readonly totalBytes: number;
    }
  | {
      readonly kind: "resumed";
      readonly direction: StreamDirection;
      readonly peer: number;
      readonly slot: number;
      readonly offset: number;
    }
  | { readonly kind: "bytes"; readonly direction: StreamDirection; readonly count: number }
  | {
      /** Partials thrown away at start: of no peer now, or abandoned (snapshot-partials.ts). */
      readonly kind: "pruned";
      readonly direction: "in";
      readonly count: number;
    }
  | {
      /** A message dropped: the transfer in progress to that peer answers for it (send). */
      readonly kind: "coalesced";
      readonly direction: "out";
      readonly peer: number;
      readonly slot: number;
    }
  | {
      readonly kind: "completed";
      readonly direction: StreamDirection;
      readonly peer: number;
      readonly slot: number;
      readonly totalBytes: number;
      /** Bytes moved by this run (a resumed transfer moved less than totalBytes). */
      readonly movedBytes: number;
      readonly elapsedMs: number;
    }
  | {
      readonly kind: "failed";
      readonly direction: StreamDirection;
      readonly peer: number;
      readonly slot: number;
      readonly reason: StreamFailure;
      /** What happened and what to do, where the reason alone does not say (a refusal). */
      readonly detail?: string;
    };

/** One transfer in progress, for /status. */
export interface StreamProgress {
  readonly direction: StreamDirection;
  readonly peer: number;
  readonly slot: number;
  /** Bytes the receiver holds (as last acknowledged, at the sender). */
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface SnapshotStreamOptions {
  /** This replica, 1..peers.length. */
  readonly id: number;
  /**
   * Where each replica's stream listens (its --peers address, port + --snapshot-port-offset):
   * index id - 1, null where no replica has that id at start (addPeer adds one later).
   */
  readonly peers: readonly (PeerAddress | null)[];
  readonly clusterId: number;
  /** The cluster secrets (as the transport's: the first signs, every one verifies). */
  readonly secrets: readonly Uint8Array[];
  /** This run of the replica, proved in the handshake (as the transport's). */
  readonly incarnation: number;
  /** Mutual TLS (--peer-tls-*); absent: plain TCP. */
  readonly tls?: PeerTlsMaterial;
  readonly handshakeTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly onEvent: (event: StreamEvent) => void;
}

/**
 * The stream's address book: replica id → where its stream listens. Starts from
 * SnapshotStreamOptions.peers; the membership may add, move and remove replicas later.
 */
export class StreamPeers {
  private readonly addresses = new Map<number, PeerAddress>();

  constructor(peers: readonly (PeerAddress | null)[]) {
    peers.forEach((peer, index) => {
      if (peer !== null) this.addresses.set(index + 1, peer);
    });
  }

  get(id: number): PeerAddress | undefined {
    return this.addresses.get(id);
  }

  set(id: number, address: PeerAddress): void {
    this.addresses.set(id, address);
  }

  delete(id: number): void {
    this.addresses.delete(id);
  }

  /** The largest id a handshake may name (its `peerCount`). */
  get idMax(): number {
    return Math.max(0, ...this.addresses.keys());
  }
}

export function streamAddresses(
  peers: readonly PeerAddress[],
  portOffset: number,
): readonly PeerAddress[] {
  return peers.map((peer) => {
    const port = peer.port + portOffset;
    if (port > 65535) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `--snapshot-port-offset: ${peer.host}:${peer.port} + ${portOffset} is past port 65535`,
      );
    }
    return { host: peer.host, port };
  });
}

/** RFC 9266's tls-exporter binding of a TLS socket; zeros on plain TCP. */
export function channelBinding(socket: net.Socket): Uint8Array {
  if (!(socket instanceof tls.TLSSocket)) return NO_CHANNEL_BINDING;
  return socket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, TLS_EXPORTER_LABEL, Buffer.alloc(0));
}

export function handshakeParams(
  options: SnapshotStreamOptions,
  peers: StreamPeers,
  keys: readonly Uint8Array[],
  binding: Uint8Array,
): HandshakeParams {
  return {
    keys,
    clusterId: options.clusterId,
    id: options.id,
    peerCount: Math.max(peers.idMax, options.id),
    nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
    binding,
    incarnation: options.incarnation,
  };
}

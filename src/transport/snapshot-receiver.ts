/**
 * The receiving end of the snapshot stream (snapshot-stream.ts): listens on TCP, authenticates
 * each connection as the TCP transport does (TLS if on, then the peer handshake within
 * handshakeTimeoutMs, nothing else read before), then reads one peer's frames
 * (snapshot-stream-frame.ts):
 *
 *   OFFER (slot, total, digest) → RESUME (bytes already held of that transfer, from the partial
 *   store; another transfer of that peer is thrown away) → CHUNKs, each at exactly the offset
 *   held, appended and answered with an ACK → once whole: the SHA-256 is checked, the bytes are
 *   handed to `deliver` and answered DONE delivered; a bad digest throws the bytes away and
 *   answers DONE digest-mismatch (the sender starts again from 0).
 *
 * A delivered transfer stays whole in the partial store for SNAPSHOT_DELIVERED_KEEP_MS, marked
 * checked: the core may have dropped it (an InstallSnapshot while it recovers), and an OFFER of
 * the same bytes then resumes at the end and is handed to the core again, not hashed again.
 * Nothing is ever answered "delivered" that was not handed to `deliver` on that OFFER.
 *
 * At most one authenticated connection per peer (a newer one closes the older) and one transfer
 * per peer. Unauthenticated connections: at most SNAPSHOT_UNAUTHENTICATED_MAX at once and
 * SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX per source address (a new one evicts its source's
 * oldest, or at the overall limit the oldest of the source holding the most, as the TCP
 * transport does). A
 * frame that fails any check closes the connection (what was held is kept), counted by reason.
 * A connection whose transfer is open and reads nothing for stallTimeoutMs is closed ("stalled").
 */
import net from "node:net";
import type tls from "node:tls";
import { assert } from "../core/errors.ts";
import { FrameReader } from "./frame-reader.ts";
import { derivePeerKeys } from "./peer-keys.ts";
import { createPeerTlsServer, peerCertificateProblem } from "./peer-tls.ts";
import type { PartialStore } from "./snapshot-partials.ts";
import {
  channelBinding,
  handshakeParams,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SNAPSHOT_DELIVERED_KEEP_MS,
  SNAPSHOT_UNAUTHENTICATED_MAX,
  SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX,
  type SnapshotStreamOptions,
  type StreamFailure,
  StreamPeers,
  type StreamProgress,
} from "./snapshot-stream.ts";
import {
  DoneOutcome,
  deriveStreamKeys,
  STREAM_FRAME_BYTES_MIN,
  type StreamFrame,
  StreamFrameType,
  StreamOpener,
  StreamSealer,
  sha256Pieces,
} from "./snapshot-stream-frame.ts";
import { HandshakeResponder, NO_CHANNEL_BINDING } from "./tcp-handshake.ts";
import { bindError, type PeerAddress } from "./transport.ts";
import { TransportError } from "./transport-errors.ts";

export type Delivery = "delivered" | "undecodable" | "not-ready";

export interface SnapshotReceiverOptions extends SnapshotStreamOptions {
  readonly partials: PartialStore;
  /**
   * A whole transfer, its digest checked: the encoded core message. "undecodable": it could not
   * be used; the sender is told "delivered" all the same (sending it again would not help), and
   * the failure is counted "decode". "not-ready": not now (the settings agreement with the sender
   * is not done): the bytes are kept, the sender told to offer again later.
   */
  readonly deliver: (from: number, bytes: Buffer) => Delivery;
}

/** The transfer a connection is carrying. */
interface Incoming {
  readonly slot: number;
  readonly totalBytes: number;
  readonly digest: Buffer;
  /** The message's first bytes, from the OFFER (not streamed, not in the digest). */
  readonly head: Buffer;
  /** Bytes held when this connection's OFFER was answered. */
  readonly resumedAt: number;
  readonly startedMs: number;
  /** The bytes are whole and being checked: no more CHUNKs. */
  finishing: boolean;
}

interface Connection {
  readonly raw: net.Socket;
  readonly source: string;
  /** Where bytes are read: `raw`, or its TLS socket; null while TLS is negotiated. */
  socket: net.Socket | null;
  handshake: HandshakeResponder | null;
  /** 0 until authenticated. */
  peerId: number;
  reader: FrameReader | null;
  opener: StreamOpener | null;
  sealer: StreamSealer | null;
  transfer: Incoming | null;
  deadline: NodeJS.Timeout | null;
  closed: boolean;
}

export class SnapshotReceiver {
  private readonly options: SnapshotReceiverOptions;
  private readonly handshakeKeys: readonly Uint8Array[];
  private readonly snapshotKeys: readonly Uint8Array[];
  private readonly peers: StreamPeers;
  /** Every connection held, oldest first. Invariant: at most one authenticated per peer. */
  private readonly connections = new Set<Connection>();
  /**
   * Peers whose whole transfer is being read back and checked, by its digest: a new connection
   * of that peer offering the same transfer waits for that check instead of starting another.
   */
  private readonly finishing = new Map<number, Buffer>();
  /**
   * Peers whose partial is whole and its digest checked, by that digest: delivered (or not
   * ready) already, so another OFFER of it is read back and handed over without hashing it again.
   * Invariant: an entry's peer holds a whole partial of that digest in the store.
   */
  private readonly checked = new Map<number, Buffer>();
  /** Per peer: when its delivered transfer is thrown away (SNAPSHOT_DELIVERED_KEEP_MS). */
  private readonly keepTimers = new Map<number, NodeJS.Timeout>();
  private server: net.Server | null = null;
  private tlsServer: tls.Server | null = null;
  private closed = false;

  constructor(options: SnapshotReceiverOptions) {
    this.options = options;
    const keys = derivePeerKeys(options.secrets, options.clusterId);
    this.handshakeKeys = keys.handshake;
    this.snapshotKeys = keys.snapshots;
    this.peers = new StreamPeers(options.peers);
  }

  /** Take transfers from replica `id` (a new member, or one that moved: its host for TLS). */
  addPeer(id: number, address: PeerAddress): void {
    assert(id !== this.options.id, "addPeer of this replica");
    this.peers.set(id, address);
  }

  /** `id` left the configuration: its connections close, what it sent is thrown away. */
  removePeer(id: number): void {
    this.peers.delete(id);
    for (const connection of [...this.connections])
      if (connection.peerId === id) this.close_(connection, null);
    this.discard(id);
  }

  async start(): Promise<void> {
    assert(this.server === null && !this.closed, "SnapshotReceiver.start() called twice");
    const self = this.peers.get(this.options.id);
    assert(self !== undefined, "no address of this replica in peers");
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => {
        const cause = bindError("tcp", self, error);
        reject(
          new TransportError(
            "ERR_TRANSPORT",
            `snapshot stream: ${cause.message} (the stream listens on TCP at the --peers port + --snapshot-port-offset)`,
            { cause },
          ),
        );
      });
      server.listen({ host: self.host, port: self.port, exclusive: true }, () => {
        server.removeAllListeners("error");
        resolve();
      });
    });
    server.on("error", () => {});
    this.pruneAbandoned();
    server.on("connection", (socket) => this.onAccept(socket));
    this.server = server;
    if (this.options.tls !== undefined) {
      const tlsServer = createPeerTlsServer(this.options.tls, this.options.handshakeTimeoutMs);
      tlsServer.on("secureConnection", (socket) => this.onSecure(socket));
      tlsServer.on("tlsClientError", (_error, socket) => {
        const connection = this.byRemote(socket);
        if (connection !== undefined) this.close_(connection, "handshake");
        socket.destroy();
      });
      this.tlsServer = tlsServer;
    }
  }

  /** Partials left by a replica that is no peer now, or abandoned long ago, go. */
  private pruneAbandoned(): void {
    try {
      const pruned = this.options.partials.prune(
        (from) => from !== this.options.id && this.peers.get(from) !== undefined,
      );
      if (pruned > 0) this.options.onEvent({ kind: "pruned", direction: "in", count: pruned });
    } catch (error) {
      this.storeFailed(0, 0, error);
    }
  }

  /** Transfers being received now. */
  progress(): StreamProgress[] {
    const out: StreamProgress[] = [];
    for (const connection of this.connections) {
      const transfer = connection.transfer;
      if (transfer === null) continue;
      out.push({
        direction: "in",
        peer: connection.peerId,
        slot: transfer.slot,
        doneBytes: this.options.partials.held(connection.peerId),
        totalBytes: transfer.totalBytes,
      });
    }
    return out;
  }

  /** Connections held now, authenticated or not. */
  get connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.keepTimers.values()) clearTimeout(timer);
    this.keepTimers.clear();
    for (const connection of [...this.connections]) this.close_(connection, null);
    const server = this.server;
    this.server = null;
    this.tlsServer = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- accept, TLS, handshake --------------------------------------------------------------

  private onAccept(raw: net.Socket): void {
    if (this.closed) {
      raw.destroy();
      return;
    }
    const source = raw.remoteAddress ?? "unknown";
    this.makeRoom(source);
    const connection: Connection = {
      raw,
      source,
      socket: null,
      handshake: null,
      peerId: 0,
      reader: null,
      opener: null,
      sealer: null,
      transfer: null,
      deadline: null,
      closed: false,
    };
    this.connections.add(connection);
    raw.setKeepAlive(true, 5000);
    raw.on("error", () => {});
    raw.once("close", () => this.close_(connection, null));
    connection.deadline = setTimeout(
      () => this.close_(connection, "handshake"),
      this.options.handshakeTimeoutMs,
    );
    connection.deadline.unref();
    if (this.tlsServer === null) this.startResponder(connection, raw, NO_CHANNEL_BINDING);
    else this.tlsServer.emit("connection", raw);
  }

  /**
   * Room for one more connection from `source`: at SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX its
   * oldest unauthenticated connection goes; at SNAPSHOT_UNAUTHENTICATED_MAX the oldest
   * unauthenticated one of the source holding the most goes (not the oldest overall: a few
   * sources would evict a genuine peer's handshake).
   */
  private makeRoom(source: string): void {
    // Oldest first (`connections` keeps the order of acceptance).
    const bySource = new Map<string, Connection[]>();
    let unauthenticated = 0;
    for (const connection of this.connections) {
      if (connection.peerId !== 0) continue;
      unauthenticated++;
      const held = bySource.get(connection.source);
      if (held === undefined) bySource.set(connection.source, [connection]);
      else held.push(connection);
    }
    const own = bySource.get(source);
    if (own !== undefined && own.length >= SNAPSHOT_UNAUTHENTICATED_PER_SOURCE_MAX)
      return this.close_(own[0]!, "handshake");
    if (unauthenticated < SNAPSHOT_UNAUTHENTICATED_MAX) return;
    let largest: Connection[] = [];
    for (const held of bySource.values()) if (held.length > largest.length) largest = held;
    this.close_(largest[0]!, "handshake");
  }

  private byRemote(socket: net.Socket): Connection | undefined {
    for (const connection of this.connections) {
      if (
        connection.raw.remoteAddress === socket.remoteAddress &&
        connection.raw.remotePort === socket.remotePort
      )
        return connection;
    }
    return undefined;
  }

  private onSecure(socket: tls.TLSSocket): void {
    const connection = this.byRemote(socket);
    if (connection === undefined || connection.closed || connection.socket !== null) {
      socket.destroy();
      return;
    }
    socket.on("error", () => {});
    socket.once("close", () => this.close_(connection, null));
    this.startResponder(connection, socket, channelBinding(socket));
  }

  private startResponder(connection: Connection, socket: net.Socket, binding: Uint8Array): void {
    connection.socket = socket;
    connection.handshake = new HandshakeResponder(
      handshakeParams(this.options, this.peers, this.handshakeKeys, binding),
    );
    socket.on("data", (chunk: Buffer) => this.onData(connection, chunk, binding));
  }

  private onData(connection: Connection, chunk: Buffer, binding: Uint8Array): void {
    if (connection.closed) return;
    if (connection.handshake === null) return this.onFrameBytes(connection, chunk);
    const handshake = connection.handshake;
    const result = handshake.receive(chunk);
    if (result.state === "failed") return this.close_(connection, "handshake");
    if (result.send !== null) connection.socket!.write(result.send);
    if (result.state === "pending") return;
    if (!this.certificateNames(connection, result.peerId))
      return this.close_(connection, "handshake");
    // The initiator signed with its first key, which verified as keyIndex here: derive from it.
    const keys = deriveStreamKeys(
      this.snapshotKeys[result.keyIndex]!,
      handshake.transcriptDigest(),
      binding,
    );
    this.authenticate(connection, result.peerId, keys.initiator, keys.responder);
    if (result.rest.byteLength > 0) this.onFrameBytes(connection, result.rest);
  }

  /** `peerId` is a peer now, and with TLS its certificate names its --peers host. */
  private certificateNames(connection: Connection, peerId: number): boolean {
    const address = this.peers.get(peerId);
    if (address === undefined) return false;
    if (this.tlsServer === null) return true;
    return peerCertificateProblem(connection.socket as tls.TLSSocket, address.host) === null;
  }

  private authenticate(
    connection: Connection,
    from: number,
    readKey: Uint8Array,
    writeKey: Uint8Array,
  ): void {
    clearTimeout(connection.deadline!);
    connection.deadline = null;
    connection.handshake = null;
    connection.peerId = from;
    connection.opener = new StreamOpener(readKey, SNAPSHOT_CHUNK_BYTES_MAX);
    connection.sealer = new StreamSealer(writeKey);
    connection.reader = new FrameReader(connection.opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    for (const other of [...this.connections]) {
      if (other !== connection && other.peerId === from) this.close_(other, "connection");
    }
    const socket = connection.socket!;
    socket.setTimeout(this.options.stallTimeoutMs);
    socket.on("timeout", () => {
      const transfer = connection.transfer;
      if (transfer !== null && !transfer.finishing) this.close_(connection, "stalled");
    });
  }

  // ---- frames ------------------------------------------------------------------------------

  private onFrameBytes(connection: Connection, chunk: Buffer): void {
    const reader = connection.reader!;
    reader.push(chunk);
    while (!connection.closed) {
      const bytes = reader.next();
      if (bytes === null) return;
      if (typeof bytes === "string") return this.close_(connection, "malformed");
      const frame = connection.opener!.open(bytes);
      if (typeof frame === "string")
        return this.close_(
          connection,
          frame === "auth" || frame === "replay" ? "auth" : "malformed",
        );
      this.onFrame(connection, frame);
    }
  }

  private onFrame(connection: Connection, frame: StreamFrame): void {
    switch (frame.type) {
      case StreamFrameType.Offer:
        return this.onOffer(connection, frame);
      case StreamFrameType.Chunk:
        return this.onChunk(connection, frame.offset, frame.data);
      default:
        // RESUME, ACK and DONE go the other way.
        return this.close_(connection, "malformed");
    }
  }

  private onOffer(
    connection: Connection,
    offer: Extract<StreamFrame, { type: typeof StreamFrameType.Offer }>,
  ): void {
    if (connection.transfer !== null) return this.close_(connection, "malformed");
    const from = connection.peerId;
    const partials = this.options.partials;
    const checking = this.finishing.get(from);
    if (checking !== undefined) {
      // The sender came back (it heard nothing for a while) while we check what it sent: the
      // same transfer waits for the check's DONE; another one comes back later.
      if (!checking.equals(offer.digest)) return this.close_(connection, "connection");
      connection.transfer = {
        slot: offer.slot,
        totalBytes: offer.totalBytes,
        digest: offer.digest,
        head: offer.head,
        resumedAt: offer.totalBytes,
        startedMs: performance.now(),
        finishing: true,
      };
      connection.socket!.write(connection.sealer!.resume(offer.totalBytes));
      return;
    }
    const identity = {
      from,
      slot: offer.slot,
      totalBytes: offer.totalBytes,
      digest: offer.digest,
    };
    let held: number;
    try {
      const refusal = partials.refusal(identity);
      if (refusal !== null) {
        // What was held of it stays: with room made, the next offer resumes.
        this.options.onEvent({
          kind: "failed",
          direction: "in",
          peer: from,
          slot: offer.slot,
          reason: "refused",
          detail: refusal,
        });
        connection.socket!.write(connection.sealer!.done(DoneOutcome.Refused));
        return;
      }
      held = partials.open(identity);
    } catch (error) {
      return this.refuse(connection, offer.slot, error);
    }
    this.unkeep(from);
    if (held < offer.totalBytes) this.checked.delete(from); // another transfer, or not whole
    connection.transfer = {
      slot: offer.slot,
      totalBytes: offer.totalBytes,
      digest: offer.digest,
      head: offer.head,
      resumedAt: held,
      startedMs: performance.now(),
      finishing: false,
    };
    const event = { direction: "in", peer: from, slot: offer.slot } as const;
    this.options.onEvent({ kind: "started", ...event, totalBytes: offer.totalBytes });
    if (held > 0) this.options.onEvent({ kind: "resumed", ...event, offset: held });
    connection.socket!.write(connection.sealer!.resume(held));
    if (held === offer.totalBytes) this.finish(connection);
  }

  /** The partial store failed (`error`: a disk error): throw the transfer away, DONE refused. */
  private refuse(connection: Connection, slot: number, error: unknown): void {
    this.discard(connection.peerId);
    this.options.onEvent({
      kind: "failed",
      direction: "in",
      peer: connection.peerId,
      slot,
      reason: "refused",
      detail: `the partial store failed: ${error instanceof Error ? error.message : String(error)}`,
    });
    connection.transfer = null;
    connection.socket!.write(connection.sealer!.done(DoneOutcome.Refused));
  }

  private onChunk(connection: Connection, offset: number, data: Buffer): void {
    const transfer = connection.transfer;
    const from = connection.peerId;
    if (transfer === null || transfer.finishing) return this.close_(connection, "malformed");
    const held = this.options.partials.held(from);
    if (offset !== held || data.byteLength > transfer.totalBytes - held)
      return this.close_(connection, "malformed");
    try {
      this.options.partials.append(from, data);
    } catch (error) {
      return this.refuse(connection, transfer.slot, error);
    }
    this.options.onEvent({ kind: "bytes", direction: "in", count: data.byteLength });
    const now = held + data.byteLength;
    connection.socket!.write(connection.sealer!.ack(now));
    if (now === transfer.totalBytes) this.finish(connection);
  }

  /**
   * The bytes are whole: read them back, check the digest, deliver, answer DONE (on the peer's
   * connection then: it may have come back on a new one meanwhile). A large transfer takes
   * seconds to read and hash: an ACK of the whole every quarter stall timeout tells the sender
   * the receiver is alive.
   */
  private finish(connection: Connection): void {
    const transfer = connection.transfer!;
    const from = connection.peerId;
    this.finishAsync(connection).catch((error: unknown) => {
      // Nothing here may crash the replica: count it, and close the connection waiting on it
      // (the sender offers again, and this peer's transfer starts over).
      this.storeFailed(from, transfer.slot, error);
      const live = this.live(from, transfer.digest);
      if (live !== null) this.close_(live, null);
      this.discard(from);
    });
  }

  private async finishAsync(connection: Connection): Promise<void> {
    const transfer = connection.transfer!;
    const from = connection.peerId;
    transfer.finishing = true;
    this.finishing.set(from, transfer.digest);
    const every = Math.max(10, Math.floor(this.options.stallTimeoutMs / 4));
    const alive = setInterval(() => {
      const live = this.live(from, transfer.digest);
      if (live !== null) live.socket!.write(live.sealer!.ack(transfer.totalBytes));
    }, every);
    try {
      await this.check(from, transfer);
    } finally {
      clearInterval(alive);
      this.finishing.delete(from);
    }
  }

  private async check(from: number, transfer: Incoming): Promise<void> {
    const partials = this.options.partials;
    let bytes: Buffer;
    try {
      bytes = await partials.read(from, transfer.head);
    } catch (error) {
      const live = this.live(from, transfer.digest);
      if (live !== null) this.refuse(live, transfer.slot, error);
      else this.discard(from);
      return;
    }
    const event = { direction: "in", peer: from, slot: transfer.slot } as const;
    if (!this.checked.get(from)?.equals(transfer.digest)) {
      const digest = await sha256Pieces([bytes.subarray(transfer.head.byteLength)]);
      if (!digest.equals(transfer.digest)) {
        this.discard(from);
        this.options.onEvent({ kind: "failed", ...event, reason: "digest" });
        this.answer(from, transfer.digest, DoneOutcome.DigestMismatch);
        return;
      }
      this.checked.set(from, transfer.digest);
    }
    const delivery = this.options.deliver(from, bytes);
    if (delivery === "not-ready") {
      this.options.onEvent({ kind: "failed", ...event, reason: "not-ready" });
      this.answer(from, transfer.digest, DoneOutcome.NotReady);
      return;
    }
    if (delivery === "undecodable") {
      this.discard(from); // offered again, it would not decode again
      this.options.onEvent({ kind: "failed", ...event, reason: "decode" });
    } else {
      this.keep(from);
      this.options.onEvent({
        kind: "completed",
        ...event,
        totalBytes: transfer.totalBytes,
        movedBytes: transfer.totalBytes - transfer.resumedAt,
        elapsedMs: performance.now() - transfer.startedMs,
      });
    }
    this.answer(from, transfer.digest, DoneOutcome.Delivered);
  }

  /** Keep `from`'s delivered transfer for SNAPSHOT_DELIVERED_KEEP_MS (see the comment at the top). */
  private keep(from: number): void {
    this.unkeep(from);
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.keepTimers.delete(from);
      // Offered again meanwhile and being checked: that delivery keeps it again.
      if (!this.finishing.has(from)) this.discard(from);
    }, SNAPSHOT_DELIVERED_KEEP_MS);
    timer.unref();
    this.keepTimers.set(from, timer);
  }

  private unkeep(from: number): void {
    const timer = this.keepTimers.get(from);
    if (timer !== undefined) clearTimeout(timer);
    this.keepTimers.delete(from);
  }

  /** Throw away what `from` sent: its partial, checked or not. A disk error is counted, not thrown. */
  private discard(from: number): void {
    this.unkeep(from);
    this.checked.delete(from);
    try {
      this.options.partials.discard(from);
    } catch (error) {
      this.storeFailed(from, 0, error);
    }
  }

  /** The partial store (the disk) failed where no transfer can be refused: counted, logged. */
  private storeFailed(from: number, slot: number, error: unknown): void {
    if (this.closed) return;
    const message = error instanceof Error ? error.message : String(error);
    this.options.onEvent({
      kind: "failed",
      direction: "in",
      peer: from,
      slot,
      reason: "store",
      detail: `${message}: check the disk of the data directory (stream-partials/)`,
    });
  }

  /** `from`'s open connection waiting on the transfer of `digest`, if any. */
  private live(from: number, digest: Buffer): Connection | null {
    for (const connection of this.connections) {
      const transfer = connection.transfer;
      if (connection.peerId === from && transfer !== null && transfer.digest.equals(digest))
        return connection;
    }
    return null;
  }

  private answer(from: number, digest: Buffer, outcome: 0 | 1 | 2 | 3): void {
    const connection = this.live(from, digest);
    if (connection === null) return;
    connection.transfer = null;
    connection.socket!.write(connection.sealer!.done(outcome));
  }

  /** Close once; a reason is counted as a failed transfer when one was open (or never authenticated). */
  private close_(connection: Connection, reason: StreamFailure | null): void {
    if (connection.closed) return;
    connection.closed = true;
    this.connections.delete(connection);
    if (connection.deadline !== null) clearTimeout(connection.deadline);
    connection.deadline = null;
    const transfer = connection.transfer;
    if (transfer !== null && !transfer.finishing && !this.closed) {
      this.options.onEvent({
        kind: "failed",
        direction: "in",
        peer: connection.peerId,
        slot: transfer.slot,
        reason: reason ?? "connection",
      });
    } else if (reason !== null && !this.closed && reason !== "connection") {
      this.options.onEvent({
        kind: "failed",
        direction: "in",
        peer: connection.peerId,
        slot: 0,
        reason,
      });
    }
    connection.transfer = null;
    connection.socket?.destroy();
    connection.raw.destroy();
  }
}

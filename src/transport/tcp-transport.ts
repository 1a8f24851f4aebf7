import net from "node:net";
import { ApusError, assert } from "../core/errors.ts";
import {
  CHANNEL_MAX,
  checkRecords,
  createFrameContext,
  FRAME_OVERHEAD_BYTES,
  FrameBuilder,
  type FrameContext,
  type FrameHeaderFields,
  forEachRecord,
  LENGTH_PREFIX_BYTES,
  openFrame,
  RECORD_HEADER_BYTES,
  sealSingle,
} from "./frame.ts";
import { FrameReader } from "./frame-reader.ts";
import {
  bindError,
  type DropReason,
  type PeerAddress,
  peerLabel,
  StatsCounter,
  type Transport,
  type TransportOptions,
  type TransportStats,
  validateTransportOptions,
} from "./transport.ts";

/**
 * Bytes queued for one peer (unsealed, sealed and in the socket's write buffer); beyond, sends
 * drop "queue-full". A dead peer must not grow memory without bound; Paxos retransmits.
 */
export const TCP_SEND_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** Small messages coalesce into one frame up to this size; a bigger message gets its own frame. */
export const TCP_FRAME_BYTES_TARGET = 256 * 1024;
/** Reconnect delay after a failed or closed connection: doubles from MIN up to MAX. */
export const TCP_RECONNECT_DELAY_MS_MIN = 50;
export const TCP_RECONNECT_DELAY_MS_MAX = 2000;
/** A connect that has not completed in this long is abandoned (then backoff). */
export const TCP_CONNECT_TIMEOUT_MS = 3000;
/** TCP keep-alive probe delay: finds half-open connections to crashed peers. */
export const TCP_KEEPALIVE_MS = 5000;
/**
 * Inbound connections held at once. At the limit a new connection evicts the oldest one that
 * has not yet sent an authenticated frame, or is refused if all have.
 */
export const TCP_INBOUND_CONNECTIONS_MAX = 64;

type LinkState = "idle" | "connecting" | "open" | "backoff";

/** Our outbound connection to one peer (we only send on it; the peer sends on its own). */
interface TcpPeer {
  readonly id: number;
  readonly address: PeerAddress;
  readonly header: FrameHeaderFields;
  readonly builder: FrameBuilder;
  /** Sealed frames (with length prefixes) not yet written. Invariant: pendingBytes = their sum. */
  pending: Buffer[];
  pendingBytes: number;
  state: LinkState;
  /** Non-null exactly when state is "connecting" or "open". */
  socket: net.Socket | null;
  reconnectDelayMs: number;
  /** Non-null exactly when state is "backoff". */
  timer: NodeJS.Timeout | null;
}

interface Inbound {
  readonly socket: net.Socket;
  readonly label: string;
  readonly reader: FrameReader;
  /** The peer this connection has authenticated as; 0 until its first good frame. */
  peerId: number;
}

/**
 * `--transport tcp`, for networks that drop UDP: listens on peers[id-1] for inbound connections
 * (receive only) and connects lazily to each peer (send only), reconnecting with backoff.
 * Frames use the UDP frame format and HMAC behind a u32 LE length prefix; there is no
 * fragmentation. An inbound connection that sends one frame that fails any check is closed.
 */
export class TcpTransport implements Transport {
  onMessage: (from: number, channel: number, payload: Uint8Array) => void = () => {
    throw new ApusError("ERR_ASSERTION", "TcpTransport.onMessage must be set before start()");
  };

  private readonly options: TransportOptions;
  private readonly context: FrameContext;
  /** Largest frame accepted or produced, length prefix excluded. */
  private readonly frameBytesMax: number;
  private readonly peers: TcpPeer[] = [];
  /** Inbound connections, oldest first. Invariant: size <= TCP_INBOUND_CONNECTIONS_MAX. */
  private readonly inbound = new Set<Inbound>();
  private readonly counters = new StatsCounter();
  private server: net.Server | null = null;
  private closed = false;

  constructor(options: TransportOptions) {
    validateTransportOptions(options);
    this.options = options;
    // No echo required: TCP sends no session frames and closes a connection on any drop.
    this.context = createFrameContext(options, false, this.counters);
    const singleFrameBytesMax =
      FRAME_OVERHEAD_BYTES + RECORD_HEADER_BYTES + options.messageBytesMax;
    const builderFrameBytes = Math.min(TCP_FRAME_BYTES_TARGET, singleFrameBytesMax);
    this.frameBytesMax = Math.max(TCP_FRAME_BYTES_TARGET, singleFrameBytesMax);
    options.peers.forEach((address, index) => {
      const header = { flags: 0, clusterId: options.clusterId, from: options.id, to: index + 1 };
      this.peers.push({
        id: index + 1,
        address,
        header,
        builder: new FrameBuilder(builderFrameBytes, LENGTH_PREFIX_BYTES, header),
        pending: [],
        pendingBytes: 0,
        state: "idle",
        socket: null,
        reconnectDelayMs: TCP_RECONNECT_DELAY_MS_MIN,
        timer: null,
      });
    });
  }

  async start(): Promise<void> {
    assert(this.server === null && !this.closed, "TcpTransport.start() called twice");
    const self = this.options.peers[this.options.id - 1]!;
    const server = net.createServer({ noDelay: true, keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(bindError("tcp", self, error)));
      server.listen({ host: self.host, port: self.port, exclusive: true }, () => {
        server.removeAllListeners("error");
        resolve();
      });
    });
    server.on("error", () => {}); // accept errors (EMFILE...) must not crash the replica
    server.on("connection", (socket) => this.onInbound(socket));
    this.server = server;
  }

  send(to: number, channel: number, payload: Uint8Array): void {
    const peer = this.peers[to - 1];
    assert(peer !== undefined && Number.isInteger(to), `send to ${to}: no such replica`);
    assert(Number.isInteger(channel) && channel >= 0 && channel <= CHANNEL_MAX, "bad channel");
    if (this.closed) return this.drop("send-error", peerLabel(to));
    if (payload.byteLength > this.options.messageBytesMax) {
      return this.drop("oversize", peerLabel(to));
    }
    // One message larger than the queue limit (a snapshot) still goes when nothing waits ahead.
    const queued = queuedBytes(peer);
    if (queued > 0 && queued + payload.byteLength > TCP_SEND_QUEUE_BYTES_MAX) {
      return this.drop("queue-full", peerLabel(to));
    }
    this.counters.messagesSent++;
    if (peer.builder.fits(payload.byteLength)) {
      peer.builder.append(channel, payload);
      return;
    }
    if (!peer.builder.empty) this.enqueue(peer, peer.builder.seal(this.context));
    if (peer.builder.fits(payload.byteLength)) {
      peer.builder.append(channel, payload);
      return;
    }
    const frame = sealSingle(this.context, peer.header, LENGTH_PREFIX_BYTES, channel, payload);
    this.enqueue(peer, frame);
  }

  flush(): void {
    if (this.closed) return;
    for (const peer of this.peers) {
      if (!peer.builder.empty) this.enqueue(peer, peer.builder.seal(this.context));
      if (peer.pending.length === 0) continue;
      if (peer.state === "open") this.writePending(peer);
      else if (peer.state === "idle" && this.server !== null) this.connect(peer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers) {
      if (peer.timer !== null) clearTimeout(peer.timer);
      peer.timer = null;
      peer.socket?.destroy();
      peer.socket = null;
      peer.pending = [];
      peer.pendingBytes = 0;
    }
    for (const connection of this.inbound) connection.socket.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  // ---- outbound ---------------------------------------------------------------------------

  private enqueue(peer: TcpPeer, frame: Buffer): void {
    peer.pending.push(frame);
    peer.pendingBytes += frame.byteLength;
  }

  private writePending(peer: TcpPeer): void {
    const socket = peer.socket;
    assert(peer.state === "open" && socket !== null);
    socket.cork();
    for (const frame of peer.pending) {
      this.counters.datagramsSent++;
      this.counters.bytesSent += frame.byteLength;
      socket.write(frame);
    }
    socket.uncork();
    peer.pending = [];
    peer.pendingBytes = 0;
  }

  private connect(peer: TcpPeer): void {
    assert(peer.state === "idle" && peer.socket === null);
    const socket = net.createConnection({
      host: peer.address.host,
      port: peer.address.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: TCP_KEEPALIVE_MS,
    });
    peer.state = "connecting";
    peer.socket = socket;
    socket.setTimeout(TCP_CONNECT_TIMEOUT_MS, () => socket.destroy());
    socket.once("connect", () => {
      socket.setTimeout(0);
      peer.state = "open";
      peer.reconnectDelayMs = TCP_RECONNECT_DELAY_MS_MIN;
      if (peer.pending.length > 0) this.writePending(peer);
    });
    // A peer that is down is normal: errors are quiet, "close" follows and schedules a retry.
    socket.on("error", () => {});
    // The peer never sends on our outbound connection; read and discard to notice its FIN.
    socket.on("data", () => {});
    socket.once("close", () => this.onOutboundClosed(peer, socket));
  }

  private onOutboundClosed(peer: TcpPeer, socket: net.Socket): void {
    if (peer.socket !== socket || this.closed) return;
    peer.socket = null;
    peer.state = "backoff";
    peer.timer = setTimeout(() => {
      peer.timer = null;
      peer.state = "idle";
      if (!this.closed && peer.pending.length > 0) this.connect(peer);
    }, peer.reconnectDelayMs);
    peer.timer.unref();
    peer.reconnectDelayMs = Math.min(peer.reconnectDelayMs * 2, TCP_RECONNECT_DELAY_MS_MAX);
  }

  // ---- inbound ----------------------------------------------------------------------------

  private onInbound(socket: net.Socket): void {
    if (this.closed || !this.makeRoomForInbound()) {
      socket.destroy();
      return;
    }
    const connection: Inbound = {
      socket,
      label: `${socket.remoteAddress}:${socket.remotePort}`,
      reader: new FrameReader(this.frameBytesMax),
      peerId: 0,
    };
    this.inbound.add(connection);
    socket.on("data", (chunk: Buffer) => this.onInboundData(connection, chunk));
    socket.on("error", () => {});
    socket.once("close", () => this.inbound.delete(connection));
  }

  /** Evict the oldest unauthenticated connection at the limit; false if none can go. */
  private makeRoomForInbound(): boolean {
    if (this.inbound.size < TCP_INBOUND_CONNECTIONS_MAX) return true;
    for (const connection of this.inbound) {
      if (connection.peerId !== 0) continue;
      this.closeInbound(connection);
      return true;
    }
    return false;
  }

  private onInboundData(connection: Inbound, chunk: Buffer): void {
    this.counters.bytesReceived += chunk.byteLength;
    connection.reader.push(chunk);
    while (!connection.socket.destroyed) {
      const frame = connection.reader.next();
      if (frame === null) return;
      if (typeof frame === "string") return this.rejectInbound(connection, frame);
      this.onFrame(connection, frame);
    }
  }

  private onFrame(connection: Inbound, frame: Buffer): void {
    const opened = openFrame(frame, this.context);
    if (!opened.ok) return this.rejectInbound(connection, opened.reason);
    const { from, fragment, body } = opened.frame;
    if (fragment) return this.rejectInbound(connection, "malformed");
    if (connection.peerId === 0) this.authenticate(connection, from);
    else if (connection.peerId !== from) return this.rejectInbound(connection, "unknown-peer");
    const problem = checkRecords(body, this.options.messageBytesMax);
    if (problem !== null) return this.rejectInbound(connection, problem);
    this.counters.messagesReceived += forEachRecord(body, (channel, payload) =>
      this.onMessage(from, channel, payload),
    );
  }

  /** First good frame: the connection is peer `from`'s; an older one of its is stale. */
  private authenticate(connection: Inbound, from: number): void {
    connection.peerId = from;
    for (const other of this.inbound) {
      if (other !== connection && other.peerId === from) this.closeInbound(other);
    }
  }

  private rejectInbound(connection: Inbound, reason: DropReason): void {
    this.drop(reason, connection.label);
    this.closeInbound(connection);
  }

  private closeInbound(connection: Inbound): void {
    this.inbound.delete(connection);
    connection.socket.destroy();
  }

  private drop(reason: DropReason, from: string): void {
    this.counters.dropped[reason]++;
    this.options.onDrop?.(reason, from);
  }
}

function queuedBytes(peer: TcpPeer): number {
  return peer.pendingBytes + peer.builder.pendingBytes + (peer.socket?.writableLength ?? 0);
}

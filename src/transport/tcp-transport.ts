import { randomBytes } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
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
  frameEcho,
  LENGTH_PREFIX_BYTES,
  openFrame,
  RECORD_HEADER_BYTES,
  resealEcho,
  sealSingle,
} from "./frame.ts";
import { FrameReader } from "./frame-reader.ts";
import { derivePeerKeys } from "./peer-keys.ts";
import { createPeerTlsServer, peerCertificateProblem, peerSecureContext } from "./peer-tls.ts";
import {
  CHANNEL_BINDING_BYTES,
  HANDSHAKE_NONCE_BYTES,
  HandshakeInitiator,
  type HandshakeParams,
  HandshakeResponder,
  NO_CHANNEL_BINDING,
  TLS_EXPORTER_LABEL,
  TRANSCRIPT_BYTES,
} from "./tcp-handshake.ts";
import {
  bindError,
  checkPeerAddress,
  type DropReason,
  type PeerAddress,
  peerIdsMax,
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
/**
 * TCP keep-alive probe delay, both directions: finds half-open connections to crashed peers.
 * An idle authenticated inbound connection is normal (a follower may have nothing to say); one
 * whose peer died is found by these probes, or replaced when the peer connects again.
 */
export const TCP_KEEPALIVE_MS = 5000;
/**
 * Inbound connections held at once. At the limit a new connection evicts the oldest one that
 * has not yet authenticated (finished the handshake) of the source address holding the most
 * unauthenticated ones, or is refused if all have authenticated. Authenticated ones are at most
 * one per peer (a newer one replaces it), so with fewer than this many peers there is always
 * room.
 */
export const TCP_INBOUND_CONNECTIONS_MAX = 64;
/**
 * Unauthenticated inbound connections held at once from one source address (the remote IP
 * address); a new one from a source at the limit evicts that source's oldest. A genuine peer
 * holds at most one at a time (it has one outbound link to us and redials only after it
 * closed), so this leaves room for several replicas behind one address (one host, a NAT), while
 * a crowd from one address can neither fill the table nor evict another source's handshake.
 *
 * What is left: an attacker with many source addresses. Evictions at TCP_INBOUND_CONNECTIONS_MAX
 * take from the source holding the most, so a genuine handshake (one connection from its source)
 * is evicted only when no source holds more than one, that is by about
 * TCP_INBOUND_CONNECTIONS_MAX attacking addresses, and still only while they open connections
 * faster than the handshake's round trip. An IPv6 host usually has a whole /64 of addresses;
 * each is a source here. Rate-limit connections at the network.
 */
export const TCP_UNAUTHENTICATED_PER_SOURCE_MAX = 8;
assert(
  TCP_UNAUTHENTICATED_PER_SOURCE_MAX * 4 <= TCP_INBOUND_CONNECTIONS_MAX,
  "one source holds at most a quarter of the inbound table",
);
/**
 * --peer-handshake-timeout-ms's default: a connection must finish TLS (if on) and the peer
 * handshake within this long of being accepted or connected, or it is closed.
 */
export const TCP_HANDSHAKE_TIMEOUT_MS_DEFAULT = 5000;
/**
 * An authenticated inbound connection part way through a frame that receives no byte for this
 * long is closed ("stalled"). Idle between frames is fine. Long enough for a sender whose event
 * loop is held up (a big snapshot encoded, a slow fsync) to carry on; only key holders get here.
 */
export const TCP_FRAME_STALL_TIMEOUT_MS_DEFAULT = 10_000;

/**
 * idle → connecting (TCP, then TLS if on) → handshaking (HELLO sent, REPLY awaited) → open
 * (frames written) → backoff after any close → idle.
 */
type LinkState = "idle" | "connecting" | "handshaking" | "open" | "backoff";

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
  /** Non-null exactly when state is "connecting", "handshaking" or "open". */
  socket: net.Socket | null;
  /** Non-null exactly when state is "handshaking". */
  handshake: HandshakeInitiator | null;
  /**
   * The handshake deadline: set when TCP connects, cleared when the handshake is done or the
   * socket closes. Non-null: connected and not yet authenticated.
   */
  deadline: NodeJS.Timeout | null;
  reconnectDelayMs: number;
  /** When the handshake last completed (Date.now()); the backoff resets only after a good run. */
  openedAtMs: number;
  /** Non-null exactly when state is "backoff". */
  timer: NodeJS.Timeout | null;
}

/**
 * One accepted connection: TLS (if on), then the handshake (HandshakeResponder, which reads at
 * most TRANSCRIPT_BYTES), then frames from the one peer it authenticated as.
 */
interface Inbound {
  /** The accepted TCP socket; destroying it ends the connection, TLS layer included. */
  readonly raw: net.Socket;
  /** "address:port" of the remote end; the key of TcpTransport.inbound. */
  readonly label: string;
  /** The remote address alone: what TCP_UNAUTHENTICATED_PER_SOURCE_MAX counts by. */
  readonly source: string;
  /** Where bytes are read: `raw`, or its TLS socket; null while TLS is being negotiated. */
  socket: net.Socket | null;
  /** Non-null from when bytes are read until the handshake is done. */
  handshake: HandshakeResponder | null;
  /** Non-null once authenticated. Invariant: reader !== null iff peerId !== 0. */
  reader: FrameReader | null;
  /** The peer this connection authenticated as in the handshake; 0 until then. */
  peerId: number;
  /** Bytes fed to `reader` not yet returned as frames: > 0 while a frame is part way. */
  partialBytes: number;
  /** The handshake deadline from accept; null once authenticated or closed. */
  deadline: NodeJS.Timeout | null;
  closed: boolean;
}

/** The unauthenticated connections of one source address; `oldest` is the first accepted. */
interface UnauthenticatedSource {
  count: number;
  readonly oldest: Inbound;
}

/**
 * `--transport tcp`, for networks that drop UDP: listens on peers[id-1] for inbound connections
 * (receive only) and connects lazily to each peer (send only), reconnecting with backoff.
 *
 * Every connection starts with the peer handshake (tcp-handshake.ts), under the handshake key
 * derived from the cluster secret, within handshakeTimeoutMs; with `options.tls`, inside mutual
 * TLS (peer-tls.ts says how identity is checked). Until it is done an inbound connection is read
 * into a fixed TRANSCRIPT_BYTES buffer and nothing else, at most TCP_INBOUND_CONNECTIONS_MAX are
 * held and at most TCP_UNAUTHENTICATED_PER_SOURCE_MAX unauthenticated ones per source address (a
 * new one evicts its source's oldest unauthenticated, or at the global limit the oldest of the
 * source holding the most), and any failure closes it and counts
 * "handshake". Only then are frames read: length-prefixed (u32 LE) frames in the UDP frame format
 * of up to frameBytesMax, all from the peer the handshake named; one that fails any check closes
 * the connection, as does a frame that stalls (frameStallTimeoutMs without a byte).
 *
 * Frames keep their MAC, sequence and incarnation after the handshake: without TLS nothing else
 * protects the stream from an on-path host that injects bytes after the handshake, the replay
 * window needs the authenticated sequence numbers, and frames stay the UDP transport's. The
 * handshake carries each side's incarnation: the dialing side echoes the responder's in every
 * frame it writes on the connection (queued frames sealed for an earlier run of the peer are
 * discarded, counted "stale-session"), and the responder drops a frame with any other echo —
 * one recorded before it restarted, injected into the stream — counted "stale-session",
 * without closing the connection (peer-sessions.ts says why this and not a key per connection).
 * Under TLS the MAC is redundant with TLS's own, and kept: the frame format stays one, and a host
 * with a certificate of the CA still cannot forge a frame without the secret
 * (bench/tcp-tls.bench.ts measures what the two cost together).
 */
export class TcpTransport implements Transport {
  onMessage: (from: number, channel: number, payload: Uint8Array) => void = () => {
    throw new ApusError("ERR_ASSERTION", "TcpTransport.onMessage must be set before start()");
  };

  private readonly options: TransportOptions;
  private readonly context: FrameContext;
  /** Handshake keys (peer-keys.ts): index 0 signs, every one verifies. */
  private readonly handshakeKeys: readonly Uint8Array[];
  /** Largest frame accepted or produced, length prefix excluded. */
  private readonly frameBytesMax: number;
  private readonly handshakeTimeoutMs: number;
  private readonly frameStallTimeoutMs: number;
  /** Outbound TLS settings; null: plain TCP. */
  private readonly secureContext: tls.SecureContext | null;
  /** Index id - 1 over 1..peerIdsMax: the peers now; null where no replica is one. */
  private readonly peers: (TcpPeer | null)[] = [];
  /** The non-null entries of `peers`, in id order (flush runs every turn: not recomputed). */
  private live: readonly TcpPeer[] = [];
  /** Bytes of a frame the builder fills before sealing it. */
  private readonly builderFrameBytes: number;
  /**
   * Inbound connections by label, oldest first (a Map keeps insertion order). Invariant:
   * size <= TCP_INBOUND_CONNECTIONS_MAX, at most TCP_UNAUTHENTICATED_PER_SOURCE_MAX
   * unauthenticated connections per source address, and at most one authenticated connection
   * per peer.
   */
  private readonly inbound = new Map<string, Inbound>();
  private readonly counters = new StatsCounter();
  private server: net.Server | null = null;
  /** With TLS: negotiates TLS on accepted sockets handed to it; never listens itself. */
  private tlsServer: tls.Server | null = null;
  private closed = false;

  constructor(options: TransportOptions) {
    validateTransportOptions(options);
    this.options = options;
    this.handshakeTimeoutMs = timeoutOption(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs ?? TCP_HANDSHAKE_TIMEOUT_MS_DEFAULT,
    );
    this.frameStallTimeoutMs = timeoutOption(
      "frameStallTimeoutMs",
      options.frameStallTimeoutMs ?? TCP_FRAME_STALL_TIMEOUT_MS_DEFAULT,
    );
    // The echo is required as on UDP; TCP learns it in the handshake (peer-sessions.ts).
    this.context = createFrameContext(options, true, this.counters, (from) => this.hasPeer(from));
    this.handshakeKeys = derivePeerKeys(options.secrets, options.clusterId).handshake;
    this.secureContext = options.tls === undefined ? null : peerSecureContext(options.tls);
    const singleFrameBytesMax =
      FRAME_OVERHEAD_BYTES + RECORD_HEADER_BYTES + options.messageBytesMax;
    this.builderFrameBytes = Math.min(TCP_FRAME_BYTES_TARGET, singleFrameBytesMax);
    this.frameBytesMax = Math.max(TCP_FRAME_BYTES_TARGET, singleFrameBytesMax);
    for (let id = 1; id <= peerIdsMax(options); id++) {
      const address = options.peers[id - 1] ?? null;
      this.peers.push(address === null ? null : this.newPeer(id, address));
    }
    this.peersChanged();
  }

  private newPeer(id: number, address: PeerAddress): TcpPeer {
    const header = { flags: 0, clusterId: this.options.clusterId, from: this.options.id, to: id };
    return {
      id,
      address,
      header,
      builder: new FrameBuilder(this.builderFrameBytes, LENGTH_PREFIX_BYTES, header),
      pending: [],
      pendingBytes: 0,
      state: "idle",
      socket: null,
      handshake: null,
      deadline: null,
      reconnectDelayMs: TCP_RECONNECT_DELAY_MS_MIN,
      openedAtMs: 0,
      timer: null,
    };
  }

  private peersChanged(): void {
    this.live = this.peers.filter((peer): peer is TcpPeer => peer !== null);
  }

  addPeer(id: number, address: PeerAddress): boolean {
    assert(Number.isInteger(id) && id >= 1 && id <= this.peers.length, `addPeer ${id}: bad id`);
    assert(id !== this.options.id, "addPeer: ourselves");
    checkPeerAddress(id, address);
    const old = this.peers[id - 1];
    if (old != null && old.address.host === address.host && old.address.port === address.port)
      return true;
    if (old != null) this.removePeer(id);
    this.peers[id - 1] = this.newPeer(id, address);
    this.peersChanged();
    return true;
  }

  removePeer(id: number): void {
    assert(Number.isInteger(id) && id >= 1 && id <= this.peers.length, `removePeer ${id}: bad id`);
    assert(id !== this.options.id, "removePeer: ourselves");
    const peer = this.peers[id - 1];
    if (peer == null) return;
    this.peers[id - 1] = null;
    this.peersChanged();
    this.stopPeer(peer);
    for (const connection of [...this.inbound.values()])
      if (connection.peerId === id) this.closeInbound(connection, null);
  }

  hasPeer(id: number): boolean {
    return this.peers[id - 1] != null;
  }

  /** Close a peer's outbound connection and drop what waits for it. */
  private stopPeer(peer: TcpPeer): void {
    if (peer.timer !== null) clearTimeout(peer.timer);
    peer.timer = null;
    if (peer.deadline !== null) clearTimeout(peer.deadline);
    peer.deadline = null;
    peer.socket?.destroy();
    peer.socket = null;
    peer.handshake = null;
    peer.pending = [];
    peer.pendingBytes = 0;
  }

  async start(): Promise<void> {
    assert(this.server === null && !this.closed, "TcpTransport.start() called twice");
    const self = this.options.peers[this.options.id - 1]!;
    const server = net.createServer({
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: TCP_KEEPALIVE_MS,
    });
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
    if (this.options.tls !== undefined) {
      const tlsServer = createPeerTlsServer(this.options.tls, this.handshakeTimeoutMs);
      tlsServer.on("secureConnection", (socket) => this.onInboundSecure(socket));
      tlsServer.on("tlsClientError", (_error, socket) => this.onInboundTlsError(socket));
      this.tlsServer = tlsServer;
    }
  }

  send(to: number, channel: number, payload: Uint8Array): void {
    assert(Number.isInteger(to) && to >= 1 && to <= this.peers.length, `send to ${to}: bad id`);
    assert(Number.isInteger(channel) && channel >= 0 && channel <= CHANNEL_MAX, "bad channel");
    const peer = this.peers[to - 1];
    if (peer == null) return this.drop("unknown-peer", peerLabel(to));
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
    for (const peer of this.live) {
      if (!peer.builder.empty) this.enqueue(peer, peer.builder.seal(this.context));
      if (peer.pending.length === 0) continue;
      if (peer.state === "open") this.writePending(peer);
      else if (peer.state === "idle" && this.server !== null) this.connect(peer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.live) this.stopPeer(peer);
    for (const connection of [...this.inbound.values()]) this.closeInbound(connection, null);
    assert(this.inbound.size === 0);
    const server = this.server;
    this.server = null;
    this.tlsServer = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  /** Inbound connections held now, authenticated or not (<= TCP_INBOUND_CONNECTIONS_MAX). */
  get inboundConnectionCount(): number {
    return this.inbound.size;
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
    const { host, port } = peer.address;
    const socket =
      this.secureContext === null
        ? net.createConnection({ host, port })
        : // The server's certificate must chain to the CA and name `host` (tls.connect checks it
          // against the host dialed: an IP SAN for an address). No SNI is sent to an IP.
          tls.connect({
            host,
            port,
            secureContext: this.secureContext,
            ...(net.isIP(host) === 0 ? { servername: host } : {}),
          });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    peer.state = "connecting";
    peer.socket = socket;
    socket.setTimeout(TCP_CONNECT_TIMEOUT_MS, () => socket.destroy());
    socket.once("connect", () => {
      socket.setTimeout(0);
      peer.deadline = setTimeout(() => socket.destroy(), this.handshakeTimeoutMs);
      peer.deadline.unref();
    });
    socket.once(this.secureContext === null ? "connect" : "secureConnect", () =>
      this.onOutboundReady(peer, socket),
    );
    // A peer that is down is normal: errors are quiet, "close" follows and schedules a retry.
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => this.onOutboundData(peer, socket, chunk));
    socket.once("close", () => this.onOutboundClosed(peer, socket));
  }

  /** TCP (and TLS) is up: say HELLO. */
  private onOutboundReady(peer: TcpPeer, socket: net.Socket): void {
    if (peer.socket !== socket || this.closed || this.peers[peer.id - 1] !== peer) return;
    assert(peer.state === "connecting");
    const handshake = new HandshakeInitiator({
      ...this.handshakeParams(channelBinding(socket)),
      to: peer.id,
    });
    peer.state = "handshaking";
    peer.handshake = handshake;
    socket.write(handshake.hello());
  }

  private onOutboundData(peer: TcpPeer, socket: net.Socket, chunk: Buffer): void {
    // Once open, the peer never sends on our outbound connection; bytes are read and discarded
    // only to notice its FIN.
    if (peer.socket !== socket || peer.state !== "handshaking") return;
    const result = peer.handshake!.receive(chunk);
    if (result.state === "pending") return;
    if (result.state === "failed") {
      socket.destroy(); // counted "handshake" when it closes (deadline still set)
      return;
    }
    clearTimeout(peer.deadline!);
    peer.deadline = null;
    // The peer's run is older than one already seen (its clock stepped back, say): its frames
    // would be replays and it would drop ours. Close; the backoff retries.
    if (this.context.sessions.learn(peer.id, result.peerIncarnation) === "replay") {
      this.drop("replay", peerLabel(peer.id));
      socket.destroy();
      return;
    }
    socket.write(result.send!);
    peer.handshake = null;
    peer.state = "open";
    peer.openedAtMs = Date.now();
    this.settlePending(peer, result.peerIncarnation);
    if (peer.pending.length > 0) this.writePending(peer);
  }

  /**
   * Before the first frame on a new connection: queued frames must echo `incarnation`, the
   * peer's run the handshake just showed. One sealed before we knew any run of the peer (echo
   * 0) is sealed again with it; one sealed for an earlier run is discarded, counted
   * "stale-session" (the peer would drop it; its messages were for a run that is gone, as on
   * UDP; Paxos retransmits).
   */
  private settlePending(peer: TcpPeer, incarnation: number): void {
    assert(this.context.sessions.echoFor(peer.id) === incarnation);
    const kept: Buffer[] = [];
    let keptBytes = 0;
    for (const prefixed of peer.pending) {
      const frame = prefixed.subarray(LENGTH_PREFIX_BYTES);
      const echo = frameEcho(frame);
      assert(echo >= 0 && echo <= incarnation, "a queued frame echoes a run we have seen");
      if (echo === 0) resealEcho(frame, incarnation, this.context.authenticator);
      if (echo !== 0 && echo !== incarnation) {
        this.drop("stale-session", peerLabel(peer.id));
        continue;
      }
      kept.push(prefixed);
      keptBytes += prefixed.byteLength;
    }
    peer.pending = kept;
    peer.pendingBytes = keptBytes;
  }

  private onOutboundClosed(peer: TcpPeer, socket: net.Socket): void {
    if (peer.socket !== socket || this.closed || this.peers[peer.id - 1] !== peer) return;
    // Connected but never authenticated: a bad REPLY, a refused certificate, the deadline.
    if (peer.deadline !== null) {
      clearTimeout(peer.deadline);
      peer.deadline = null;
      this.drop("handshake", peerLabel(peer.id));
    }
    // A connection that stayed open a while was good: reconnect at once. One the peer closes
    // right after the handshake (it refuses our certificate, say) keeps backing off instead.
    const wasOpenMs = peer.state === "open" ? Date.now() - peer.openedAtMs : 0;
    if (wasOpenMs >= TCP_RECONNECT_DELAY_MS_MAX) peer.reconnectDelayMs = TCP_RECONNECT_DELAY_MS_MIN;
    peer.socket = null;
    peer.handshake = null;
    peer.state = "backoff";
    peer.timer = setTimeout(() => {
      peer.timer = null;
      peer.state = "idle";
      if (!this.closed && peer.pending.length > 0) this.connect(peer);
    }, peer.reconnectDelayMs);
    peer.timer.unref();
    peer.reconnectDelayMs = Math.min(peer.reconnectDelayMs * 2, TCP_RECONNECT_DELAY_MS_MAX);
  }

  // ---- inbound: accept, TLS, handshake -----------------------------------------------------

  private onInbound(raw: net.Socket): void {
    const source = raw.remoteAddress ?? "unknown";
    const label = `${source}:${raw.remotePort}`;
    if (this.closed) {
      raw.destroy();
      return;
    }
    if (!this.makeRoomForInbound(source)) {
      this.drop("handshake", label);
      raw.destroy();
      return;
    }
    const stale = this.inbound.get(label);
    if (stale !== undefined) this.closeInbound(stale, null);
    const connection: Inbound = {
      raw,
      label,
      source,
      socket: null,
      handshake: null,
      reader: null,
      peerId: 0,
      partialBytes: 0,
      deadline: null,
      closed: false,
    };
    this.inbound.set(label, connection);
    assert(this.inbound.size <= TCP_INBOUND_CONNECTIONS_MAX);
    raw.setKeepAlive(true, TCP_KEEPALIVE_MS);
    raw.on("error", () => {});
    raw.once("close", () => this.closeInbound(connection, null));
    connection.deadline = setTimeout(
      () => this.closeInbound(connection, "handshake"),
      this.handshakeTimeoutMs,
    );
    connection.deadline.unref();
    if (this.tlsServer === null) this.startResponder(connection, raw, NO_CHANNEL_BINDING);
    else this.tlsServer.emit("connection", raw); // node:tls's documented way to hand it a socket
  }

  /**
   * Room for one more connection from `source`: at TCP_UNAUTHENTICATED_PER_SOURCE_MAX its
   * oldest unauthenticated connection goes; at TCP_INBOUND_CONNECTIONS_MAX the oldest
   * unauthenticated one of the source holding the most goes. False if every held connection is
   * authenticated (the new one is refused).
   */
  private makeRoomForInbound(source: string): boolean {
    const sources = this.unauthenticatedBySource();
    const own = sources.get(source);
    if (own !== undefined && own.count >= TCP_UNAUTHENTICATED_PER_SOURCE_MAX) {
      this.closeInbound(own.oldest, "handshake");
      return true;
    }
    if (this.inbound.size < TCP_INBOUND_CONNECTIONS_MAX) return true;
    let largest: UnauthenticatedSource | null = null;
    for (const held of sources.values()) {
      if (largest === null || held.count > largest.count) largest = held;
    }
    if (largest === null) return false;
    this.closeInbound(largest.oldest, "handshake");
    return true;
  }

  /** Unauthenticated connections held, by source address (at most TCP_INBOUND_CONNECTIONS_MAX). */
  private unauthenticatedBySource(): Map<string, UnauthenticatedSource> {
    const sources = new Map<string, UnauthenticatedSource>();
    for (const connection of this.inbound.values()) {
      if (connection.peerId !== 0) continue;
      const held = sources.get(connection.source);
      if (held === undefined) sources.set(connection.source, { count: 1, oldest: connection });
      else held.count++;
    }
    return sources;
  }

  /** TLS is up (the client certificate chains to the CA; tls.Server refused anything else). */
  private onInboundSecure(socket: tls.TLSSocket): void {
    const connection = this.inbound.get(`${socket.remoteAddress}:${socket.remotePort}`);
    if (connection === undefined || connection.closed || connection.socket !== null) {
      socket.destroy();
      return;
    }
    socket.on("error", () => {});
    socket.once("close", () => this.closeInbound(connection, null));
    this.startResponder(connection, socket, channelBinding(socket));
  }

  private onInboundTlsError(socket: tls.TLSSocket): void {
    const connection = this.inbound.get(`${socket.remoteAddress}:${socket.remotePort}`);
    if (connection !== undefined) this.closeInbound(connection, "handshake");
    socket.destroy();
  }

  private startResponder(connection: Inbound, socket: net.Socket, binding: Uint8Array): void {
    connection.socket = socket;
    connection.handshake = new HandshakeResponder(this.handshakeParams(binding));
    socket.on("data", (chunk: Buffer) => this.onInboundData(connection, chunk));
  }

  private onInboundData(connection: Inbound, chunk: Buffer): void {
    if (connection.closed) return;
    this.counters.bytesReceived += chunk.byteLength;
    if (connection.handshake === null) return this.onFrameBytes(connection, chunk);
    const result = connection.handshake.receive(chunk);
    if (result.state === "failed") return this.closeInbound(connection, "handshake");
    if (result.send !== null) connection.socket!.write(result.send);
    if (result.state === "pending") return;
    // A replica that is no member we know (not yet added, or removed): refused; it retries.
    if (this.peers[result.peerId - 1] == null) return this.closeInbound(connection, "unknown-peer");
    if (!this.certificateNames(connection, result.peerId)) {
      return this.closeInbound(connection, "handshake");
    }
    // A run of the peer older than one already seen: refused, as its frames would be.
    if (this.context.sessions.learn(result.peerId, result.peerIncarnation) === "replay") {
      return this.closeInbound(connection, "replay");
    }
    this.authenticate(connection, result.peerId);
    if (result.rest.byteLength > 0) this.onFrameBytes(connection, result.rest);
  }

  /** With TLS: whether the client certificate names the --peers host of the replica it claims. */
  private certificateNames(connection: Inbound, peerId: number): boolean {
    if (this.tlsServer === null) return true;
    const host = this.peers[peerId - 1]!.address.host;
    return peerCertificateProblem(connection.socket as tls.TLSSocket, host) === null;
  }

  /** The handshake named peer `from`: frames from it are read now; an older connection of its goes. */
  private authenticate(connection: Inbound, from: number): void {
    assert(connection.peerId === 0 && connection.socket !== null && from !== 0);
    clearTimeout(connection.deadline!);
    connection.deadline = null;
    connection.handshake = null;
    connection.peerId = from;
    connection.reader = new FrameReader(this.frameBytesMax);
    for (const other of [...this.inbound.values()]) {
      if (other !== connection && other.peerId === from) this.closeInbound(other, null);
    }
    // The socket's idle timer: re-armed by every read. Only a frame left part way is a fault.
    connection.socket.setTimeout(this.frameStallTimeoutMs);
    connection.socket.on("timeout", () => {
      if (connection.partialBytes > 0) this.closeInbound(connection, "stalled");
    });
  }

  // ---- inbound: frames ---------------------------------------------------------------------

  private onFrameBytes(connection: Inbound, chunk: Buffer): void {
    const reader = connection.reader!;
    reader.push(chunk);
    connection.partialBytes += chunk.byteLength;
    while (!connection.closed) {
      const frame = reader.next();
      if (frame === null) return;
      if (typeof frame === "string") return this.closeInbound(connection, frame);
      connection.partialBytes -= LENGTH_PREFIX_BYTES + frame.byteLength;
      this.onFrame(connection, frame);
    }
  }

  private onFrame(connection: Inbound, frame: Buffer): void {
    const opened = openFrame(frame, this.context);
    // A frame sealed for an earlier run of this replica: our peer never writes one on a
    // connection whose handshake showed our run, so it was recorded and injected into the
    // stream. Dropped; the peer's own frames around it carry on.
    if (!opened.ok && opened.reason === "stale-session") {
      return this.drop("stale-session", connection.label);
    }
    if (!opened.ok) return this.closeInbound(connection, opened.reason);
    const { from, fragment, session, body } = opened.frame;
    if (fragment || session) return this.closeInbound(connection, "malformed");
    // Only the peer the handshake authenticated may send on this connection.
    if (from !== connection.peerId) return this.closeInbound(connection, "unknown-peer");
    const problem = checkRecords(body, this.options.messageBytesMax);
    if (problem !== null) return this.closeInbound(connection, problem);
    this.counters.messagesReceived += forEachRecord(body, (channel, payload) =>
      this.onMessage(from, channel, payload),
    );
  }

  /**
   * Close an inbound connection once, counting `reason`; with null, a connection that never
   * authenticated still counts "handshake" (it held a slot and gave up or was given up on).
   */
  private closeInbound(connection: Inbound, reason: DropReason | null): void {
    if (connection.closed) return;
    connection.closed = true;
    if (this.inbound.get(connection.label) === connection) this.inbound.delete(connection.label);
    if (connection.deadline !== null) clearTimeout(connection.deadline);
    connection.deadline = null;
    const counted = reason ?? (connection.peerId === 0 && !this.closed ? "handshake" : null);
    if (counted !== null) this.drop(counted, connection.label);
    connection.socket?.destroy();
    connection.raw.destroy();
  }

  private handshakeParams(binding: Uint8Array): HandshakeParams {
    return {
      keys: this.handshakeKeys,
      clusterId: this.options.clusterId,
      id: this.options.id,
      peerCount: peerIdsMax(this.options),
      nonce: randomBytes(HANDSHAKE_NONCE_BYTES),
      binding,
      incarnation: this.options.incarnation,
    };
  }

  private drop(reason: DropReason, from: string): void {
    this.counters.dropped[reason]++;
    this.options.onDrop?.(reason, from);
  }
}

function queuedBytes(peer: TcpPeer): number {
  return peer.pendingBytes + peer.builder.pendingBytes + (peer.socket?.writableLength ?? 0);
}

/** RFC 9266's tls-exporter binding of a TLS socket; zeros on plain TCP (nothing to bind to). */
function channelBinding(socket: net.Socket): Uint8Array {
  if (!(socket instanceof tls.TLSSocket)) return NO_CHANNEL_BINDING;
  // RFC 9266 §2: the "tls-exporter" binding has an empty context (under TLS 1.3, as none).
  return socket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, TLS_EXPORTER_LABEL, Buffer.alloc(0));
}

function timeoutOption(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 600_000) {
    throw new ApusError("ERR_INVALID_CONFIG", `${name} ${value} is out of range; use 1..600000 ms`);
  }
  return value;
}

// What an unauthenticated host can make an inbound connection hold is the transcript.
assert(TRANSCRIPT_BYTES <= 256, "the handshake reads a few hundred bytes at most");

import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { ApusError, assert } from "../core/errors.ts";
import {
  CHANNEL_MAX,
  checkRecords,
  createFrameContext,
  FRAGMENT_COUNT_MAX,
  FRAGMENT_HEADER_BYTES,
  FRAME_OVERHEAD_BYTES,
  FrameBuilder,
  type FrameContext,
  type FrameHeaderFields,
  forEachRecord,
  openFrame,
  RECORD_HEADER_BYTES,
  readFragment,
  sealFragments,
  sealSession,
} from "./frame.ts";
import { REASSEMBLY_SWEEP_MS, Reassembler } from "./reassembly.ts";
import { REPLAY_WINDOW_SEQS } from "./replay-window.ts";
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
import { TransportError } from "./transport-errors.ts";

/** Loopback-safe default: under the 65507-byte IPv4 UDP payload limit. */
export const UDP_DATAGRAM_BYTES_DEFAULT = 65000;
/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP). */
export const UDP_DATAGRAM_BYTES_LIMIT = 65507;
/** Smallest datagramBytesMax accepted: leaves room for a useful fragment. */
export const UDP_DATAGRAM_BYTES_MIN = 512;
/** Requested SO_RCVBUF / SO_SNDBUF; the kernel may cap it (Linux: net.core.rmem_max). */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Bytes queued for one peer and not yet handed to the socket; beyond, sends drop "queue-full". */
export const UDP_SEND_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/**
 * Bytes handed to the socket per peer per event-loop turn. The rest waits for setImmediate, so a
 * burst of fragments does not overrun the receiver's socket buffer (there is no flow control
 * beyond this: a lost fragment loses the message, and Paxos retransmits).
 */
export const UDP_BURST_BYTES_MAX = 512 * 1024;
/**
 * Least time between two session frames to one peer sent in answer to its frames with a stale
 * echo (peer-sessions.ts): one answer suffices, and a flood of replayed frames must not make us
 * send a flood. If it is lost, the peer's next stale frame after this long asks again.
 */
export const UDP_SESSION_FRAME_INTERVAL_MS = 20;

// A whole burst of the smallest datagrams may arrive in any order and still fit the replay
// window, with room to spare: reordering alone must not look like a replay.
assert(REPLAY_WINDOW_SEQS >= 4 * Math.ceil(UDP_BURST_BYTES_MAX / UDP_DATAGRAM_BYTES_MIN));

interface UdpPeer {
  readonly id: number;
  /** The address as configured (a host name or an IP literal). */
  readonly host: string;
  /** Resolved IP address; null until resolved (start(), or addPeer for a host name). */
  address: string | null;
  readonly port: number;
  readonly builder: FrameBuilder;
  readonly header: FrameHeaderFields;
  /** Sealed datagrams not yet handed to the socket, oldest first from queueHead. */
  queue: Buffer[];
  queueHead: number;
  /** Invariant: queuedBytes = sum of byteLength of queue[queueHead..]. */
  queuedBytes: number;
  /** Next fragmented-message id (u32, wraps). */
  nextMessageId: number;
  /**
   * performance.now() when we last answered this peer's stale echo with a session frame, and the
   * peer's incarnation then; -Infinity / 0: never. A new incarnation of the peer (it restarted;
   * only the peer can make one) is answered at once, the same one at most every
   * UDP_SESSION_FRAME_INTERVAL_MS. The announcement at start counts as neither.
   */
  sessionAnsweredMs: number;
  sessionAnsweredIncarnation: number;
  /** The incarnation of this peer's last admitted frame; 0 before any. */
  incarnationSeen: number;
}

/**
 * The default transport: one dgram socket bound at peers[id-1]. Small messages to one peer are
 * coalesced into one datagram per flush(); a message too big for one datagram is split into
 * fragments and reassembled by the receiver within the limits of reassembly.ts. Every frame
 * carries the session fields (frame.ts); at start and whenever a peer's frame echoes a stale
 * incarnation of ours, we send that peer a session frame so it learns our current one.
 */
export class UdpTransport implements Transport {
  onMessage: (from: number, channel: number, payload: Uint8Array) => void = () => {
    throw new ApusError("ERR_ASSERTION", "UdpTransport.onMessage must be set before start()");
  };

  private readonly options: TransportOptions;
  private readonly datagramBytesMax: number;
  private readonly context: FrameContext;
  /** Index id - 1 over 1..peerIdsMax: the peers now; null where no replica is one. */
  private readonly peers: (UdpPeer | null)[] = [];
  /** The non-null entries of `peers`, in id order. */
  private live: readonly UdpPeer[] = [];
  private readonly reassembler: Reassembler;
  private readonly counters = new StatsCounter();
  private socket: dgram.Socket | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private drainImmediate: NodeJS.Immediate | null = null;
  private closed = false;
  private readonly onSent = (error: Error | null): void => {
    if (error !== null) this.drop("send-error", "socket");
  };

  constructor(options: TransportOptions) {
    validateTransportOptions(options);
    this.options = options;
    this.datagramBytesMax = validateDatagramBytesMax(options);
    this.context = createFrameContext(options, true, this.counters, (from) => this.hasPeer(from));
    const idsMax = peerIdsMax(options);
    for (let id = 1; id <= idsMax; id++) {
      const peer = options.peers[id - 1] ?? null;
      this.peers.push(peer === null ? null : this.newPeer(id, peer));
    }
    this.peersChanged();
    this.reassembler = new Reassembler(idsMax, (from) => this.drop("reassembly", peerLabel(from)));
  }

  private newPeer(id: number, address: PeerAddress): UdpPeer {
    const header = { flags: 0, clusterId: this.options.clusterId, from: this.options.id, to: id };
    return {
      id,
      host: address.host,
      address: isIP(address.host) !== 0 ? address.host : null,
      port: address.port,
      builder: new FrameBuilder(this.datagramBytesMax, 0, header),
      header,
      queue: [],
      queueHead: 0,
      queuedBytes: 0,
      nextMessageId: 0,
      sessionAnsweredMs: Number.NEGATIVE_INFINITY,
      sessionAnsweredIncarnation: 0,
      incarnationSeen: 0,
    };
  }

  async start(): Promise<void> {
    assert(this.socket === null && !this.closed, "UdpTransport.start() called twice");
    const self = this.options.peers[this.options.id - 1]!;
    const family = await resolvePeers(this.livePeers(), self, this.options.id);
    const socket = dgram.createSocket({ type: family === 6 ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", (error) => {
        socket.close();
        reject(bindError("udp", self, error));
      });
      socket.bind({ address: this.peers[this.options.id - 1]!.address!, port: self.port }, () => {
        socket.removeAllListeners("error");
        resolve();
      });
    });
    setSocketBuffers(socket, this.options.recvBufferBytes ?? 0);
    socket.on("error", () => this.drop("send-error", "socket"));
    socket.on("message", (datagram, remote) => this.onDatagram(datagram, remote));
    this.socket = socket;
    this.sweepTimer = setInterval(
      () => this.reassembler.sweep(performance.now()),
      REASSEMBLY_SWEEP_MS,
    );
    this.sweepTimer.unref();
    // Tell every peer our incarnation now, so that its frames echo it before it has anything
    // to send us: otherwise its first messages after our (re)start are dropped "stale-session".
    for (const peer of this.livePeers()) if (peer.id !== this.options.id) this.sendSession(peer);
  }

  addPeer(id: number, address: PeerAddress): boolean {
    assert(Number.isInteger(id) && id >= 1 && id <= this.peers.length, `addPeer ${id}: bad id`);
    assert(id !== this.options.id, "addPeer: ourselves");
    checkPeerAddress(id, address);
    const old = this.peers[id - 1];
    if (old != null && old.host === address.host && old.port === address.port) return true;
    if (old != null) this.reassembler.forgetPeer(id);
    const peer = this.newPeer(id, address);
    this.peers[id - 1] = peer;
    this.peersChanged();
    if (peer.address !== null) this.sendSession(peer);
    else void this.resolveLater(peer);
    return true;
  }

  removePeer(id: number): void {
    assert(Number.isInteger(id) && id >= 1 && id <= this.peers.length, `removePeer ${id}: bad id`);
    assert(id !== this.options.id, "removePeer: ourselves");
    if (this.peers[id - 1] == null) return;
    this.peers[id - 1] = null;
    this.peersChanged();
    this.reassembler.forgetPeer(id);
  }

  hasPeer(id: number): boolean {
    return this.peers[id - 1] != null;
  }

  /** A peer added by a host name: resolved once; until then what is queued for it waits. */
  private async resolveLater(peer: UdpPeer): Promise<void> {
    try {
      peer.address = (await lookup(peer.host)).address;
    } catch {
      this.drop("send-error", peerLabel(peer.id));
      if (this.peers[peer.id - 1] === peer) {
        this.peers[peer.id - 1] = null;
        this.peersChanged();
      }
      return;
    }
    if (this.peers[peer.id - 1] !== peer) return;
    this.sendSession(peer);
    this.drain();
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
    const queued = peer.queuedBytes + peer.builder.pendingBytes;
    // One message larger than the queue limit (a snapshot) still goes when nothing waits ahead.
    if (queued > 0 && queued + payload.byteLength > UDP_SEND_QUEUE_BYTES_MAX) {
      return this.drop("queue-full", peerLabel(to));
    }
    this.counters.messagesSent++;
    if (RECORD_HEADER_BYTES + payload.byteLength + FRAME_OVERHEAD_BYTES <= this.datagramBytesMax) {
      if (!peer.builder.fits(payload.byteLength))
        this.enqueue(peer, peer.builder.seal(this.context));
      peer.builder.append(channel, payload);
      return;
    }
    // Too big for one datagram: keep send order, then fragment.
    if (!peer.builder.empty) this.enqueue(peer, peer.builder.seal(this.context));
    const messageId = peer.nextMessageId;
    peer.nextMessageId = (peer.nextMessageId + 1) >>> 0;
    const fragments = sealFragments(
      this.context,
      peer.header,
      this.datagramBytesMax,
      channel,
      messageId,
      payload,
    );
    for (const fragment of fragments) this.enqueue(peer, fragment);
  }

  flush(): void {
    for (const peer of this.livePeers()) {
      if (!peer.builder.empty) this.enqueue(peer, peer.builder.seal(this.context));
    }
    this.drain();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    if (this.drainImmediate !== null) clearImmediate(this.drainImmediate);
    for (const peer of this.livePeers()) {
      peer.queue = [];
      peer.queueHead = 0;
      peer.queuedBytes = 0;
    }
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  stats(): TransportStats {
    return this.counters.snapshot();
  }

  /**
   * The incarnation of `peer` seen in its frames, which ours echo; 0 until one arrived. Until
   * then the peer drops what we send it as "stale-session" (for tests and /status).
   */
  peerIncarnation(peer: number): number {
    return this.context.sessions.echoFor(peer);
  }

  /** Partial messages awaiting fragments (for tests and /status). */
  get partialMessageCount(): number {
    return this.reassembler.partialCount;
  }

  /** The peers now, in id order (kept, not computed per flush: flush runs every turn). */
  private livePeers(): readonly UdpPeer[] {
    return this.live;
  }

  private peersChanged(): void {
    this.live = this.peers.filter((peer): peer is UdpPeer => peer !== null);
  }

  private enqueue(peer: UdpPeer, datagram: Buffer): void {
    peer.queue.push(datagram);
    peer.queuedBytes += datagram.byteLength;
  }

  /** Hand each peer's queue to the socket, at most UDP_BURST_BYTES_MAX per peer per turn. */
  private drain(): void {
    this.drainImmediate = null;
    const socket = this.socket;
    if (socket === null) return; // before start(): stays queued
    let more = false;
    for (const peer of this.livePeers()) {
      if (peer.address === null) continue; // resolving its host: its queue waits
      let burstBytes = 0;
      while (peer.queueHead < peer.queue.length && burstBytes < UDP_BURST_BYTES_MAX) {
        const datagram = peer.queue[peer.queueHead]!;
        peer.queueHead++;
        peer.queuedBytes -= datagram.byteLength;
        burstBytes += datagram.byteLength;
        this.counters.datagramsSent++;
        this.counters.bytesSent += datagram.byteLength;
        socket.send(datagram, peer.port, peer.address, this.onSent);
      }
      if (peer.queueHead < peer.queue.length) more = true;
      if (peer.queueHead === peer.queue.length) {
        peer.queue = [];
        peer.queueHead = 0;
        assert(peer.queuedBytes === 0, "queuedBytes out of step with the queue");
      }
    }
    if (more && this.drainImmediate === null)
      this.drainImmediate = setImmediate(() => this.drain());
  }

  private onDatagram(datagram: Buffer, remote: dgram.RemoteInfo): void {
    this.counters.bytesReceived += datagram.byteLength;
    const opened = openFrame(datagram, this.context);
    if (!opened.ok) return this.onRefused(opened, remote);
    const { from, incarnation, fragment, session, body } = opened.frame;
    const peer = this.peers[from - 1];
    // Authenticated, but no member we know (not yet added, or removed): nowhere to answer.
    if (peer == null) return this.drop("unknown-peer", `${remote.address}:${remote.port}`);
    if (incarnation !== peer.incarnationSeen) {
      // A restarted sender numbers its messages from 0 again: its old run's partials must go.
      if (peer.incarnationSeen !== 0) this.reassembler.forgetPeer(from);
      peer.incarnationSeen = incarnation;
    }
    if (session) return; // its session fields were all it carried
    if (fragment) return this.onFragment(from, body, remote);
    const problem = checkRecords(body, this.options.messageBytesMax);
    if (problem !== null) return this.drop(problem, `${remote.address}:${remote.port}`);
    this.counters.messagesReceived += forEachRecord(body, (channel, payload) =>
      this.onMessage(from, channel, payload),
    );
  }

  private onFragment(from: number, body: Buffer, remote: dgram.RemoteInfo): void {
    const fragment = readFragment(body, this.options.messageBytesMax);
    if (typeof fragment === "string")
      return this.drop(fragment, `${remote.address}:${remote.port}`);
    const result = this.reassembler.add(from, fragment, performance.now());
    if (result.kind === "drop") return this.drop(result.reason, `${remote.address}:${remote.port}`);
    if (result.kind === "complete") {
      this.counters.messagesReceived++;
      this.onMessage(from, result.channel, result.payload);
    }
  }

  /**
   * A frame openFrame refused. A stale echo is answered with a session frame; one on a session
   * frame is the peer's own announcement, crossing ours, and is not counted as a drop.
   */
  private onRefused(
    refused: { reason: DropReason; from: number; session: boolean },
    remote: dgram.RemoteInfo,
  ): void {
    const known = refused.reason === "stale-session" ? this.peers[refused.from - 1] : null;
    if (known != null) {
      const peer = known;
      const incarnation = this.context.sessions.echoFor(peer.id);
      const now = performance.now();
      if (
        incarnation !== peer.sessionAnsweredIncarnation ||
        now - peer.sessionAnsweredMs >= UDP_SESSION_FRAME_INTERVAL_MS
      ) {
        peer.sessionAnsweredMs = now;
        peer.sessionAnsweredIncarnation = incarnation;
        this.sendSession(peer);
      }
      if (refused.session) return;
    }
    this.drop(refused.reason, `${remote.address}:${remote.port}`);
  }

  /** A session frame to `peer`, straight to the socket: it is tiny and must not wait. */
  private sendSession(peer: UdpPeer): void {
    const socket = this.socket;
    if (socket === null || peer.address === null) return;
    const frame = sealSession(this.context, peer.header);
    this.counters.datagramsSent++;
    this.counters.bytesSent += frame.byteLength;
    socket.send(frame, peer.port, peer.address, this.onSent);
  }

  private drop(reason: DropReason, from: string): void {
    this.counters.dropped[reason]++;
    this.options.onDrop?.(reason, from);
  }
}

function validateDatagramBytesMax(options: TransportOptions): number {
  const bytes = options.datagramBytesMax ?? UDP_DATAGRAM_BYTES_DEFAULT;
  if (
    !Number.isInteger(bytes) ||
    bytes < UDP_DATAGRAM_BYTES_MIN ||
    bytes > UDP_DATAGRAM_BYTES_LIMIT
  ) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `datagramBytesMax ${bytes} is out of range; use ${UDP_DATAGRAM_BYTES_MIN}..${UDP_DATAGRAM_BYTES_LIMIT} (1400 for WAN paths with a 1500-byte MTU)`,
    );
  }
  const chunkCapacity = bytes - FRAME_OVERHEAD_BYTES - FRAGMENT_HEADER_BYTES;
  const fragmentsNeeded = Math.ceil(options.messageBytesMax / chunkCapacity);
  if (fragmentsNeeded > FRAGMENT_COUNT_MAX) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `messageBytesMax ${options.messageBytesMax} needs ${fragmentsNeeded} fragments of ${chunkCapacity} bytes at datagramBytesMax ${bytes}; at most ${FRAGMENT_COUNT_MAX} are allowed: raise datagramBytesMax or lower messageBytesMax`,
    );
  }
  return bytes;
}

/** Resolve every peer's host once; returns our own address family. */
async function resolvePeers(
  peers: readonly UdpPeer[],
  self: { host: string; port: number },
  selfId: number,
): Promise<4 | 6> {
  let family: 4 | 6 = 4;
  for (const peer of peers) {
    const host = peer.host;
    let resolved: { address: string; family: number };
    if (isIP(host) !== 0) {
      resolved = { address: host, family: isIP(host) };
    } else {
      try {
        resolved = await lookup(host);
      } catch (cause) {
        if (peer.id === selfId) throw bindError("udp", self, cause);
        throw new TransportError(
          "ERR_TRANSPORT",
          `cannot resolve replica ${peer.id}'s host ${host}: ${(cause as Error).message}; check --peers`,
          { cause },
        );
      }
    }
    peer.address = resolved.address;
    if (peer.id === selfId) family = resolved.family === 6 ? 6 : 4;
  }
  return family;
}

/** Ask for large socket buffers; the kernel may cap them, and failure is tolerated. */
function setSocketBuffers(socket: dgram.Socket, recvBufferBytes: number): void {
  try {
    socket.setRecvBufferSize(recvBufferBytes > 0 ? recvBufferBytes : UDP_SOCKET_BUFFER_BYTES);
  } catch {
    // Capped or refused: the default buffer still works, with more loss under bursts.
  }
  try {
    socket.setSendBufferSize(UDP_SOCKET_BUFFER_BYTES);
  } catch {
    // As above.
  }
}

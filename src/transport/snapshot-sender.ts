/**
 * The sending end of the snapshot stream (snapshot-stream.ts). `send(to, key, slot, bytes)` takes
 * the encoding of one core message and moves it to replica `to`:
 *
 *   hash (SHA-256, in pieces between event-loop turns) → connect (TLS if on) → peer handshake →
 *   OFFER (slot, total, digest) → RESUME (the offset the receiver holds) → CHUNKs from there,
 *   one per event-loop turn, waiting for 'drain' whenever the socket's buffer is full → DONE.
 *
 * A break (the connection closes, no ACK for stallTimeoutMs, a bad frame) reconnects after a
 * backoff and offers again: the receiver answers with what it kept, so the transfer resumes. One
 * transfer per peer: a `send` of a newer snapshot, or of an answer to another question, replaces
 * the one in progress ("replaced"); one of the same snapshot answering the same question is
 * dropped ("coalesced") and the one in progress completes (see `send`). A transfer that makes no
 * progress for SNAPSHOT_GIVE_UP_MS is given up ("gave-up").
 *
 * Runs on the caller's thread (the consensus thread): every step is short (one chunk copied and
 * MACed, ~1 ms for 1 MiB), and none waits on the network.
 */
import net from "node:net";
import tls from "node:tls";
import { assert } from "../core/errors.ts";
import { FrameReader } from "./frame-reader.ts";
import { derivePeerKeys } from "./peer-keys.ts";
import { peerSecureContext } from "./peer-tls.ts";
import {
  channelBinding,
  handshakeParams,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SNAPSHOT_CHUNK_BYTES_MIN,
  SNAPSHOT_GIVE_UP_MS,
  SNAPSHOT_RECONNECT_DELAY_MS_MAX,
  SNAPSHOT_RECONNECT_DELAY_MS_MIN,
  SNAPSHOT_REPEAT_AFTER_MS,
  type SnapshotStreamOptions,
  type StreamFailure,
  StreamPeers,
  type StreamProgress,
} from "./snapshot-stream.ts";
import {
  DoneOutcome,
  deriveStreamKeys,
  STREAM_FRAME_BYTES_MIN,
  STREAM_HEAD_BYTES_MAX,
  type StreamFrame,
  StreamFrameType,
  StreamOpener,
  StreamSealer,
  sha256Pieces,
} from "./snapshot-stream-frame.ts";
import { HandshakeInitiator } from "./tcp-handshake.ts";
import type { PeerAddress } from "./transport.ts";

export interface SnapshotSenderOptions extends SnapshotStreamOptions {
  /** Bytes of the transfer per CHUNK (--snapshot-chunk-bytes). */
  readonly chunkBytes: number;
}

/**
 * hashing → connecting → handshaking → offered (OFFER sent) → streaming (CHUNKs) → waiting (all
 * sent, DONE awaited); any break → backoff → connecting.
 */
type SendState = "hashing" | "connecting" | "handshaking" | "offered" | "streaming" | "backoff";

interface Outgoing {
  readonly to: number;
  /** The caller's name for the message: a send with the same key is the same transfer. */
  readonly key: string;
  readonly slot: number;
  /** What the message answers (SnapshotSender.send); null: nothing (an InstallSnapshot). */
  readonly question: string | null;
  /** The message's first bytes: sent in the OFFER, not streamed (snapshot-stream-frame.ts). */
  readonly head: Uint8Array;
  /** The rest of the message: what is streamed, digested and resumed. */
  readonly bytes: Uint8Array;
  /** SHA-256 of `bytes`; null while it is computed. */
  digest: Buffer | null;
  readonly startedMs: number;
  state: SendState;
  /** Bytes the receiver holds, as it last said (RESUME or ACK). Invariant: acked <= sent. */
  acked: number;
  /** The next offset to write on this connection. */
  sent: number;
  /** Bytes written by this run (what the rate is computed over). */
  movedBytes: number;
  /** When `acked` last grew (or the transfer began): for giving up. */
  progressMs: number;
  /**
   * The receiver answered "not ready" (it holds this transfer whole and checked but cannot take
   * it yet): from then on its holding the whole is no progress, so the backoff grows to its cap
   * and the transfer is given up SNAPSHOT_GIVE_UP_MS after its last real progress.
   */
  notReady: boolean;
  /** When this connection last showed life (connected, RESUME, ACK): for stalls. */
  attemptMs: number;
  socket: net.Socket | null;
  handshake: HandshakeInitiator | null;
  sealer: StreamSealer | null;
  opener: StreamOpener | null;
  reader: FrameReader | null;
  /** Why the current connection is being closed; null: it broke by itself ("connection"). */
  closing: StreamFailure | null;
  reconnectDelayMs: number;
  timer: NodeJS.Timeout | null;
}

export class SnapshotSender {
  private readonly options: SnapshotSenderOptions;
  private readonly handshakeKeys: readonly Uint8Array[];
  /** The key this replica signs with (index 0): the receiver derives from the one that verified. */
  private readonly snapshotKey: Uint8Array;
  private readonly secureContext: tls.SecureContext | null;
  private readonly peers: StreamPeers;
  /** The transfer in progress to each peer. */
  private readonly current = new Map<number, Outgoing>();
  /** The last transfer completed to each peer and when (SNAPSHOT_REPEAT_AFTER_MS). */
  private readonly completed = new Map<number, { key: string; atMs: number }>();
  private readonly watch: NodeJS.Timeout;
  private closed = false;

  constructor(options: SnapshotSenderOptions) {
    assert(
      options.chunkBytes >= SNAPSHOT_CHUNK_BYTES_MIN &&
        options.chunkBytes <= SNAPSHOT_CHUNK_BYTES_MAX,
      "chunkBytes out of range",
    );
    this.options = options;
    const keys = derivePeerKeys(options.secrets, options.clusterId);
    this.handshakeKeys = keys.handshake;
    this.snapshotKey = keys.snapshots[0]!;
    this.secureContext = options.tls === undefined ? null : peerSecureContext(options.tls);
    this.peers = new StreamPeers(options.peers);
    const every = Math.max(10, Math.min(1000, Math.floor(options.stallTimeoutMs / 4)));
    this.watch = setInterval(() => this.checkStalls(), every);
    this.watch.unref();
  }

  /**
   * Whether a message of `key` to `to` needs no new transfer: the same one is in progress, or
   * was delivered less than SNAPSHOT_REPEAT_AFTER_MS ago.
   */
  covers(to: number, key: string): boolean {
    if (this.current.get(to)?.key === key) return true;
    const done = this.completed.get(to);
    return (
      done !== undefined &&
      done.key === key &&
      performance.now() - done.atMs < SNAPSHOT_REPEAT_AFTER_MS
    );
  }

  /**
   * Whether the transfer in progress to `to` answers for a message of snapshot `slot` answering
   * `question` (see `send`): then that message is dropped, counted "coalesced". The caller may
   * ask before encoding a large message.
   */
  coalesces(to: number, slot: number, question: string | null): boolean {
    const old = this.current.get(to);
    if (old === undefined) return false;
    if (slot > old.slot || (question !== null && question !== old.question)) return false;
    this.options.onEvent({ kind: "coalesced", direction: "out", peer: to, slot });
    return true;
  }

  /** Replica `id` (a new member, or one that moved) is reached at `address` from now on. */
  addPeer(id: number, address: PeerAddress): void {
    assert(id !== this.options.id, "addPeer of this replica");
    const before = this.peers.get(id);
    this.peers.set(id, address);
    const out = this.current.get(id);
    const moved =
      before !== undefined && (before.host !== address.host || before.port !== address.port);
    if (out !== undefined && moved) this.breakOff(out, "connection"); // reconnects to the new one
  }

  /** `id` left the configuration: its transfer ends, uncounted. */
  removePeer(id: number): void {
    this.peers.delete(id);
    const out = this.current.get(id);
    if (out !== undefined) this.forget(out);
    this.completed.delete(id);
  }

  /**
   * Stream `message` (not copied: the caller must not change it) to `to`. Its first `headBytes`
   * go in the OFFER, the rest is streamed: a message whose rest is the same (the same snapshot
   * under another ballot) resumes what the receiver kept of it. False when `to` is no peer now
   * (the caller sends nothing).
   *
   * `question`: what the message answers (a Promise: its ballot and fromSlot; a RecoverReply:
   * its ballot, nonce and fromSlot); null for one that answers nothing (an InstallSnapshot). A
   * transfer to `to` in progress is replaced only by a message of a newer snapshot slot, or one
   * answering another question; any other is dropped, counted "coalesced", and the one in
   * progress completes. Replacing it would restart a transfer that the receiver throws away from
   * byte 0: a Promise or RecoverReply streams fields that change at every commit (chosenSlot,
   * entries), and a recovering replica asks again every few hundred milliseconds, so a snapshot
   * that takes longer than that to move would never arrive. The caller (the link) says why
   * keeping the older one is safe.
   */
  send(
    to: number,
    key: string,
    slot: number,
    message: Uint8Array,
    headBytes: number,
    question: string | null = null,
  ): boolean {
    assert(to >= 1 && to !== this.options.id, "send to whom");
    assert(headBytes >= 0 && headBytes <= STREAM_HEAD_BYTES_MAX, "head size");
    assert(message.byteLength > headBytes, "an empty transfer");
    const head = message.slice(0, headBytes);
    const bytes = message.subarray(headBytes);
    if (this.peers.get(to) === undefined) return false;
    if (this.closed || this.current.get(to)?.key === key) return true;
    if (this.coalesces(to, slot, question)) return true;
    const old = this.current.get(to);
    if (old !== undefined) this.drop(old, "replaced");
    const now = performance.now();
    const out: Outgoing = {
      to,
      key,
      slot,
      question,
      head,
      bytes,
      digest: null,
      startedMs: now,
      state: "hashing",
      acked: 0,
      sent: 0,
      movedBytes: 0,
      progressMs: now,
      notReady: false,
      attemptMs: now,
      socket: null,
      handshake: null,
      sealer: null,
      opener: null,
      reader: null,
      closing: null,
      reconnectDelayMs: SNAPSHOT_RECONNECT_DELAY_MS_MIN,
      timer: null,
    };
    this.current.set(to, out);
    this.options.onEvent({
      kind: "started",
      direction: "out",
      peer: to,
      slot,
      totalBytes: bytes.byteLength,
    });
    void sha256Pieces([bytes]).then((digest) => {
      out.digest = digest;
      if (this.current.get(to) === out) this.connect(out);
    });
    return true;
  }

  progress(): StreamProgress[] {
    return [...this.current.values()].map((out) => ({
      direction: "out",
      peer: out.to,
      slot: out.slot,
      doneBytes: out.acked,
      totalBytes: out.bytes.byteLength,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watch);
    for (const out of [...this.current.values()]) this.forget(out);
  }

  // ---- connection ----------------------------------------------------------------------------

  private connect(out: Outgoing): void {
    assert(out.socket === null && out.digest !== null);
    const address = this.peers.get(out.to);
    assert(address !== undefined, "a transfer to a replica that is no peer");
    const { host, port } = address;
    const socket =
      this.secureContext === null
        ? net.createConnection({ host, port })
        : tls.connect({
            host,
            port,
            secureContext: this.secureContext,
            ...(net.isIP(host) === 0 ? { servername: host } : {}),
          });
    socket.setNoDelay(true);
    out.socket = socket;
    out.state = "connecting";
    out.closing = null;
    out.attemptMs = performance.now();
    socket.on("error", () => {});
    socket.once("close", () => this.onClosed(out, socket));
    socket.once(this.secureContext === null ? "connect" : "secureConnect", () => {
      if (out.socket !== socket) return;
      const binding = channelBinding(socket);
      const handshake = new HandshakeInitiator({
        ...handshakeParams(this.options, this.peers, this.handshakeKeys, binding),
        to: out.to,
      });
      out.handshake = handshake;
      out.state = "handshaking";
      socket.on("data", (chunk: Buffer) => this.onData(out, socket, chunk, binding));
      socket.write(handshake.hello());
    });
  }

  private onData(out: Outgoing, socket: net.Socket, chunk: Buffer, binding: Uint8Array): void {
    if (out.socket !== socket) return;
    if (out.state !== "handshaking") return this.onFrameBytes(out, socket, chunk);
    const result = out.handshake!.receive(chunk);
    if (result.state === "pending") return;
    if (result.state === "failed") return this.breakOff(out, "handshake");
    socket.write(result.send!);
    const keys = deriveStreamKeys(this.snapshotKey, out.handshake!.transcriptDigest(), binding);
    out.handshake = null;
    out.sealer = new StreamSealer(keys.initiator);
    out.opener = new StreamOpener(keys.responder, 0);
    out.reader = new FrameReader(out.opener.frameBytesMax, STREAM_FRAME_BYTES_MIN);
    out.state = "offered";
    out.attemptMs = performance.now();
    socket.write(out.sealer.offer(out.slot, out.bytes.byteLength, out.digest!, out.head));
    if (result.rest.byteLength > 0) this.onFrameBytes(out, socket, result.rest);
  }

  private onFrameBytes(out: Outgoing, socket: net.Socket, chunk: Buffer): void {
    const reader = out.reader;
    if (reader === null) return;
    reader.push(chunk);
    while (out.socket === socket && out.closing === null) {
      const bytes = reader.next();
      if (bytes === null) return;
      if (typeof bytes === "string") return this.breakOff(out, "malformed");
      const frame = out.opener!.open(bytes);
      if (typeof frame === "string")
        return this.breakOff(out, frame === "auth" || frame === "replay" ? "auth" : "malformed");
      this.onFrame(out, socket, frame);
    }
  }

  private onFrame(out: Outgoing, socket: net.Socket, frame: StreamFrame): void {
    const total = out.bytes.byteLength;
    switch (frame.type) {
      case StreamFrameType.Resume: {
        if (out.state !== "offered" || frame.offset > total) return this.breakOff(out, "malformed");
        if (frame.offset > 0) {
          this.options.onEvent({
            kind: "resumed",
            direction: "out",
            peer: out.to,
            slot: out.slot,
            offset: frame.offset,
          });
        }
        this.heard(out, frame.offset);
        out.sent = frame.offset;
        out.state = "streaming";
        this.pump(out, socket);
        return;
      }
      case StreamFrameType.Ack:
        if (out.state !== "streaming" || frame.offset > out.sent || frame.offset < out.acked)
          return this.breakOff(out, "malformed");
        this.heard(out, frame.offset);
        return;
      case StreamFrameType.Done:
        return this.onDone(out, frame.outcome);
      default:
        return this.breakOff(out, "malformed");
    }
  }

  /**
   * The receiver holds `offset` bytes. Holding them all, it is reading them back and checking
   * them (ACKs of the whole while it does): alive, as good as progress, until it answered "not
   * ready" once (then offering again is no progress: without this the backoff and the give-up
   * clock were reset at every offer, and the receiver read the whole back every 50 ms forever).
   */
  private heard(out: Outgoing, offset: number): void {
    const now = performance.now();
    out.attemptMs = now;
    if (offset > out.acked || (offset === out.bytes.byteLength && !out.notReady)) {
      out.progressMs = now;
      out.reconnectDelayMs = SNAPSHOT_RECONNECT_DELAY_MS_MIN;
    }
    out.acked = offset;
  }

  /** Write the next chunk, then come back next turn, or on 'drain' when the socket is full. */
  private pump(out: Outgoing, socket: net.Socket): void {
    if (out.socket !== socket || out.state !== "streaming" || out.closing !== null) return;
    const total = out.bytes.byteLength;
    if (out.sent >= total) return; // all written: DONE awaited
    const end = Math.min(out.sent + this.options.chunkBytes, total);
    const frame = out.sealer!.chunk(out.sent, out.bytes.subarray(out.sent, end));
    const room = socket.write(frame);
    out.movedBytes += end - out.sent;
    this.options.onEvent({ kind: "bytes", direction: "out", count: end - out.sent });
    out.sent = end;
    if (room) setImmediate(() => this.pump(out, socket));
    else socket.once("drain", () => this.pump(out, socket));
  }

  /** DONE, in any state: the receiver may answer an OFFER of what it already delivered at once. */
  private onDone(out: Outgoing, outcome: number): void {
    const event = { direction: "out", peer: out.to, slot: out.slot } as const;
    if (outcome === DoneOutcome.Delivered) {
      this.options.onEvent({
        kind: "completed",
        ...event,
        totalBytes: out.bytes.byteLength,
        movedBytes: out.movedBytes,
        elapsedMs: performance.now() - out.startedMs,
      });
      this.completed.set(out.to, { key: out.key, atMs: performance.now() });
      this.forget(out);
      return;
    }
    if (outcome === DoneOutcome.Refused) return this.drop(out, "refused");
    // The receiver holds it all but cannot take it yet: offer again after the backoff.
    if (outcome === DoneOutcome.NotReady) {
      out.notReady = true;
      return this.breakOff(out, "not-ready");
    }
    // Digest mismatch: the receiver threw its bytes away; offer again from 0 at once.
    out.acked = 0;
    out.reconnectDelayMs = 0;
    this.breakOff(out, "digest");
  }

  /** Close this connection for `reason`; the transfer goes on over a new one. */
  private breakOff(out: Outgoing, reason: StreamFailure): void {
    if (out.socket === null || out.closing !== null) return;
    out.closing = reason;
    out.socket.destroy();
  }

  private onClosed(out: Outgoing, socket: net.Socket): void {
    if (out.socket !== socket) return;
    out.socket = null;
    out.handshake = null;
    out.sealer = null;
    out.opener = null;
    out.reader = null;
    if (this.current.get(out.to) !== out || this.closed) return;
    this.options.onEvent({
      kind: "failed",
      direction: "out",
      peer: out.to,
      slot: out.slot,
      reason: out.closing ?? "connection",
    });
    out.state = "backoff";
    out.timer = setTimeout(() => {
      out.timer = null;
      if (this.current.get(out.to) === out && !this.closed) this.connect(out);
    }, out.reconnectDelayMs);
    out.timer.unref();
    out.reconnectDelayMs = Math.min(
      Math.max(out.reconnectDelayMs * 2, SNAPSHOT_RECONNECT_DELAY_MS_MIN),
      SNAPSHOT_RECONNECT_DELAY_MS_MAX,
    );
  }

  /** Stalled connections are closed (they resume); transfers stuck too long are given up. */
  private checkStalls(): void {
    const now = performance.now();
    for (const out of [...this.current.values()]) {
      if (now - out.progressMs >= SNAPSHOT_GIVE_UP_MS) {
        this.drop(out, "gave-up");
        continue;
      }
      const live = out.socket !== null && out.state !== "hashing";
      if (live && now - out.attemptMs >= this.options.stallTimeoutMs) this.breakOff(out, "stalled");
    }
  }

  /** End a transfer for good, counted as failed for `reason`. */
  private drop(out: Outgoing, reason: StreamFailure): void {
    this.options.onEvent({
      kind: "failed",
      direction: "out",
      peer: out.to,
      slot: out.slot,
      reason,
    });
    this.forget(out);
  }

  /** End a transfer without counting: it is no longer current, its socket and timer go. */
  private forget(out: Outgoing): void {
    if (this.current.get(out.to) === out) this.current.delete(out.to);
    if (out.timer !== null) clearTimeout(out.timer);
    out.timer = null;
    const socket = out.socket;
    out.socket = null;
    socket?.destroy();
  }
}

/**
 * The handshake that opens every TCP peer connection, before any frame is read (issue 10: bound
 * everything read before authentication). Sans-I/O: the transport feeds it the bytes it reads
 * and writes what it returns; this file starts no timer and touches no socket.
 *
 * Three fixed-size messages, little-endian, each starting with the same 12-byte header:
 *
 *   offset  size  field
 *   0       u16   magic 0x4841 (bytes "AH"; a frame starts with a length prefix, then "AP")
 *   2       u8    version (HANDSHAKE_VERSION)
 *   3       u8    type: 1 HELLO, 2 REPLY, 3 PROOF
 *   4       u32   clusterId
 *   8       u8    from (the sender's replica id)
 *   9       u8    to (the receiver's replica id)
 *   10      u16   reserved, must be 0
 *
 *   HELLO  initiator → responder   header | nonceI (32)                                   44 bytes
 *   REPLY  responder → initiator   header | nonceR (32) | incarnationR (u64) | tagR (32)  84 bytes
 *   PROOF  initiator → responder   header | incarnationI (u64) | tagI (32)                52 bytes
 *
 *   tagR = HMAC-SHA256(k, "apus-smr/tcp-handshake/v2/responder" ‖ binding ‖ HELLO ‖ REPLY[0, 52))
 *   tagI = HMAC-SHA256(k, "apus-smr/tcp-handshake/v2/initiator" ‖ binding ‖ HELLO ‖ REPLY ‖ PROOF[0, 20))
 *
 * incarnationR and incarnationI are each side's transport incarnation (TransportOptions
 * .incarnation, the run of the replica: a safe integer >= 1 that grows across restarts), under
 * the tags. The handshake is where the two runs meet: each side learns the other's current run
 * from a message it has just seen proved over its own fresh nonce, so neither can be a recording.
 * The initiator echoes incarnationR in every frame it sends on the connection, and the responder
 * drops frames whose echo is not its own incarnation: frames recorded before the responder
 * restarted and injected into a new connection's stream are dropped ("stale-session"). The
 * responder learns incarnationI, so frames of the initiator's earlier runs are replays at once
 * (peer-sessions.ts says why this, and not a key per connection).
 *
 * k is the handshake key derived from the cluster secret (peer-keys.ts, purpose "handshake": never
 * the frame key, so no handshake tag verifies as a frame and no frame tag as a handshake); index 0
 * signs, every index verifies (a key roll). `binding` is 32 bytes: with TLS, the session's RFC 9266
 * exporter ("EXPORTER-Channel-Binding"), so a transcript relayed between two TLS sessions (a host
 * with some certificate of the same CA in the middle) does not verify; without TLS, zeros.
 *
 * What each side proves: the responder proves it holds k over the initiator's fresh nonce, the
 * initiator proves it over the responder's fresh nonce and the responder's tag. A recorded REPLY
 * does not verify against a new nonceI, nor a recorded PROOF against a new nonceR; the role label
 * keeps a REPLY tag from serving as a PROOF tag (reflection). The header fields are under both
 * tags, so `from` — the replica id the connection is then bound to — is authenticated. A
 * responder answers any well-formed HELLO with a tag (an oracle over its own fresh nonce only,
 * under the responder label), which gives nothing that verifies as a PROOF.
 *
 * Checks, in order: every message is read into a fixed transcript buffer of TRANSCRIPT_BYTES, never
 * more. On HELLO (unauthenticated, cheap): magic, version, type, reserved, clusterId, `to` is this
 * replica, `from` is another replica of 1..peerCount. On REPLY: the same header checks with `from`
 * the replica we dialed, then tagR, then incarnationR is a safe integer >= 1. On PROOF: the header
 * repeats HELLO's ids, then tagI, then incarnationI likewise. Bytes after PROOF are the
 * initiator's first frames (it does not wait); bytes after REPLY are a violation. Whether a peer's
 * incarnation is older than one already seen is the transport's check (PeerSessions.learn).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { assert } from "../core/errors.ts";

export const HANDSHAKE_MAGIC = 0x4841;
/**
 * 2: REPLY and PROOF carry the sender's incarnation (1 had none). Replicas of different versions
 * refuse each other's HELLO or REPLY ("malformed"): upgrade a TCP cluster's replicas together.
 */
export const HANDSHAKE_VERSION = 2;
export const HANDSHAKE_TYPE_HELLO = 1;
export const HANDSHAKE_TYPE_REPLY = 2;
export const HANDSHAKE_TYPE_PROOF = 3;

export const HANDSHAKE_OFFSET_MAGIC = 0;
export const HANDSHAKE_OFFSET_VERSION = 2;
export const HANDSHAKE_OFFSET_TYPE = 3;
export const HANDSHAKE_OFFSET_CLUSTER = 4;
export const HANDSHAKE_OFFSET_FROM = 8;
export const HANDSHAKE_OFFSET_TO = 9;
export const HANDSHAKE_OFFSET_RESERVED = 10;
export const HANDSHAKE_HEADER_BYTES = 12;
export const HANDSHAKE_NONCE_BYTES = 32;
/** u64 LE: the sender's incarnation, a safe integer >= 1. */
export const HANDSHAKE_INCARNATION_BYTES = 8;
/** Full HMAC-SHA256 output: handshakes are rare, nothing to save by truncating. */
export const HANDSHAKE_TAG_BYTES = 32;
/** The channel binding under both tags: TLS exporter output, or zeros on plain TCP. */
export const CHANNEL_BINDING_BYTES = 32;
/** RFC 9266 §2: the exporter label of the "tls-exporter" channel binding (empty context). */
export const TLS_EXPORTER_LABEL = "EXPORTER-Channel-Binding";

export const HELLO_BYTES = HANDSHAKE_HEADER_BYTES + HANDSHAKE_NONCE_BYTES;
export const REPLY_BYTES =
  HANDSHAKE_HEADER_BYTES +
  HANDSHAKE_NONCE_BYTES +
  HANDSHAKE_INCARNATION_BYTES +
  HANDSHAKE_TAG_BYTES;
export const PROOF_BYTES =
  HANDSHAKE_HEADER_BYTES + HANDSHAKE_INCARNATION_BYTES + HANDSHAKE_TAG_BYTES;
/** All a handshake ever holds of what it reads: HELLO ‖ REPLY ‖ PROOF. */
export const TRANSCRIPT_BYTES = HELLO_BYTES + REPLY_BYTES + PROOF_BYTES;
assert(TRANSCRIPT_BYTES === 180, "handshake layout changed: update the table above");

const OFFSET_REPLY = HELLO_BYTES;
const OFFSET_PROOF = HELLO_BYTES + REPLY_BYTES;
/** Transcript offsets of the incarnations and of the tags that cover them. */
const OFFSET_INCARNATION_R = OFFSET_REPLY + HANDSHAKE_HEADER_BYTES + HANDSHAKE_NONCE_BYTES;
const OFFSET_TAG_R = OFFSET_INCARNATION_R + HANDSHAKE_INCARNATION_BYTES;
const OFFSET_INCARNATION_I = OFFSET_PROOF + HANDSHAKE_HEADER_BYTES;
const OFFSET_TAG_I = OFFSET_INCARNATION_I + HANDSHAKE_INCARNATION_BYTES;
assert(OFFSET_TAG_R + HANDSHAKE_TAG_BYTES === OFFSET_PROOF, "tagR ends the REPLY");
assert(OFFSET_TAG_I + HANDSHAKE_TAG_BYTES === TRANSCRIPT_BYTES, "tagI ends the PROOF");
const LABEL_RESPONDER = Buffer.from("apus-smr/tcp-handshake/v2/responder", "ascii");
const LABEL_INITIATOR = Buffer.from("apus-smr/tcp-handshake/v2/initiator", "ascii");
const U32_RANGE = 2 ** 32;
/** A u64's high word must stay below this for the value to be a safe integer (< 2^53). */
const U64_SAFE_HIGH_LIMIT = 2 ** 21;

/** Why a handshake failed: for tests and logs; the transport counts them all as "handshake". */
export type HandshakeFailure =
  /**
   * Not a handshake message: magic, version, type or reserved bytes are wrong; or, under a tag
   * that verifies, an incarnation that is not a safe integer >= 1.
   */
  | "malformed"
  /** Another cluster's id. */
  | "cluster"
  /** `to` is not this replica, `from` is not another replica, or ids differ between messages. */
  | "peer"
  /** A tag that verifies under none of the keys (another secret, or a replayed transcript). */
  | "tag"
  /** The responder sent bytes after its REPLY. */
  | "trailing";

export type HandshakeResult =
  /** Not finished: write `send` if any, and feed more bytes. */
  | { readonly state: "pending"; readonly send: Buffer | null }
  /**
   * Authenticated: the connection belongs to replica `peerId`. Write `send` if any (the PROOF);
   * `rest` are bytes that followed the handshake (frames), possibly empty.
   */
  | {
      readonly state: "done";
      readonly send: Buffer | null;
      readonly peerId: number;
      /** The peer's incarnation (its run), as it proved it in this handshake. */
      readonly peerIncarnation: number;
      /** Index of the key the peer's tag verified under (> 0: it still signs with an old key). */
      readonly keyIndex: number;
      readonly rest: Buffer;
    }
  | { readonly state: "failed"; readonly failure: HandshakeFailure };

export interface HandshakeParams {
  /** The handshake keys (derivePeerKeys(...).handshake): index 0 signs, every one verifies. */
  readonly keys: readonly Uint8Array[];
  readonly clusterId: number;
  /** This replica, 1..peerCount. */
  readonly id: number;
  readonly peerCount: number;
  /** HANDSHAKE_NONCE_BYTES fresh random bytes (crypto.randomBytes), never reused. */
  readonly nonce: Uint8Array;
  /** CHANNEL_BINDING_BYTES: the TLS exporter, or zeros without TLS. */
  readonly binding: Uint8Array;
  /** This replica's transport incarnation (TransportOptions.incarnation): sent under the tag. */
  readonly incarnation: number;
}

type Phase = "reading" | "done" | "failed";

/** What both roles share: the transcript buffer, reading into it, header checks and tags. */
abstract class Handshake {
  protected readonly params: HandshakeParams;
  /** HELLO ‖ REPLY ‖ PROOF as sent and received. The only buffer a handshake reads into. */
  protected readonly transcript = Buffer.alloc(TRANSCRIPT_BYTES);
  /** Transcript bytes written or read so far. Invariant: filled <= TRANSCRIPT_BYTES. */
  protected filled = 0;
  protected phase: Phase = "reading";

  constructor(params: HandshakeParams) {
    assert(params.keys.length >= 1, "a handshake needs at least one key");
    assert(params.nonce.byteLength === HANDSHAKE_NONCE_BYTES, "nonce size");
    assert(params.binding.byteLength === CHANNEL_BINDING_BYTES, "channel binding size");
    assert(params.id >= 1 && params.id <= params.peerCount, "id out of 1..peerCount");
    assert(
      Number.isSafeInteger(params.incarnation) && params.incarnation >= 1,
      "incarnation is a safe integer >= 1",
    );
    this.params = params;
  }

  /**
   * SHA-256 of the whole transcript (HELLO ‖ REPLY ‖ PROOF), once done: both sides hold the same
   * bytes, fresh on each connection (two nonces), so keys derived from it are per connection (the
   * snapshot stream's, snapshot-stream-frame.ts).
   */
  transcriptDigest(): Buffer {
    assert(this.phase === "done", "the transcript is whole only once the handshake is done");
    return createHash("sha256").update(this.transcript).digest();
  }

  /** Write our incarnation at `at` (u64 LE). */
  protected writeIncarnation(at: number): void {
    const incarnation = this.params.incarnation;
    this.transcript.writeUInt32LE(incarnation % U32_RANGE, at);
    this.transcript.writeUInt32LE(Math.floor(incarnation / U32_RANGE), at + 4);
  }

  /** The peer's incarnation at `at`, or -1 when it is not a safe integer >= 1. */
  protected readIncarnation(at: number): number {
    const high = this.transcript.readUInt32LE(at + 4);
    if (high >= U64_SAFE_HIGH_LIMIT) return -1;
    const incarnation = high * U32_RANGE + this.transcript.readUInt32LE(at);
    return incarnation >= 1 ? incarnation : -1;
  }

  /** Copy bytes of `chunk` from `offset` into the transcript up to `end`; returns the new offset. */
  protected fill(chunk: Buffer, offset: number, end: number): number {
    assert(this.filled < end && end <= TRANSCRIPT_BYTES);
    const count = Math.min(end - this.filled, chunk.byteLength - offset);
    chunk.copy(this.transcript, this.filled, offset, offset + count);
    this.filled += count;
    return offset + count;
  }

  protected writeHeader(at: number, type: number, from: number, to: number): void {
    const t = this.transcript;
    t.writeUInt16LE(HANDSHAKE_MAGIC, at + HANDSHAKE_OFFSET_MAGIC);
    t.writeUInt8(HANDSHAKE_VERSION, at + HANDSHAKE_OFFSET_VERSION);
    t.writeUInt8(type, at + HANDSHAKE_OFFSET_TYPE);
    t.writeUInt32LE(this.params.clusterId, at + HANDSHAKE_OFFSET_CLUSTER);
    t.writeUInt8(from, at + HANDSHAKE_OFFSET_FROM);
    t.writeUInt8(to, at + HANDSHAKE_OFFSET_TO);
    t.writeUInt16LE(0, at + HANDSHAKE_OFFSET_RESERVED);
  }

  /** Check the header at `at`: the fixed fields, then the ids this message must carry. */
  protected checkHeader(
    at: number,
    type: number,
    from: number | null,
    to: number,
  ): HandshakeFailure | null {
    const t = this.transcript;
    if (t.readUInt16LE(at + HANDSHAKE_OFFSET_MAGIC) !== HANDSHAKE_MAGIC) return "malformed";
    if (t.readUInt8(at + HANDSHAKE_OFFSET_VERSION) !== HANDSHAKE_VERSION) return "malformed";
    if (t.readUInt8(at + HANDSHAKE_OFFSET_TYPE) !== type) return "malformed";
    if (t.readUInt16LE(at + HANDSHAKE_OFFSET_RESERVED) !== 0) return "malformed";
    if (t.readUInt32LE(at + HANDSHAKE_OFFSET_CLUSTER) !== this.params.clusterId) return "cluster";
    if (t.readUInt8(at + HANDSHAKE_OFFSET_TO) !== to) return "peer";
    const sender = t.readUInt8(at + HANDSHAKE_OFFSET_FROM);
    if (from !== null) return sender === from ? null : "peer";
    if (sender < 1 || sender > this.params.peerCount || sender === this.params.id) return "peer";
    return null;
  }

  /** HMAC-SHA256 under `key` of label ‖ binding ‖ transcript[0, end). */
  protected tag(key: Uint8Array, label: Buffer, end: number): Buffer {
    return createHmac("sha256", key)
      .update(label)
      .update(this.params.binding)
      .update(this.transcript.subarray(0, end))
      .digest();
  }

  /** Index of the key under which the tag at [at, at + TAG) verifies, or -1. */
  protected verify(label: Buffer, end: number, at: number): number {
    const received = this.transcript.subarray(at, at + HANDSHAKE_TAG_BYTES);
    // Every key is tried even after a match: the time taken does not say which one matched.
    let matched = -1;
    this.params.keys.forEach((key, index) => {
      const ok = timingSafeEqual(this.tag(key, label, end), received);
      if (ok && matched < 0) matched = index;
    });
    return matched;
  }

  protected sign(label: Buffer, end: number): void {
    assert(end + HANDSHAKE_TAG_BYTES <= TRANSCRIPT_BYTES);
    this.tag(this.params.keys[0]!, label, end).copy(this.transcript, end);
  }

  protected fail(failure: HandshakeFailure): HandshakeResult {
    this.phase = "failed";
    return { state: "failed", failure };
  }

  /** A copy of transcript[start, end) to write (the caller's socket may keep it). */
  protected message(start: number, end: number): Buffer {
    return Buffer.from(this.transcript.subarray(start, end));
  }
}

/** The side that connects: sends HELLO, checks REPLY, sends PROOF, then may send frames. */
export class HandshakeInitiator extends Handshake {
  private readonly to: number;

  constructor(params: HandshakeParams & { readonly to: number }) {
    super(params);
    assert(params.to >= 1 && params.to <= params.peerCount && params.to !== params.id, "to");
    this.to = params.to;
    this.writeHeader(0, HANDSHAKE_TYPE_HELLO, params.id, params.to);
    this.transcript.set(params.nonce, HANDSHAKE_HEADER_BYTES);
    this.filled = HELLO_BYTES;
  }

  /** The HELLO to write as soon as the connection (and TLS, if any) is up. */
  hello(): Buffer {
    return this.message(0, HELLO_BYTES);
  }

  receive(chunk: Buffer): HandshakeResult {
    assert(this.phase === "reading", "handshake already finished");
    const offset = this.fill(chunk, 0, OFFSET_PROOF);
    if (this.filled < OFFSET_PROOF) return { state: "pending", send: null };
    if (offset < chunk.byteLength) return this.fail("trailing");
    const problem = this.checkHeader(OFFSET_REPLY, HANDSHAKE_TYPE_REPLY, this.to, this.params.id);
    if (problem !== null) return this.fail(problem);
    const keyIndex = this.verify(LABEL_RESPONDER, OFFSET_TAG_R, OFFSET_TAG_R);
    if (keyIndex < 0) return this.fail("tag");
    const peerIncarnation = this.readIncarnation(OFFSET_INCARNATION_R);
    if (peerIncarnation < 0) return this.fail("malformed");
    this.writeHeader(OFFSET_PROOF, HANDSHAKE_TYPE_PROOF, this.params.id, this.to);
    this.writeIncarnation(OFFSET_INCARNATION_I);
    this.sign(LABEL_INITIATOR, OFFSET_TAG_I);
    this.filled = TRANSCRIPT_BYTES;
    this.phase = "done";
    const send = this.message(OFFSET_PROOF, TRANSCRIPT_BYTES);
    const rest = chunk.subarray(offset);
    return { state: "done", send, peerId: this.to, peerIncarnation, keyIndex, rest };
  }
}

/** The side that accepts: checks HELLO, sends REPLY, checks PROOF; then frames follow. */
export class HandshakeResponder extends Handshake {
  receive(chunk: Buffer): HandshakeResult {
    assert(this.phase === "reading", "handshake already finished");
    let offset = 0;
    let send: Buffer | null = null;
    if (this.filled < HELLO_BYTES) {
      offset = this.fill(chunk, offset, HELLO_BYTES);
      if (this.filled < HELLO_BYTES) return { state: "pending", send: null };
      const problem = this.checkHeader(0, HANDSHAKE_TYPE_HELLO, null, this.params.id);
      if (problem !== null) return this.fail(problem);
      send = this.reply();
    }
    if (offset === chunk.byteLength) return { state: "pending", send };
    offset = this.fill(chunk, offset, TRANSCRIPT_BYTES);
    if (this.filled < TRANSCRIPT_BYTES) return { state: "pending", send };
    return this.checkProof(send, chunk.subarray(offset));
  }

  /** The initiator's id from its HELLO; 0 until the HELLO has been read and checked. */
  private get initiator(): number {
    return this.filled >= OFFSET_PROOF ? this.transcript.readUInt8(HANDSHAKE_OFFSET_FROM) : 0;
  }

  private reply(): Buffer {
    const from = this.transcript.readUInt8(HANDSHAKE_OFFSET_FROM);
    this.writeHeader(OFFSET_REPLY, HANDSHAKE_TYPE_REPLY, this.params.id, from);
    this.transcript.set(this.params.nonce, OFFSET_REPLY + HANDSHAKE_HEADER_BYTES);
    this.writeIncarnation(OFFSET_INCARNATION_R);
    this.sign(LABEL_RESPONDER, OFFSET_TAG_R);
    this.filled = OFFSET_PROOF;
    return this.message(OFFSET_REPLY, OFFSET_PROOF);
  }

  private checkProof(send: Buffer | null, rest: Buffer): HandshakeResult {
    const peerId = this.initiator;
    assert(peerId !== 0);
    const problem = this.checkHeader(OFFSET_PROOF, HANDSHAKE_TYPE_PROOF, peerId, this.params.id);
    if (problem !== null) return this.fail(problem);
    const keyIndex = this.verify(LABEL_INITIATOR, OFFSET_TAG_I, OFFSET_TAG_I);
    if (keyIndex < 0) return this.fail("tag");
    const peerIncarnation = this.readIncarnation(OFFSET_INCARNATION_I);
    if (peerIncarnation < 0) return this.fail("malformed");
    this.phase = "done";
    return { state: "done", send, peerId, peerIncarnation, keyIndex, rest };
  }
}

/** The channel binding of a plain TCP connection: nothing to bind to. */
export const NO_CHANNEL_BINDING: Uint8Array = new Uint8Array(CHANNEL_BINDING_BYTES);

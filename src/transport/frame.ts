/**
 * The transport frame: one per UDP datagram, or one per TCP length prefix (u32 LE frame length,
 * then the frame). Little-endian throughout. Layout (FRAME_VERSION 2):
 *
 *   offset  size  field
 *   0       u16   magic 0x5041 (bytes "AP")
 *   2       u8    version (FRAME_VERSION)
 *   3       u8    flags: bit 0 FRAGMENT, bit 1 SESSION; all other bits must be 0, and not both
 *   4       u32   clusterId
 *   8       u8    from (replica id, 1..n)
 *   9       u8    to (replica id, 1..n)
 *   10      u16   reserved, must be 0
 *   12      u64   incarnation: the sender's run, >= 1, grows across its restarts (a safe integer)
 *   20      u64   seq: the sender's frame number to this receiver in this incarnation, from 0
 *   28      u64   echo: the receiver's incarnation as the sender last saw it; 0 if not yet (TCP
 *                 learns it in the connection handshake and never sends 0)
 *   36      ...   body
 *   end-16  16    tag: HMAC-SHA256(frame key, bytes [0, end-16)), truncated to its first 16 bytes
 *
 * The frame key is derived from the cluster secret (peer-keys.ts, purpose "frames"), never the
 * secret itself. During a key roll two keys verify (FrameAuthenticator).
 *
 * Body, neither flag (coalesced messages): one or more records
 *   u8 channel | u32 length | length bytes
 * Body, FRAGMENT set (one fragment of a message too large for one datagram; UDP only):
 *   u8 channel | u32 messageId | u16 fragmentIndex | u16 fragmentCount | u32 messageLength | chunk
 *   All fragments of a message carry the same channel, messageId, fragmentCount and messageLength.
 *   chunkSize = ceil(messageLength / fragmentCount); fragment i holds message bytes
 *   [i * chunkSize, min((i + 1) * chunkSize, messageLength)), never empty. Each fragment is a
 *   frame of its own, with its own seq.
 * Body, SESSION set: empty (UDP only). It only carries the session fields: a sender announces
 *   its incarnation at start, and a receiver answers a frame with a stale echo with one, so the
 *   sender learns the incarnation it must echo (peer-sessions.ts). Its seq is 0 and takes no
 *   place in the replay window: it delivers nothing, and it goes straight to the socket, ahead
 *   of queued frames, which it must not push below the window.
 *
 * The tag is truncated to 128 bits (RFC 2104 §5 and NIST SP 800-107 allow truncation to half the
 * hash output): a forgery succeeds with probability 2^-128 per attempt. It is computed without a
 * createHmac object per frame (mac.ts), bit for bit the same HMAC-SHA256. It authenticates, it does
 * not encrypt. Replays are dropped by the session fields, which the tag covers: a frame of an
 * older incarnation than the newest seen from its sender, or whose seq is below the sender's
 * replay window or already in it (replay-window.ts), is a "replay"; a frame whose echo is not the
 * receiver's current incarnation (recorded before the receiver restarted) is "stale-session", on
 * UDP and TCP alike (peer-sessions.ts says how each learns the incarnation to echo).
 *
 * Order of checks on receipt (openFrame), each failure a drop reason: the frame length (at least
 * header and tag), magic, version ("malformed") and clusterId ("cluster") -- the fixed header,
 * cheap, and all that is read before authentication; then the tag with crypto.timingSafeEqual,
 * under the signing key and, only on mismatch, the second key of a roll ("auth"); then flags
 * (no unknown bit, not both) and reserved ("malformed"), from and to ("unknown-peer"), that
 * incarnation >= 1, seq and echo are safe integers and that a session frame has no body
 * ("malformed"); then the session fields (peer-sessions.ts): an older incarnation than the newest
 * seen from `from` ("replay"), a newer one learned, the echo where required ("stale-session"),
 * and for all but session frames the replay window ("replay"), which is only ever updated here,
 * after the tag verified. A frame
 * admitted under the second key is counted. The body is checked after openFrame, by the
 * transport: lengths in it are checked against the bytes actually present and against
 * messageBytesMax before anything is allocated by them.
 */
import { timingSafeEqual } from "node:crypto";
import { assert } from "../core/errors.ts";
import { HmacSha256 } from "./mac.ts";
import { derivePeerKeys } from "./peer-keys.ts";
import { PeerSessions } from "./peer-sessions.ts";
import { type DropReason, peerIdsMax, type TransportOptions } from "./transport.ts";

export const FRAME_MAGIC = 0x5041;
export const FRAME_VERSION = 2;
export const FLAG_FRAGMENT = 0x01;
export const FLAG_SESSION = 0x02;
const FLAGS_KNOWN = FLAG_FRAGMENT | FLAG_SESSION;

export const OFFSET_MAGIC = 0;
export const OFFSET_VERSION = 2;
export const OFFSET_FLAGS = 3;
export const OFFSET_CLUSTER = 4;
export const OFFSET_FROM = 8;
export const OFFSET_TO = 9;
export const OFFSET_RESERVED = 10;
export const OFFSET_INCARNATION = 12;
export const OFFSET_SEQ = 20;
export const OFFSET_ECHO = 28;
export const HEADER_BYTES = 36;
export const TAG_BYTES = 16;
/** Header and tag: what every frame costs on top of its body. */
export const FRAME_OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES;
/** u8 channel | u32 length. */
export const RECORD_HEADER_BYTES = 5;
/** u8 channel | u32 messageId | u16 fragmentIndex | u16 fragmentCount | u32 messageLength. */
export const FRAGMENT_HEADER_BYTES = 13;
export const FRAGMENT_COUNT_MAX = 0xffff;
/** Smallest frame openFrame accepts: a session frame, header and tag. */
export const FRAME_BYTES_MIN = FRAME_OVERHEAD_BYTES;
/** Smallest frame that carries a message: header, one empty record, tag. */
export const RECORD_FRAME_BYTES_MIN = FRAME_OVERHEAD_BYTES + RECORD_HEADER_BYTES;
/** The TCP transport's u32 LE frame length prefix. */
export const LENGTH_PREFIX_BYTES = 4;
export const CHANNEL_MAX = 255;
const U32_RANGE = 2 ** 32;
/** A u64 field's high word must stay below this for the value to be a safe integer (< 2^53). */
const U64_SAFE_HIGH_LIMIT = 2 ** 21;

assert(HEADER_BYTES === OFFSET_ECHO + 8, "the header ends after the echo");

/**
 * Signs and verifies frames with HMAC-SHA256 under the derived frame keys (peer-keys.ts), computed
 * by HmacSha256 (mac.ts: two one-shot crypto.hash calls, no createHmac object per frame; the same
 * tag bytes, and the security argument is written there). Key 0 signs. verify() tries key 0 and
 * only on mismatch the next one, so outside a key roll a frame costs one HMAC, as before, and a
 * forged frame costs one HMAC per key. One per transport: not re-entrant, one thread.
 */
export class FrameAuthenticator {
  private readonly hmacs: readonly HmacSha256[];

  /** `keys`: the frame keys, the signing one first (derivePeerKeys(...).frames). */
  constructor(keys: readonly Uint8Array[]) {
    assert(keys.length >= 1, "a frame authenticator needs at least one key");
    for (const key of keys) assert(key.byteLength > 0, "HMAC key must not be empty");
    this.hmacs = keys.map((key) => new HmacSha256(key));
  }

  /** Full 32-byte HMAC-SHA256 of `bytes` under the signing key. */
  digest(bytes: Uint8Array): Buffer {
    return this.hmacs[0]!.digest(bytes);
  }

  /** Write the tag over frame[0, end-16) into the last TAG_BYTES of `frame`. */
  sign(frame: Uint8Array): void {
    assert(frame.byteLength >= FRAME_OVERHEAD_BYTES, "frame shorter than its overhead");
    const end = frame.byteLength - TAG_BYTES;
    const digest = this.digest(frame.subarray(0, end));
    frame.set(digest.subarray(0, TAG_BYTES), end);
  }

  /**
   * Which key made the frame's tag: 0 the signing key, 1 the second key of a roll; -1 none. Each
   * comparison is constant-time.
   */
  verify(frame: Uint8Array): number {
    if (frame.byteLength < FRAME_OVERHEAD_BYTES) return -1;
    const end = frame.byteLength - TAG_BYTES;
    const signed = frame.subarray(0, end);
    const tag = frame.subarray(end);
    for (let index = 0; index < this.hmacs.length; index++) {
      const digest = this.hmacs[index]!.digest(signed);
      if (timingSafeEqual(digest.subarray(0, TAG_BYTES), tag)) return index;
    }
    return -1;
  }
}

export interface FrameHeaderFields {
  readonly flags: number;
  readonly clusterId: number;
  readonly from: number;
  readonly to: number;
}

/**
 * Write the fixed header and the session fields: our incarnation, the next seq to `to` (taken
 * from `sessions`, so every frame sealed gets its own) and the echo of `to`'s incarnation.
 */
export function writeHeader(
  frame: Buffer,
  fields: FrameHeaderFields,
  sessions: PeerSessions,
): void {
  assert(frame.byteLength >= FRAME_OVERHEAD_BYTES, "frame shorter than its overhead");
  frame.writeUInt16LE(FRAME_MAGIC, OFFSET_MAGIC);
  frame.writeUInt8(FRAME_VERSION, OFFSET_VERSION);
  frame.writeUInt8(fields.flags, OFFSET_FLAGS);
  frame.writeUInt32LE(fields.clusterId, OFFSET_CLUSTER);
  frame.writeUInt8(fields.from, OFFSET_FROM);
  frame.writeUInt8(fields.to, OFFSET_TO);
  frame.writeUInt16LE(0, OFFSET_RESERVED);
  // A session frame takes no sequence number: it carries nothing to deliver, so replaying it
  // only repeats an incarnation, and sent ahead of queued frames it must not push them below the
  // receiver's replay window.
  const seq = (fields.flags & FLAG_SESSION) !== 0 ? 0 : sessions.takeSeq(fields.to);
  writeSessionFields(frame, sessions.incarnation, seq, sessions.echoFor(fields.to));
}

/** The three session fields (tests forge frames with it, then sign again). */
export function writeSessionFields(
  frame: Buffer,
  incarnation: number,
  seq: number,
  echo: number,
): void {
  writeU64(frame, OFFSET_INCARNATION, incarnation);
  writeU64(frame, OFFSET_SEQ, seq);
  writeU64(frame, OFFSET_ECHO, echo);
}

/** The echo a sealed frame (no length prefix) carries; -1 if it is not a safe integer. */
export function frameEcho(frame: Buffer): number {
  assert(frame.byteLength >= FRAME_OVERHEAD_BYTES, "frame shorter than its overhead");
  return readU64(frame, OFFSET_ECHO);
}

/**
 * Give a sealed frame of ours (no length prefix) another echo and sign it again. TCP: a frame
 * queued before the sender knew any run of the receiver (echo 0) gets the incarnation the
 * connection handshake showed; nothing else of it changes, its seq included.
 */
export function resealEcho(frame: Buffer, echo: number, authenticator: FrameAuthenticator): void {
  assert(frame.byteLength >= FRAME_OVERHEAD_BYTES, "frame shorter than its overhead");
  assert(echo >= 1, "an echo to reseal with is an incarnation");
  writeU64(frame, OFFSET_ECHO, echo);
  authenticator.sign(frame);
}

function writeU64(frame: Buffer, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, "u64 field is a safe integer");
  frame.writeUInt32LE(value % U32_RANGE, offset);
  frame.writeUInt32LE(Math.floor(value / U32_RANGE), offset + 4);
}

/** A u64 field as a number, or -1 when it is not a safe integer. No bigint on the hot path. */
function readU64(frame: Buffer, offset: number): number {
  const high = frame.readUInt32LE(offset + 4);
  if (high >= U64_SAFE_HIGH_LIMIT) return -1;
  return high * U32_RANGE + frame.readUInt32LE(offset);
}

/** What a transport frames with: keys, replay state, and what the receiving side checks. */
export interface FrameContext {
  readonly authenticator: FrameAuthenticator;
  readonly sessions: PeerSessions;
  readonly clusterId: number;
  /** This replica: frames addressed to another are dropped. */
  readonly id: number;
  /** Ids run 1..peerCount (peerIdsMax). */
  readonly peerCount: number;
  /**
   * Whether `from` is a peer now (the membership moves: a replica not yet added, or removed, is
   * none): a frame from another id is dropped "unknown-peer" before its session fields count.
   */
  readonly isPeer: (from: number) => boolean;
  readonly messageBytesMax: number;
  /** Called for each frame admitted under the second key of a roll (authenticator key 1). */
  readonly onSecondKey: (from: number) => void;
}

/**
 * The FrameContext of a transport: frame keys derived from options.secrets, sessions with
 * options.incarnation, frames under the second key counted in `counters` and reported to
 * options.onSecondKey. `echoRequired`: see PeerSessions (true on UDP and TCP; tests forge with
 * false).
 */
export function createFrameContext(
  options: TransportOptions,
  echoRequired: boolean,
  counters: { framesSecondKey: number },
  isPeer: (from: number) => boolean = () => true,
): FrameContext {
  const keys = derivePeerKeys(options.secrets, options.clusterId);
  return {
    authenticator: new FrameAuthenticator(keys.frames),
    sessions: new PeerSessions({
      id: options.id,
      peerCount: peerIdsMax(options),
      incarnation: options.incarnation,
      echoRequired,
    }),
    clusterId: options.clusterId,
    id: options.id,
    peerCount: peerIdsMax(options),
    isPeer,
    messageBytesMax: options.messageBytesMax,
    onSecondKey: (from) => {
      counters.framesSecondKey++;
      options.onSecondKey?.(from);
    },
  };
}

export interface OpenedFrame {
  readonly from: number;
  /** The sender's incarnation (its run): a newer one means it restarted. */
  readonly incarnation: number;
  readonly fragment: boolean;
  /** A session frame: admitted, nothing to deliver. */
  readonly session: boolean;
  /** View of the body: between the header and the tag. */
  readonly body: Buffer;
}

export type OpenResult =
  | { readonly ok: true; readonly frame: OpenedFrame }
  /**
   * `from`: the authenticated sender when the frame got past the tag and the from/to checks
   * (the UDP transport answers a "stale-session" with a session frame to it); 0 otherwise.
   * `session`: whether it was a session frame (only meaningful when `from` is not 0).
   */
  | {
      readonly ok: false;
      readonly reason: DropReason;
      readonly from: number;
      readonly session: boolean;
    };

const fail = (reason: DropReason): OpenResult => ({ ok: false, reason, from: 0, session: false });

/** Check and authenticate one frame (order of checks in the comment at the top). */
export function openFrame(frame: Buffer, context: FrameContext): OpenResult {
  if (frame.byteLength < FRAME_BYTES_MIN) return fail("malformed");
  if (frame.readUInt16LE(OFFSET_MAGIC) !== FRAME_MAGIC) return fail("malformed");
  if (frame.readUInt8(OFFSET_VERSION) !== FRAME_VERSION) return fail("malformed");
  if (frame.readUInt32LE(OFFSET_CLUSTER) !== context.clusterId) return fail("cluster");
  const keyIndex = context.authenticator.verify(frame);
  if (keyIndex < 0) return fail("auth");
  // Authenticated: from here on the fields were written by a holder of the key.
  const flags = frame.readUInt8(OFFSET_FLAGS);
  if ((flags & ~FLAGS_KNOWN) !== 0 || flags === FLAGS_KNOWN) return fail("malformed");
  if (frame.readUInt16LE(OFFSET_RESERVED) !== 0) return fail("malformed");
  const from = frame.readUInt8(OFFSET_FROM);
  if (from < 1 || from > context.peerCount || !context.isPeer(from)) return fail("unknown-peer");
  if (frame.readUInt8(OFFSET_TO) !== context.id) return fail("unknown-peer");
  const incarnation = readU64(frame, OFFSET_INCARNATION);
  const seq = readU64(frame, OFFSET_SEQ);
  const echo = readU64(frame, OFFSET_ECHO);
  if (incarnation < 1 || seq < 0 || echo < 0) return fail("malformed");
  const session = (flags & FLAG_SESSION) !== 0;
  if (session && frame.byteLength !== FRAME_OVERHEAD_BYTES) return fail("malformed");
  const admitted = session
    ? context.sessions.admitSession(from, incarnation, echo)
    : context.sessions.admit(from, incarnation, seq, echo);
  if (admitted !== "ok") return { ok: false, reason: admitted, from, session };
  if (keyIndex > 0) context.onSecondKey(from);
  const body = frame.subarray(HEADER_BYTES, frame.byteLength - TAG_BYTES);
  return {
    ok: true,
    frame: { from, incarnation, fragment: (flags & FLAG_FRAGMENT) !== 0, session, body },
  };
}

/**
 * Check every record of a coalesced body before any is delivered, so a frame is delivered whole
 * or not at all. Returns null when the body is well formed.
 */
export function checkRecords(body: Buffer, messageBytesMax: number): DropReason | null {
  if (body.byteLength === 0) return "malformed";
  let offset = 0;
  while (offset < body.byteLength) {
    if (body.byteLength - offset < RECORD_HEADER_BYTES) return "malformed";
    const length = body.readUInt32LE(offset + 1);
    if (length > messageBytesMax) return "oversize";
    offset += RECORD_HEADER_BYTES;
    if (length > body.byteLength - offset) return "malformed";
    offset += length;
  }
  assert(offset === body.byteLength);
  return null;
}

/** Deliver each record of a body that checkRecords accepted; payloads are views into `body`. */
export function forEachRecord(
  body: Buffer,
  deliver: (channel: number, payload: Buffer) => void,
): number {
  let offset = 0;
  let count = 0;
  while (offset < body.byteLength) {
    const channel = body.readUInt8(offset);
    const length = body.readUInt32LE(offset + 1);
    offset += RECORD_HEADER_BYTES;
    deliver(channel, body.subarray(offset, offset + length));
    offset += length;
    count++;
  }
  return count;
}

export interface FragmentHeader {
  readonly channel: number;
  readonly messageId: number;
  readonly fragmentIndex: number;
  readonly fragmentCount: number;
  readonly messageLength: number;
  /** This fragment's bytes of the message: a view into the frame. */
  readonly chunk: Buffer;
}

/** Bytes of each fragment but the last, as both sides compute it. */
export function chunkBytes(messageLength: number, fragmentCount: number): number {
  return Math.ceil(messageLength / fragmentCount);
}

/**
 * Parse and check a fragment body. Every length is checked against messageBytesMax and against
 * the fragment geometry (chunkBytes) before the reassembler allocates by messageLength.
 */
export function readFragment(body: Buffer, messageBytesMax: number): FragmentHeader | DropReason {
  if (body.byteLength <= FRAGMENT_HEADER_BYTES) return "malformed";
  const channel = body.readUInt8(0);
  const messageId = body.readUInt32LE(1);
  const fragmentIndex = body.readUInt16LE(5);
  const fragmentCount = body.readUInt16LE(7);
  const messageLength = body.readUInt32LE(9);
  if (messageLength > messageBytesMax) return "oversize";
  if (fragmentCount === 0 || fragmentIndex >= fragmentCount) return "malformed";
  if (messageLength < fragmentCount) return "malformed";
  const size = chunkBytes(messageLength, fragmentCount);
  const start = fragmentIndex * size;
  const expected = Math.min(size, messageLength - start);
  if (expected <= 0) return "malformed";
  const chunk = body.subarray(FRAGMENT_HEADER_BYTES);
  if (chunk.byteLength !== expected) return "malformed";
  return { channel, messageId, fragmentIndex, fragmentCount, messageLength, chunk };
}

/**
 * Builds one coalesced frame at a time in a reused staging buffer; seal() copies it out at its
 * exact size (small frames then come from Buffer's shared pool), stamps the session fields and
 * signs it. An optional length prefix (TCP) is written in front of the frame and is not covered by
 * the tag.
 */
export class FrameBuilder {
  private readonly staging: Buffer;
  /** Bytes used in staging. Invariant: prefixBytes + HEADER_BYTES <= used <= staging.length - TAG_BYTES. */
  private used: number;
  private recordCount = 0;
  /** Largest frame (header, body, tag) this builder produces, prefix excluded. */
  readonly frameBytesMax: number;
  private readonly prefixBytes: 0 | typeof LENGTH_PREFIX_BYTES;
  private readonly header: FrameHeaderFields;

  constructor(
    frameBytesMax: number,
    prefixBytes: 0 | typeof LENGTH_PREFIX_BYTES,
    header: FrameHeaderFields,
  ) {
    this.frameBytesMax = frameBytesMax;
    this.prefixBytes = prefixBytes;
    this.header = header;
    assert(frameBytesMax >= RECORD_FRAME_BYTES_MIN, "frameBytesMax below the smallest frame");
    assert(header.flags === 0, "a coalesced frame has no flags");
    this.staging = Buffer.allocUnsafe(prefixBytes + frameBytesMax);
    this.used = prefixBytes + HEADER_BYTES;
  }

  get empty(): boolean {
    return this.recordCount === 0;
  }

  /** Whether a payload of `length` bytes fits in the frame being built. */
  fits(length: number): boolean {
    return this.used + RECORD_HEADER_BYTES + length + TAG_BYTES <= this.staging.byteLength;
  }

  /** Bytes the sealed frame would have now, prefix included. */
  get pendingBytes(): number {
    return this.empty ? 0 : this.used + TAG_BYTES;
  }

  append(channel: number, payload: Uint8Array): void {
    assert(this.fits(payload.byteLength), "record does not fit the frame");
    this.staging.writeUInt8(channel, this.used);
    this.staging.writeUInt32LE(payload.byteLength, this.used + 1);
    this.staging.set(payload, this.used + RECORD_HEADER_BYTES);
    this.used += RECORD_HEADER_BYTES + payload.byteLength;
    this.recordCount++;
  }

  /** The signed frame (with its length prefix, if any); the builder starts a new frame. */
  seal(context: FrameContext): Buffer {
    assert(!this.empty, "sealing an empty frame");
    const total = this.used + TAG_BYTES;
    const out = Buffer.allocUnsafe(total);
    this.staging.copy(out, 0, 0, this.used);
    if (this.prefixBytes > 0) out.writeUInt32LE(total - this.prefixBytes, 0);
    const frame = out.subarray(this.prefixBytes);
    writeHeader(frame, this.header, context.sessions);
    context.authenticator.sign(frame);
    this.used = this.prefixBytes + HEADER_BYTES;
    this.recordCount = 0;
    return out;
  }
}

/** One signed frame holding a single record of any size (TCP messages too big to coalesce). */
export function sealSingle(
  context: FrameContext,
  header: FrameHeaderFields,
  prefixBytes: 0 | typeof LENGTH_PREFIX_BYTES,
  channel: number,
  payload: Uint8Array,
): Buffer {
  const frameBytes = FRAME_OVERHEAD_BYTES + RECORD_HEADER_BYTES + payload.byteLength;
  const out = Buffer.allocUnsafe(prefixBytes + frameBytes);
  if (prefixBytes > 0) out.writeUInt32LE(frameBytes, 0);
  const frame = out.subarray(prefixBytes);
  writeHeader(frame, header, context.sessions);
  frame.writeUInt8(channel, HEADER_BYTES);
  frame.writeUInt32LE(payload.byteLength, HEADER_BYTES + 1);
  frame.set(payload, HEADER_BYTES + RECORD_HEADER_BYTES);
  context.authenticator.sign(frame);
  return out;
}

/** A signed session frame (no body, no prefix: UDP only) to header.to. */
export function sealSession(context: FrameContext, header: FrameHeaderFields): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES);
  writeHeader(frame, { ...header, flags: FLAG_SESSION }, context.sessions);
  context.authenticator.sign(frame);
  return frame;
}

/** Split `payload` into signed fragment frames of at most `frameBytesMax` bytes each. */
export function sealFragments(
  context: FrameContext,
  header: FrameHeaderFields,
  frameBytesMax: number,
  channel: number,
  messageId: number,
  payload: Uint8Array,
): Buffer[] {
  const chunkCapacity = frameBytesMax - FRAME_OVERHEAD_BYTES - FRAGMENT_HEADER_BYTES;
  assert(chunkCapacity > 0, "frameBytesMax leaves no room for a fragment");
  const messageLength = payload.byteLength;
  const fragmentCount = Math.ceil(messageLength / chunkCapacity);
  assert(fragmentCount >= 1 && fragmentCount <= FRAGMENT_COUNT_MAX, "fragment count out of range");
  const size = chunkBytes(messageLength, fragmentCount);
  assert(size <= chunkCapacity);
  const fields: FrameHeaderFields = { ...header, flags: header.flags | FLAG_FRAGMENT };
  const frames: Buffer[] = [];
  for (let index = 0; index < fragmentCount; index++) {
    const chunk = payload.subarray(index * size, Math.min((index + 1) * size, messageLength));
    assert(chunk.byteLength > 0, "empty fragment");
    const frame = Buffer.allocUnsafe(
      FRAME_OVERHEAD_BYTES + FRAGMENT_HEADER_BYTES + chunk.byteLength,
    );
    writeHeader(frame, fields, context.sessions);
    frame.writeUInt8(channel, HEADER_BYTES);
    frame.writeUInt32LE(messageId, HEADER_BYTES + 1);
    frame.writeUInt16LE(index, HEADER_BYTES + 5);
    frame.writeUInt16LE(fragmentCount, HEADER_BYTES + 7);
    frame.writeUInt32LE(messageLength, HEADER_BYTES + 9);
    frame.set(chunk, HEADER_BYTES + FRAGMENT_HEADER_BYTES);
    context.authenticator.sign(frame);
    frames.push(frame);
  }
  return frames;
}

/**
 * The frames of the snapshot stream (snapshot-sender.ts, snapshot-receiver.ts): one TCP
 * connection between two replicas that carries one large core message (a snapshot) in chunks,
 * opened by the peer handshake (tcp-handshake.ts) and, with --peer-tls-*, inside mutual TLS.
 * Sans-I/O: this file seals and opens bytes; it touches no socket.
 *
 * After the handshake each direction is a sequence of length-prefixed frames, little-endian:
 *
 *   offset  size  field
 *   0       u32   length of the rest of the frame (header, body, tag), not counting itself
 *   4       u8    type: 1 OFFER, 2 RESUME, 3 CHUNK, 4 ACK, 5 DONE
 *   5       u8    version (STREAM_FRAME_VERSION)
 *   6       u16   reserved, must be 0
 *   8       u64   seq: this direction's frame number on this connection, from 0, no gaps
 *   16      ...   body
 *   end-16  16    tag: HMAC-SHA256(direction key, bytes [0, end-16)), first 16 bytes
 *
 *   OFFER   sender → receiver   u64 slot | u64 totalBytes | digest (32, SHA-256 of the streamed
 *                               bytes) | u16 headBytes | head (0..STREAM_HEAD_BYTES_MAX bytes)
 *   RESUME  receiver → sender   u64 offset: bytes of that transfer the receiver holds already
 *   CHUNK   sender → receiver   u64 offset | bytes (1..chunkBytesMax), offset = what was held
 *   ACK     receiver → sender   u64 offset: bytes held now
 *   DONE    receiver → sender   u8 outcome: 0 delivered; 1 digest mismatch (the receiver threw
 *                               its bytes away: start again from 0); 2 refused (too large to
 *                               hold, or the receiver could not store it); 3 not ready (whole
 *                               and checked, but the receiver cannot take it yet: its settings
 *                               agreement with the sender is not done; it keeps the bytes, and
 *                               the sender offers again after a backoff)
 *
 * What is moved is a core message's encoding, split in two: the head (its first bytes: the wire
 * header, with the ballot) travels in the OFFER, the rest (totalBytes, the snapshot) in CHUNKs
 * and is what the digest covers and what a transfer is identified by. So a sender that restarted
 * and leads again with a new ballot sends the same streamed bytes, and the receiver resumes them.
 *
 * Keys: each connection has two keys of its own, one per direction,
 *
 *   key = HKDF-SHA256(ikm = the initiator's "snapshots" key (peer-keys.ts), salt = SHA-256 of
 *         the handshake transcript ‖ the channel binding, info = STREAM_KEY_INFO_* , L = 32)
 *
 * The transcript holds both sides' fresh nonces, so no frame recorded on one connection (or in
 * the other direction) verifies on another; `seq` under the tag, required to be exactly the next
 * one, stops reordering, dropping or repeating frames within a connection. The tag is the
 * transport frame's (frame.ts: HMAC-SHA256 truncated to 128 bits); the "snapshots" key is
 * derived for this purpose alone, so no transport frame or handshake message verifies here.
 * Over plain TCP the stream is authenticated, not encrypted (as UDP frames are).
 *
 * Order of checks (StreamOpener.open): the length (by the reader: at least STREAM_FRAME_BYTES_MIN,
 * at most the reader's maximum), version, reserved ("malformed"); the tag ("auth"); seq
 * ("replay"); the type and the body's exact length for it ("malformed"); u64 fields safe integers
 * ("malformed"). Anything that fails closes the connection: the receiver keeps what it held and
 * the sender resumes on a new connection.
 */
import {
  createHash,
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  timingSafeEqual,
} from "node:crypto";
import { assert } from "../core/errors.ts";
import { LENGTH_PREFIX_BYTES } from "./frame.ts";
import { HmacSha256 } from "./mac.ts";

export const STREAM_FRAME_VERSION = 1;
export const StreamFrameType = { Offer: 1, Resume: 2, Chunk: 3, Ack: 4, Done: 5 } as const;
export type StreamFrameTypeValue = (typeof StreamFrameType)[keyof typeof StreamFrameType];

export const STREAM_OFFSET_TYPE = 0;
export const STREAM_OFFSET_VERSION = 1;
export const STREAM_OFFSET_RESERVED = 2;
export const STREAM_OFFSET_SEQ = 4;
/** Header after the length prefix: type, version, reserved, seq. */
export const STREAM_HEADER_BYTES = 12;
export const STREAM_TAG_BYTES = 16;
/** Smallest frame (length prefix excluded): header and tag, no body. */
export const STREAM_FRAME_BYTES_MIN = STREAM_HEADER_BYTES + STREAM_TAG_BYTES;
/** SHA-256 of a whole transfer. */
export const TRANSFER_DIGEST_BYTES = 32;
const U64_BYTES = 8;
/** Largest head an OFFER carries (the core's wire header is 12 bytes). */
export const STREAM_HEAD_BYTES_MAX = 64;
const HEAD_LENGTH_BYTES = 2;
/** An OFFER's body without its head. */
const OFFER_FIXED_BYTES = U64_BYTES + U64_BYTES + TRANSFER_DIGEST_BYTES + HEAD_LENGTH_BYTES;
/** Largest frame other than a CHUNK (an OFFER), length prefix excluded. */
export const STREAM_CONTROL_FRAME_BYTES_MAX =
  STREAM_FRAME_BYTES_MIN + OFFER_FIXED_BYTES + STREAM_HEAD_BYTES_MAX;
const U32_RANGE = 2 ** 32;
const U64_SAFE_HIGH_LIMIT = 2 ** 21;

export const STREAM_KEY_INFO_INITIATOR = "apus-smr/snapshot-stream/v1/initiator-to-responder";
export const STREAM_KEY_INFO_RESPONDER = "apus-smr/snapshot-stream/v1/responder-to-initiator";

export const DoneOutcome = { Delivered: 0, DigestMismatch: 1, Refused: 2, NotReady: 3 } as const;
export type DoneOutcomeValue = (typeof DoneOutcome)[keyof typeof DoneOutcome];

export type StreamFrame =
  | {
      readonly type: typeof StreamFrameType.Offer;
      readonly slot: number;
      readonly totalBytes: number;
      readonly digest: Buffer;
      /** The message's first bytes, not streamed (see the comment at the top). */
      readonly head: Buffer;
    }
  | { readonly type: typeof StreamFrameType.Resume; readonly offset: number }
  | { readonly type: typeof StreamFrameType.Chunk; readonly offset: number; readonly data: Buffer }
  | { readonly type: typeof StreamFrameType.Ack; readonly offset: number }
  | { readonly type: typeof StreamFrameType.Done; readonly outcome: DoneOutcomeValue };

/** Why a frame was refused; the connection is then closed. */
export type StreamFrameProblem = "malformed" | "auth" | "replay" | "oversize";

/** Frame length (prefix excluded) of a CHUNK carrying `dataBytes`. */
export function chunkFrameBytes(dataBytes: number): number {
  return STREAM_FRAME_BYTES_MIN + U64_BYTES + dataBytes;
}

/** The two keys of one connection (see the comment at the top). */
export interface StreamKeys {
  /** Signs what the initiator (the sender of the snapshot) writes. */
  readonly initiator: Uint8Array;
  /** Signs what the responder (the receiver) writes. */
  readonly responder: Uint8Array;
}

export function deriveStreamKeys(
  snapshotKey: Uint8Array,
  transcriptDigest: Uint8Array,
  binding: Uint8Array,
): StreamKeys {
  assert(snapshotKey.byteLength >= 16, "snapshot key too short");
  assert(transcriptDigest.byteLength === 32, "transcript digest is a SHA-256");
  const salt = Buffer.concat([transcriptDigest, binding]);
  const derive = (info: string) => new Uint8Array(hkdfSync("sha256", snapshotKey, salt, info, 32));
  return {
    initiator: derive(STREAM_KEY_INFO_INITIATOR),
    responder: derive(STREAM_KEY_INFO_RESPONDER),
  };
}

function writeU64(buffer: Buffer, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, "u64 field is a safe integer");
  buffer.writeUInt32LE(value % U32_RANGE, offset);
  buffer.writeUInt32LE(Math.floor(value / U32_RANGE), offset + 4);
}

/** A u64 as a number, or -1 when it is not a safe integer. */
function readU64(buffer: Buffer, offset: number): number {
  const high = buffer.readUInt32LE(offset + 4);
  if (high >= U64_SAFE_HIGH_LIMIT) return -1;
  return high * U32_RANGE + buffer.readUInt32LE(offset);
}

/** Seals the frames of one direction of one connection: numbers them and signs them. */
export class StreamSealer {
  private readonly hmac: HmacSha256;
  /** The next frame's seq. */
  private seq = 0;

  constructor(key: Uint8Array) {
    this.hmac = new HmacSha256(key);
  }

  offer(slot: number, totalBytes: number, digest: Uint8Array, head: Uint8Array): Buffer {
    assert(digest.byteLength === TRANSFER_DIGEST_BYTES, "digest size");
    assert(totalBytes >= 1, "a transfer has at least one byte");
    assert(head.byteLength <= STREAM_HEAD_BYTES_MAX, "head too long");
    const frame = this.frame(StreamFrameType.Offer, OFFER_FIXED_BYTES + head.byteLength);
    const body = LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES;
    writeU64(frame, body, slot);
    writeU64(frame, body + U64_BYTES, totalBytes);
    frame.set(digest, body + 2 * U64_BYTES);
    frame.writeUInt16LE(head.byteLength, body + 2 * U64_BYTES + TRANSFER_DIGEST_BYTES);
    frame.set(head, body + OFFER_FIXED_BYTES);
    return this.sign(frame);
  }

  resume(offset: number): Buffer {
    return this.offsetFrame(StreamFrameType.Resume, offset);
  }

  ack(offset: number): Buffer {
    return this.offsetFrame(StreamFrameType.Ack, offset);
  }

  /** A CHUNK at `offset` holding `data` (copied into the frame). */
  chunk(offset: number, data: Uint8Array): Buffer {
    assert(data.byteLength >= 1, "an empty chunk");
    const frame = this.frame(StreamFrameType.Chunk, U64_BYTES + data.byteLength);
    const body = LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES;
    writeU64(frame, body, offset);
    frame.set(data, body + U64_BYTES);
    return this.sign(frame);
  }

  done(outcome: DoneOutcomeValue): Buffer {
    const frame = this.frame(StreamFrameType.Done, 1);
    frame.writeUInt8(outcome, LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES);
    return this.sign(frame);
  }

  private offsetFrame(type: StreamFrameTypeValue, offset: number): Buffer {
    const frame = this.frame(type, U64_BYTES);
    writeU64(frame, LENGTH_PREFIX_BYTES + STREAM_HEADER_BYTES, offset);
    return this.sign(frame);
  }

  /** A frame with its prefix and header written, the body and tag left to fill. */
  private frame(type: StreamFrameTypeValue, bodyBytes: number): Buffer {
    const length = STREAM_FRAME_BYTES_MIN + bodyBytes;
    const frame = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + length);
    frame.writeUInt32LE(length, 0);
    const at = LENGTH_PREFIX_BYTES;
    frame.writeUInt8(type, at + STREAM_OFFSET_TYPE);
    frame.writeUInt8(STREAM_FRAME_VERSION, at + STREAM_OFFSET_VERSION);
    frame.writeUInt16LE(0, at + STREAM_OFFSET_RESERVED);
    writeU64(frame, at + STREAM_OFFSET_SEQ, this.seq++);
    return frame;
  }

  private sign(frame: Buffer): Buffer {
    const end = frame.byteLength - STREAM_TAG_BYTES;
    frame.set(this.hmac.digest(frame.subarray(0, end)).subarray(0, STREAM_TAG_BYTES), end);
    return frame;
  }
}

/** Opens the frames of one direction of one connection, in order. */
export class StreamOpener {
  private readonly key: KeyObject;
  private readonly chunkBytesMax: number;
  /** The seq the next frame must carry. */
  private seq = 0;
  private readonly prefix = Buffer.alloc(LENGTH_PREFIX_BYTES);

  /** `chunkBytesMax`: the largest CHUNK data accepted (0: none, the sender's side). */
  constructor(key: Uint8Array, chunkBytesMax: number) {
    assert(Number.isInteger(chunkBytesMax) && chunkBytesMax >= 0, "chunkBytesMax");
    this.key = createSecretKey(key);
    this.chunkBytesMax = chunkBytesMax;
  }

  /** Largest frame this side reads (prefix excluded): what its FrameReader is made with. */
  get frameBytesMax(): number {
    return Math.max(STREAM_CONTROL_FRAME_BYTES_MAX, chunkFrameBytes(this.chunkBytesMax));
  }

  /** Check one frame, without its length prefix (FrameReader's output). */
  open(frame: Buffer): StreamFrame | StreamFrameProblem {
    if (frame.byteLength < STREAM_FRAME_BYTES_MIN) return "malformed";
    if (frame.byteLength > this.frameBytesMax) return "oversize";
    if (frame.readUInt8(STREAM_OFFSET_VERSION) !== STREAM_FRAME_VERSION) return "malformed";
    if (frame.readUInt16LE(STREAM_OFFSET_RESERVED) !== 0) return "malformed";
    if (!this.verify(frame)) return "auth";
    if (readU64(frame, STREAM_OFFSET_SEQ) !== this.seq) return "replay";
    this.seq++;
    const body = frame.subarray(STREAM_HEADER_BYTES, frame.byteLength - STREAM_TAG_BYTES);
    return this.parse(frame.readUInt8(STREAM_OFFSET_TYPE), body);
  }

  private verify(frame: Buffer): boolean {
    // The tag covers the length prefix too; the reader stripped it, so it is fed first.
    const end = frame.byteLength - STREAM_TAG_BYTES;
    this.prefix.writeUInt32LE(frame.byteLength, 0);
    const digest = createHmac("sha256", this.key)
      .update(this.prefix)
      .update(frame.subarray(0, end))
      .digest();
    return timingSafeEqual(digest.subarray(0, STREAM_TAG_BYTES), frame.subarray(end));
  }

  private parse(type: number, body: Buffer): StreamFrame | StreamFrameProblem {
    switch (type) {
      case StreamFrameType.Offer: {
        if (body.byteLength < OFFER_FIXED_BYTES) return "malformed";
        const headBytes = body.readUInt16LE(2 * U64_BYTES + TRANSFER_DIGEST_BYTES);
        if (headBytes > STREAM_HEAD_BYTES_MAX) return "malformed";
        if (body.byteLength !== OFFER_FIXED_BYTES + headBytes) return "malformed";
        const slot = readU64(body, 0);
        const totalBytes = readU64(body, U64_BYTES);
        if (slot < 0 || totalBytes < 1) return "malformed";
        const digestAt = 2 * U64_BYTES;
        const digest = Buffer.from(body.subarray(digestAt, digestAt + TRANSFER_DIGEST_BYTES));
        const head = Buffer.from(body.subarray(OFFER_FIXED_BYTES));
        return { type, slot, totalBytes, digest, head };
      }
      case StreamFrameType.Resume:
      case StreamFrameType.Ack: {
        if (body.byteLength !== U64_BYTES) return "malformed";
        const offset = readU64(body, 0);
        if (offset < 0) return "malformed";
        return { type, offset };
      }
      case StreamFrameType.Chunk: {
        const dataBytes = body.byteLength - U64_BYTES;
        if (dataBytes < 1) return "malformed";
        if (dataBytes > this.chunkBytesMax) return "oversize";
        const offset = readU64(body, 0);
        if (offset < 0) return "malformed";
        return { type, offset, data: body.subarray(U64_BYTES) };
      }
      case StreamFrameType.Done: {
        if (body.byteLength !== 1) return "malformed";
        const outcome = body.readUInt8(0);
        if (outcome > DoneOutcome.NotReady) return "malformed";
        return { type, outcome: outcome as DoneOutcomeValue };
      }
      default:
        return "malformed";
    }
  }
}

/** Bytes hashed per event-loop turn: a 1 GiB transfer must not hold the consensus thread. */
export const DIGEST_PIECE_BYTES = 16 * 1024 * 1024;

/** SHA-256 of `pieces` in order, yielding to the event loop every DIGEST_PIECE_BYTES. */
export async function sha256Pieces(pieces: readonly Uint8Array[]): Promise<Buffer> {
  const hash = createHash("sha256");
  let since = 0;
  for (const piece of pieces) {
    for (let at = 0; at < piece.byteLength; at += DIGEST_PIECE_BYTES) {
      const part = piece.subarray(at, Math.min(at + DIGEST_PIECE_BYTES, piece.byteLength));
      hash.update(part);
      since += part.byteLength;
      if (since >= DIGEST_PIECE_BYTES) {
        since = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  return hash.digest();
}

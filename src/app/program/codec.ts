/**
 * Protocol codecs of transparent mode (`--protocol resp|memcache|raw`), sans-I/O.
 *
 * Transparent mode runs an unmodified server program on every replica and feeds each copy the
 * same requests in the same order over the replica's own loopback connections. A codec does two
 * jobs for one protocol:
 *
 * - `requests()` cuts a CLIENT byte stream into whole requests: each `CutRequest` becomes one log
 *   entry, and its `bytes` are exactly what is written to the copy (a canonical form, so every
 *   copy receives the same bytes however the client spelled the request);
 * - `replies()` cuts the COPY's reply stream on one loopback connection into whole replies, so the
 *   apply loop knows when a request has been answered and what to relay or hash.
 *
 * The order of calls on a loopback connection: `expect(request)` for every request, in the order
 * the requests are written, before (or as) its bytes are written; then `push()` each chunk read
 * from the copy and call `next()` until it returns `null`.
 *
 * Errors are values (`CodecError`, stable `code`), never thrown for bad input: a `final` error
 * ends the stream (answer the client with `clientReply`, then close); a non-final one refuses one
 * whole request that was cut and dropped (answer `clientReply` and read on). Asserts are for
 * programmer errors only.
 *
 * Ownership (zero copy where it can be): `push(chunk)` takes the chunk, and the caller must not
 * write into it afterwards (socket `data` chunks are never reused). Cut bytes may be views into
 * pushed chunks or into a buffer the cutter never writes again: they stay valid, but keep that
 * buffer alive, so copy one before keeping it for long.
 */

export type CodecName = "resp" | "memcache" | "raw";

/**
 * Stable error codes; callers match on these, never on the message.
 * - ERR_CODEC_SYNTAX: the bytes break the protocol's grammar.
 * - ERR_CODEC_LIMIT: a request or reply is above a named limit.
 * - ERR_CODEC_UNSUPPORTED: valid in the protocol, but not something this codec can frame (e.g.
 *   RESP3 streamed strings).
 * - ERR_CODEC_UNEXPECTED: the copy sent bytes when no reply was expected.
 */
export const CODEC_ERROR_CODES = [
  "ERR_CODEC_SYNTAX",
  "ERR_CODEC_LIMIT",
  "ERR_CODEC_UNSUPPORTED",
  "ERR_CODEC_UNEXPECTED",
] as const;

export type CodecErrorCode = (typeof CODEC_ERROR_CODES)[number];

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  /**
   * True: the stream is lost (framing is gone); the cutter returns this error from now on.
   * False (request cutters only): one whole request was cut and refused; read on.
   */
  readonly final: boolean;
  /** What to answer the client, in its protocol, before closing (final) or reading on; null for reply cutters. */
  readonly clientReply: Uint8Array | null;
  constructor(
    code: CodecErrorCode,
    message: string,
    final: boolean,
    clientReply: Uint8Array | null,
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.final = final;
    this.clientReply = clientReply;
  }
}

export function isCodecError(value: unknown): value is CodecError {
  return value instanceof CodecError;
}

/**
 * How the program's answer to a request is framed (what `ReplyCutter.expect` goes by).
 * resp: one RESP value per reply · raw: unframed · none: the program sends nothing (memcached
 * `quit`) · the rest are memcached's: line (one line), values (`VALUE` blocks then `END`), stats
 * (`STAT` lines then `END`, or one line), meta (a line, plus a data block after `VA <size>`),
 * fenced (a quiet request followed by an `mn` the codec added: everything up to `MN`).
 */
export type ReplyFrame = "resp" | "raw" | "none" | "line" | "values" | "stats" | "meta" | "fenced";

export interface CutRequest {
  /** The bytes to write to the copy: the request in the codec's canonical form. */
  readonly bytes: Uint8Array;
  /**
   * How many replies `ReplyCutter.next()` will yield for it: 1 for most (a memcached quiet
   * request too: it is fenced, and its reply may be empty); N for a RESP `SUBSCRIBE` of N
   * channels (one confirmation each); 0 when the program answers nothing (memcached `quit`) and
   * for raw, which cannot know (`ProgramCodec.framesReplies` is false).
   */
  readonly replies: number;
  /** How the replies are framed; pass the request to `ReplyCutter.expect`. */
  readonly replyFrame: ReplyFrame;
  /** The command name for the policy layer: lower-case for RESP; as sent for memcached (its names are case-sensitive); "raw" for raw. */
  readonly name: string;
  /** The arguments after the name: RESP's bulk arguments; memcached's line tokens (not the data block). Views into `bytes`. */
  readonly args?: readonly Buffer[];
}

export interface CutReply {
  /** The reply's bytes, as the copy sent them (memcached fenced replies: without the `MN` line). */
  readonly bytes: Uint8Array;
  /** A RESP3 `>` push frame: sent unasked (pub/sub messages) or as a SUBSCRIBE confirmation. */
  readonly push: boolean;
}

export interface RequestCutter {
  /** Adds client bytes. Takes ownership of `chunk` (file comment). */
  push(chunk: Uint8Array): void;
  /** The next whole request, a `CodecError`, or `null` while more bytes are needed. */
  next(): CutRequest | CodecError | null;
  /** Bytes held for a request not yet whole (the runtime may pause reading above a mark). */
  readonly bufferedBytes: number;
}

export interface ReplyCutter {
  /** Announces a request about to be written on this connection, in write order. */
  expect(request: CutRequest): void;
  /** Adds bytes from the copy. Takes ownership of `chunk`. */
  push(chunk: Uint8Array): void;
  /** The next whole reply, a final `CodecError` (the copy broke the protocol), or `null`. */
  next(): CutReply | CodecError | null;
  /** Bytes held for a reply not yet whole. */
  readonly bufferedBytes: number;
}

export interface ProgramCodec {
  readonly name: CodecName;
  /** False for raw: replies cannot be framed, so "answered" cannot be known. */
  readonly framesReplies: boolean;
  /** A request cutter for one client connection. */
  requests(): RequestCutter;
  /** A reply cutter for one loopback connection to the copy. */
  replies(): ReplyCutter;
}

const EMPTY = Buffer.alloc(0);
/** Smallest buffer allocated when unread bytes must be joined with a new chunk. */
const JOIN_BYTES_MIN = 16 * 1024;

/**
 * The unread bytes of a stream, for the cutters: `append` chunks, find and read at offsets
 * relative to the first unread byte, `take` a whole cut. Joining grows the buffer at least
 * twofold, so the bytes of one cut are copied O(1) times on average however they were split
 * (the cutters stay O(n) overall). Bytes handed out are never written again.
 */
export class ChunkBuffer {
  /** Bytes [start, end) of `buf` are unread. Invariant: 0 <= start <= end <= buf.length. */
  private buf: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  /** We allocated `buf`, so bytes [end, buf.length) (never handed out) may be written. */
  private owned = false;

  get length(): number {
    return this.end - this.start;
  }

  append(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    const data = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.start === this.end) {
      this.buf = data;
      this.start = 0;
      this.end = data.length;
      this.owned = false;
      return;
    }
    if (this.owned && this.buf.length - this.end >= data.length) {
      data.copy(this.buf, this.end);
      this.end += data.length;
      return;
    }
    // Never compact in place: views already handed out must keep their bytes.
    const unread = this.end - this.start;
    const joined = Buffer.allocUnsafe(Math.max(unread + data.length, unread * 2, JOIN_BYTES_MIN));
    this.buf.copy(joined, 0, this.start, this.end);
    data.copy(joined, unread);
    this.buf = joined;
    this.start = 0;
    this.end = unread + data.length;
    this.owned = true;
  }

  /** The byte at `offset` (< length). */
  at(offset: number): number {
    return this.buf[this.start + offset]!;
  }

  /** Offset of the first `byte` at or after `from`, or -1. */
  indexOf(byte: number, from: number): number {
    if (from >= this.length) return -1;
    const found = this.buf.subarray(0, this.end).indexOf(byte, this.start + from);
    return found === -1 ? -1 : found - this.start;
  }

  /** The decimal integer in [from, to) (offsets), as `parseDecimal`. */
  decimal(from: number, to: number, signed: boolean): number {
    return parseDecimal(this.buf, this.start + from, this.start + to, signed);
  }

  /** A view of [from, to) (offsets), valid for good. */
  view(from: number, to: number): Buffer {
    return this.buf.subarray(this.start + from, this.start + to);
  }

  /** The first `count` unread bytes as a view, consumed. */
  take(count: number): Buffer {
    const out = this.view(0, count);
    this.skip(count);
    return out;
  }

  /** Consumes `count` unread bytes. */
  skip(count: number): void {
    this.start += count;
    if (this.start === this.end) this.clear();
  }

  /** Forgets every unread byte (drop the reference so a consumed chunk can be collected). */
  clear(): void {
    this.buf = EMPTY;
    this.start = 0;
    this.end = 0;
    this.owned = false;
  }
}

/**
 * Parses a decimal integer from bytes [from, to) of `bytes`: optional '-' when `signed`, at least
 * one digit, at most 15 (every limit is below 2^53), nothing else. Returns NaN when invalid.
 */
export function parseDecimal(bytes: Uint8Array, from: number, to: number, signed: boolean): number {
  let i = from;
  const negative = signed && i < to && bytes[i] === 45; /* '-' */
  if (negative) i++;
  const digits = to - i;
  if (digits < 1 || digits > 15) return Number.NaN;
  let value = 0;
  for (; i < to; i++) {
    const c = bytes[i]!;
    if (c < 48 || c > 57) return Number.NaN;
    value = value * 10 + (c - 48);
  }
  return negative ? -value : value;
}

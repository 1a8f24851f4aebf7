/**
 * Incremental RESP2 request parser for one client connection (sans-I/O): `feed()` bytes as they
 * arrive, then call `next()` until it returns `null`. Multibulk (`*N\r\n$len\r\n…`) and inline
 * (`SET a "b c"\r\n`) requests, with Redis's error wording. After a protocol error the parser
 * keeps returning that error and ignores further input; the runtime replies with it and closes
 * the connection, as Redis does.
 *
 * Ownership (zero copy on the fast path): `feed(chunk)` takes the chunk; the caller must not
 * write into it afterwards (socket `data` chunks are never reused, so this holds for them). Each
 * returned argument is a view into a buffer the parser never writes again, so it stays valid, but
 * it keeps that whole buffer alive: copy an argument before keeping it for long.
 */
import { ApusError, assert } from "../core/errors.ts";

export interface RespParserOptions {
  /** Most arguments in one multibulk request. Default 1,048,576. */
  readonly argsMax: number;
  /** Largest single bulk argument, bytes. Default 8 MiB (Redis's proto-max-bulk-len is 512 MB). */
  readonly bulkBytesMax: number;
  /** Longest inline request line, bytes. Default 64 KiB (Redis's PROTO_INLINE_MAX_SIZE). */
  readonly inlineBytesMax: number;
  /**
   * Largest whole request (every header and bulk of one command, plus ARG_CHARGE_BYTES per
   * argument), bytes. Default 16 MiB.
   */
  readonly requestBytesMax: number;
}

/**
 * What each argument counts against requestBytesMax beyond its own bytes: an argument held while
 * its request is still arriving costs ~100 bytes of heap (a Buffer view) whatever its length, so
 * a request of a million empty arguments (6 MiB on the wire) held 113 MiB of heap (found by
 * fuzzing). With this charge the heap a request can hold stays within a small multiple of
 * requestBytesMax (~1.6x); a legitimate request needs 240,000 arguments to feel it.
 */
export const ARG_CHARGE_BYTES = 64;

export const RESP_PARSER_DEFAULTS: RespParserOptions = Object.freeze({
  argsMax: 1024 * 1024,
  bulkBytesMax: 8 * 1024 * 1024,
  inlineBytesMax: 64 * 1024,
  requestBytesMax: 16 * 1024 * 1024,
});

/** A protocol violation; `error` is the reply text without the leading `-`. */
export interface RespProtocolError {
  readonly error: string;
}

/** A complete request's arguments, a protocol error, or `null` while more bytes are needed. */
export type RespRequest = Buffer[] | RespProtocolError | null;

export function isProtocolError(request: RespRequest): request is RespProtocolError {
  return request !== null && !Array.isArray(request);
}

/** Bulks at least this big that have not fully arrived are copied straight into their own buffer. */
const BIG_ARG_BYTES = 32 * 1024;
/** Smallest buffer allocated when unread bytes must be joined with a new chunk. */
const JOIN_BYTES_MIN = 16 * 1024;
/** A length header has at most 15 digits: every limit is below 2^53, so more is always invalid. */
const LENGTH_DIGITS_MAX = 15;

// readLengthLine() results that are not lengths (every real length is > -(10^15)).
const INCOMPLETE = -(2 ** 60);
const INVALID = -(2 ** 61);

const KIND_NONE = 0;
const KIND_MULTIBULK = 1;
const KIND_INLINE = 2;

/** An empty inline line or a `*0`/`*-1` request: nothing to return, parse on. */
const SKIP = Symbol("skip");

const EMPTY = Buffer.alloc(0);

const ERR_MULTIBULK_LENGTH = "Protocol error: invalid multibulk length";
const ERR_BULK_LENGTH = "Protocol error: invalid bulk length";
const ERR_INLINE_TOO_BIG = "Protocol error: too big inline request";
const ERR_UNBALANCED_QUOTES = "Protocol error: unbalanced quotes in request";
const ERR_REQUEST_TOO_BIG = "Protocol error: too big request";

function validateOptions(options: RespParserOptions): void {
  for (const name of ["argsMax", "bulkBytesMax", "inlineBytesMax", "requestBytesMax"] as const) {
    const value = options[name];
    if (!Number.isSafeInteger(value) || value < 1 || value > 2 ** 40) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `invalid ${name}: ${value}; use an integer from 1 to ${2 ** 40}`,
      );
    }
  }
  if (options.bulkBytesMax > options.requestBytesMax) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `invalid bulkBytesMax: ${options.bulkBytesMax} is above requestBytesMax ${options.requestBytesMax}`,
    );
  }
}

export class RespParser {
  private options: RespParserOptions;

  /** Bytes [pos, end) of `buf` are unread. Invariant: 0 <= pos <= end <= buf.length. */
  private buf: Buffer = EMPTY;
  private pos = 0;
  private end = 0;
  /** We allocated `buf`, so bytes [end, buf.length) (never handed out) may be written. */
  private owned = false;
  /** Set once; from then on every `next()` returns it. */
  private failed: RespProtocolError | null = null;

  // The request being parsed.
  private kind = KIND_NONE;
  /** The `*N` header has been read. */
  private headerRead = false;
  /** Multibulk arguments not yet complete. */
  private argsLeft = 0;
  /** Declared length of the bulk being read, or -1 when a `$` header comes next. */
  private bulkLen = -1;
  private args: Buffer[] = [];
  /** Bytes of this request consumed or declared so far. Invariant: <= requestBytesMax. */
  private requestBytes = 0;
  /** Inline: bytes after `pos` already searched for LF. */
  private inlineScanned = 0;
  /** A big bulk (plus its CRLF) being filled straight from chunks; `bigArgFilled` bytes so far. */
  private bigArg: Buffer | null = null;
  private bigArgFilled = 0;

  constructor(options: Partial<RespParserOptions> = {}) {
    this.options = { ...RESP_PARSER_DEFAULTS, ...options };
    validateOptions(this.options);
  }

  /**
   * Replaces the limits for the requests parsed from now on: the runtime holds a client that has
   * not authenticated to small ones, and raises them once it has. Only between requests (right
   * after `next()` returned one), so that no request is checked against two sets of limits.
   */
  setLimits(limits: Partial<RespParserOptions>): void {
    assert(this.kind === KIND_NONE && this.bigArg === null, "setLimits inside a request");
    const options = { ...this.options, ...limits };
    validateOptions(options);
    this.options = options;
  }

  /** Bytes held for requests not yet complete (the runtime may pause reading above a mark). */
  get bufferedBytes(): number {
    return this.end - this.pos + (this.bigArg === null ? 0 : this.bigArgFilled);
  }

  /** Adds bytes from the connection. Takes ownership of `chunk` (see the file comment). */
  feed(chunk: Buffer): void {
    if (this.failed !== null || chunk.length === 0) return;
    let data = chunk;
    const bigArg = this.bigArg;
    if (bigArg !== null && this.bigArgFilled < bigArg.length) {
      const n = Math.min(bigArg.length - this.bigArgFilled, data.length);
      data.copy(bigArg, this.bigArgFilled, 0, n);
      this.bigArgFilled += n;
      if (n === data.length) return;
      data = data.subarray(n);
    }
    this.append(data);
  }

  /** The next complete request, a protocol error (final), or `null` when more bytes are needed. */
  next(): RespRequest {
    if (this.failed !== null) return this.failed;
    for (;;) {
      if (this.kind === KIND_NONE) {
        if (this.pos >= this.end) return null;
        this.kind = this.buf[this.pos] === 42 /* '*' */ ? KIND_MULTIBULK : KIND_INLINE;
      }
      const result = this.kind === KIND_MULTIBULK ? this.parseMultibulk() : this.parseInline();
      if (result !== SKIP) return result;
    }
  }

  private append(data: Buffer): void {
    if (this.pos === this.end) {
      this.buf = data;
      this.pos = 0;
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
    const unread = this.end - this.pos;
    const joined = Buffer.allocUnsafe(Math.max(unread + data.length, unread * 2, JOIN_BYTES_MIN));
    this.buf.copy(joined, 0, this.pos, this.end);
    data.copy(joined, unread);
    this.buf = joined;
    this.pos = 0;
    this.end = unread + data.length;
    this.owned = true;
  }

  private parseMultibulk(): RespRequest | typeof SKIP {
    if (!this.headerRead) {
      const count = this.readLengthLine();
      if (count === INCOMPLETE) return null;
      if (count === INVALID || count > this.options.argsMax) return this.fail(ERR_MULTIBULK_LENGTH);
      if (count <= 0) return this.finish(SKIP);
      this.argsLeft = count;
      this.headerRead = true;
    }
    while (this.argsLeft > 0) {
      const bigArg = this.bigArg;
      if (bigArg !== null) {
        if (this.bigArgFilled < bigArg.length) return null;
        this.completeArg(bigArg.subarray(0, bigArg.length - 2));
        this.bigArg = null;
        continue;
      }
      if (this.bulkLen < 0) {
        const error = this.readBulkHeader();
        if (error !== undefined) return error;
        if (this.bulkLen < 0) return null;
      }
      const bulkLen = this.bulkLen;
      if (this.end - this.pos < bulkLen + 2) {
        if (bulkLen >= BIG_ARG_BYTES) this.startBigArg(bulkLen);
        return null;
      }
      // Like Redis, the two bytes after the bulk are skipped unchecked (they should be CRLF).
      this.completeArg(this.buf.subarray(this.pos, this.pos + bulkLen));
      this.pos += bulkLen + 2;
    }
    const args = this.args;
    return this.finish(args);
  }

  /** Reads a `$len` line into `bulkLen`; leaves it -1 when incomplete; returns an error if bad. */
  private readBulkHeader(): RespProtocolError | undefined {
    if (this.pos >= this.end) return undefined;
    const first = this.buf[this.pos]!;
    if (first !== 36 /* '$' */) {
      return this.fail(`Protocol error: expected '$', got '${String.fromCharCode(first)}'`);
    }
    const len = this.readLengthLine();
    if (len === INCOMPLETE) return undefined;
    if (len === INVALID || len < 0 || len > this.options.bulkBytesMax) {
      return this.fail(ERR_BULK_LENGTH);
    }
    this.requestBytes += len + 2 + ARG_CHARGE_BYTES;
    if (this.requestBytes > this.options.requestBytesMax) return this.fail(ERR_REQUEST_TOO_BIG);
    this.bulkLen = len;
    return undefined;
  }

  private startBigArg(bulkLen: number): void {
    const bigArg = Buffer.allocUnsafe(bulkLen + 2);
    this.buf.copy(bigArg, 0, this.pos, this.end);
    this.bigArg = bigArg;
    this.bigArgFilled = this.end - this.pos;
    this.pos = this.end;
  }

  private completeArg(arg: Buffer): void {
    assert(this.argsLeft > 0);
    this.args.push(arg);
    this.argsLeft--;
    this.bulkLen = -1;
  }

  /**
   * Parses `*N\r\n` or `$N\r\n` at `pos` (Redis's string2ll rules: optional '-', no '+', no
   * leading zeros) and consumes it. Returns INCOMPLETE (nothing consumed) or INVALID.
   */
  private readLengthLine(): number {
    const buf = this.buf;
    const end = this.end;
    let i = this.pos + 1;
    const negative = i < end && buf[i] === 45; /* '-' */
    if (negative) i++;
    const digitsStart = i;
    let value = 0;
    while (i < end) {
      const c = buf[i]!;
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      i++;
      if (i - digitsStart > LENGTH_DIGITS_MAX) return INVALID;
    }
    if (i + 1 >= end) return INCOMPLETE; // need the CR and the byte after it
    if (buf[i] !== 13) return INVALID;
    const digits = i - digitsStart;
    if (digits === 0) return INVALID;
    if (digits > 1 && buf[digitsStart] === 48) return INVALID;
    if (negative && value === 0) return INVALID;
    this.requestBytes += i + 2 - this.pos;
    this.pos = i + 2;
    if (this.requestBytes > this.options.requestBytesMax) return INVALID;
    return negative ? -value : value;
  }

  private parseInline(): RespRequest | typeof SKIP {
    const start = this.pos;
    const from = start + this.inlineScanned;
    let newline = -1;
    if (from < this.end) {
      const found = this.buf.indexOf(10, from);
      if (found !== -1 && found < this.end) newline = found;
    }
    if (newline === -1) {
      this.inlineScanned = this.end - start;
      if (this.end - start > this.options.inlineBytesMax) return this.fail(ERR_INLINE_TOO_BIG);
      return null;
    }
    if (newline - start > this.options.inlineBytesMax) return this.fail(ERR_INLINE_TOO_BIG);
    let lineEnd = newline;
    if (lineEnd > start && this.buf[lineEnd - 1] === 13) lineEnd--;
    const args = splitInlineArgs(this.buf, start, lineEnd);
    this.pos = newline + 1;
    if (args === null) return this.fail(ERR_UNBALANCED_QUOTES);
    if (args.length > this.options.argsMax) return this.fail(ERR_MULTIBULK_LENGTH);
    return this.finish(args.length === 0 ? SKIP : args);
  }

  private finish<T>(result: T): T {
    this.kind = KIND_NONE;
    this.headerRead = false;
    this.argsLeft = 0;
    this.bulkLen = -1;
    this.args = [];
    this.requestBytes = 0;
    this.inlineScanned = 0;
    if (this.pos === this.end) {
      // Drop the reference so a consumed chunk can be collected.
      this.buf = EMPTY;
      this.pos = 0;
      this.end = 0;
      this.owned = false;
    }
    return result;
  }

  private fail(error: string): RespProtocolError {
    this.failed = { error };
    this.buf = EMPTY;
    this.pos = 0;
    this.end = 0;
    this.args = [];
    this.bigArg = null;
    return this.failed;
  }
}

function isSpace(c: number): boolean {
  // C isspace(): space, \t, \n, \v, \f, \r.
  return c === 32 || (c >= 9 && c <= 13);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7 }; // n r t b a

/**
 * Splits an inline line like Redis's sdssplitargs: whitespace separates arguments; "double
 * quotes" take \n \r \t \b \a \xHH and \<any> escapes; 'single quotes' take \' only; a closing
 * quote must be followed by whitespace or the end. Returns null for unbalanced quotes.
 */
export function splitInlineArgs(buf: Buffer, start: number, end: number): Buffer[] | null {
  const args: Buffer[] = [];
  let p = start;
  for (;;) {
    while (p < end && isSpace(buf[p]!)) p++;
    if (p >= end) return args;
    const tokenStart = p;
    /** Null while the token has no quotes: it is then the view [tokenStart, p). */
    let bytes: number[] | null = null;
    let quote = 0; // 0, or the open quote character
    for (;;) {
      if (quote === 0) {
        if (p >= end || isSpace(buf[p]!)) break;
        const c = buf[p]!;
        if (c === 34 || c === 39) {
          bytes ??= Array.from(buf.subarray(tokenStart, p));
          quote = c;
        } else if (bytes !== null) bytes.push(c);
        p++;
        continue;
      }
      if (p >= end) return null;
      bytes ??= [];
      const c = buf[p]!;
      if (c === quote) {
        if (p + 1 < end && !isSpace(buf[p + 1]!)) return null;
        p++;
        break;
      }
      if (c === 92 /* '\\' */ && p + 1 < end) {
        const next = buf[p + 1]!;
        if (quote === 39) {
          if (next === 39) {
            bytes.push(39);
            p += 2;
          } else {
            bytes.push(92);
            p++;
          }
          continue;
        }
        if (next === 120 /* 'x' */ && p + 3 < end) {
          const hi = hexValue(buf[p + 2]!);
          const lo = hexValue(buf[p + 3]!);
          if (hi >= 0 && lo >= 0) {
            bytes.push(hi * 16 + lo);
            p += 4;
            continue;
          }
        }
        bytes.push(ESCAPES[next] ?? next);
        p += 2;
        continue;
      }
      bytes.push(c);
      p++;
    }
    args.push(bytes === null ? buf.subarray(tokenStart, p) : Buffer.from(bytes));
  }
}

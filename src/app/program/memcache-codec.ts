/**
 * The memcached TEXT protocol codec of transparent mode (`--protocol memcache`), after
 * memcached's doc/protocol.txt.
 *
 * Requests: one command line (tokens split on spaces, as memcached does) and, for the storage
 * commands `set add replace append prepend cas` and the meta set `ms`, its data block. The copy
 * receives a canonical form: tokens joined by one space, CRLF line ends. Cut and forwarded:
 * storage commands, `get gets gat gats delete incr decr touch flush_all version verbosity stats
 * quit` and the meta commands `mg ms md ma mn me`.
 *
 * Quiet requests are fenced. A classic command ending in `noreply`, or a meta command with the
 * `q` flag, answers nothing on success but still answers errors (and `q` still answers `VA` for a
 * hit, `NS`/`EX`/`NF` for a failure), so how many replies it gets cannot be known in advance. The
 * codec appends a meta no-op `mn\r\n` to such a request (`replyFrame: "fenced"`): the reply is
 * everything the copy sends up to the `MN\r\n` line, without it, and often empty (relay nothing).
 * The apply loop therefore always knows when a request is answered, and never mistakes a late
 * error for the answer to the next request.
 *
 * Replies are framed by the request they answer (`expect(request)` in write order): `VALUE` blocks
 * then `END` for get/gets/gat/gats; `STAT` (or `ITEM`, `PREFIX`) lines then `END` for stats, or
 * one line (`RESET`, `OK`, `ERROR`); meta replies are one line plus a data block after
 * `VA <size>`; everything else is one line. `ERROR`, `CLIENT_ERROR …` and `SERVER_ERROR …` end any
 * reply.
 *
 * Refused (a non-final `CodecError` whose `clientReply` is memcached's own answer; read on):
 * unknown and unsupported command names (`ERROR`: memcached's answer to an unknown command; this
 * covers admin and streaming commands such as `watch`, `lru_crawler`, `slabs`, `shutdown`, and
 * upper-case names, which memcached does not know either), an empty line, a retrieval with no key,
 * a key longer than `keyBytesMax` or holding control bytes (`CLIENT_ERROR bad command line
 * format`; memcached drops earlier pipelined answers when a multi-get names such a key).
 * Final (the stream is lost; answer `clientReply`, close): a line above `lineBytesMax`, a storage
 * line memcached could not parse (its data block would then be read as commands), a data block
 * above `valueBytesMax` or not followed by CRLF.
 *
 * Limits: a multi-get line is bounded by `lineBytesMax` (memcached takes longer get lines); the
 * copy sees an extra `mn` after every quiet request; a memcached that closes the connection after
 * a severe SERVER_ERROR leaves its reply cutter waiting (the caller sees the close); `stats` is
 * cut and framed, but whether to forward it (its answer differs per copy) is the policy layer's.
 */
import { assert } from "../../core/errors.ts";
import {
  ChunkBuffer,
  CodecError,
  type CutReply,
  type CutRequest,
  type ProgramCodec,
  type ReplyCutter,
  type ReplyFrame,
  type RequestCutter,
} from "./codec.ts";

const MIB = 1024 * 1024;

/** Longest command line, bytes, CRLF excluded (memcached refuses longer non-get lines). */
export const MEMCACHE_LINE_BYTES_MAX = 2048;
/** Longest key, bytes (memcached's KEY_MAX_LENGTH). */
export const MEMCACHE_KEY_BYTES_MAX = 250;
/** Largest data block in a request or reply, bytes (memcached's default item size, `-I 1m`). */
export const MEMCACHE_VALUE_BYTES_MAX = MIB;
/** Longest line in a reply, bytes (`VALUE`, `STAT`, `ME` and meta lines with their flags). */
export const MEMCACHE_REPLY_LINE_BYTES_MAX = 8 * 1024;
/** Largest whole reply, bytes (a multi-get of many values, `stats items`). */
export const MEMCACHE_REPLY_BYTES_MAX = 256 * MIB;
/** Requests expected and not yet answered on one loopback connection. */
export const MEMCACHE_PENDING_REPLIES_MAX = 4096;

export interface MemcacheCodecLimits {
  readonly lineBytesMax: number;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  readonly replyLineBytesMax: number;
  readonly replyBytesMax: number;
  readonly pendingRepliesMax: number;
}

export const MEMCACHE_CODEC_LIMITS: MemcacheCodecLimits = Object.freeze({
  lineBytesMax: MEMCACHE_LINE_BYTES_MAX,
  keyBytesMax: MEMCACHE_KEY_BYTES_MAX,
  valueBytesMax: MEMCACHE_VALUE_BYTES_MAX,
  replyLineBytesMax: MEMCACHE_REPLY_LINE_BYTES_MAX,
  replyBytesMax: MEMCACHE_REPLY_BYTES_MAX,
  pendingRepliesMax: MEMCACHE_PENDING_REPLIES_MAX,
});

assert(MEMCACHE_KEY_BYTES_MAX < MEMCACHE_LINE_BYTES_MAX);
assert(MEMCACHE_LINE_BYTES_MAX <= MEMCACHE_REPLY_LINE_BYTES_MAX);
assert(MEMCACHE_VALUE_BYTES_MAX < MEMCACHE_REPLY_BYTES_MAX);

export function memcacheCodec(limits: Partial<MemcacheCodecLimits> = {}): ProgramCodec {
  const resolved: MemcacheCodecLimits = { ...MEMCACHE_CODEC_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    assert(Number.isSafeInteger(value) && value >= 1, `invalid ${name}: ${value}`);
  }
  assert(resolved.keyBytesMax < resolved.lineBytesMax, "keyBytesMax must be below lineBytesMax");
  return {
    name: "memcache",
    framesReplies: true,
    requests: () => new MemcacheRequestCutter(resolved),
    replies: () => new MemcacheReplyCutter(resolved),
  };
}

/** How a command's line is read. */
type Shape =
  | "storage" // <key> <flags> <exptime> <bytes> [noreply], then a data block
  | "cas" // <key> <flags> <exptime> <bytes> <cas unique> [noreply], then a data block
  | "retrieval" // <key>+
  | "touching-retrieval" // <exptime> <key>+
  | "keyed" // <key> …, [noreply] last
  | "plain" // …, [noreply] last
  | "fixed" // no noreply
  | "meta" // <key> <flag>*; q is quiet
  | "meta-set" // <key> <datalen> <flag>*, then a data block; q is quiet
  | "quit";

interface CommandSpec {
  readonly shape: Shape;
  /** The reply frame when the request is not quiet. */
  readonly frame: ReplyFrame;
}

const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ["set", { shape: "storage", frame: "line" }],
  ["add", { shape: "storage", frame: "line" }],
  ["replace", { shape: "storage", frame: "line" }],
  ["append", { shape: "storage", frame: "line" }],
  ["prepend", { shape: "storage", frame: "line" }],
  ["cas", { shape: "cas", frame: "line" }],
  ["get", { shape: "retrieval", frame: "values" }],
  ["gets", { shape: "retrieval", frame: "values" }],
  ["gat", { shape: "touching-retrieval", frame: "values" }],
  ["gats", { shape: "touching-retrieval", frame: "values" }],
  ["delete", { shape: "keyed", frame: "line" }],
  ["incr", { shape: "keyed", frame: "line" }],
  ["decr", { shape: "keyed", frame: "line" }],
  ["touch", { shape: "keyed", frame: "line" }],
  ["flush_all", { shape: "plain", frame: "line" }],
  ["verbosity", { shape: "plain", frame: "line" }],
  ["version", { shape: "fixed", frame: "line" }],
  ["stats", { shape: "fixed", frame: "stats" }],
  ["quit", { shape: "quit", frame: "none" }],
  ["mg", { shape: "meta", frame: "meta" }],
  ["md", { shape: "meta", frame: "meta" }],
  ["ma", { shape: "meta", frame: "meta" }],
  ["me", { shape: "meta", frame: "meta" }],
  ["ms", { shape: "meta-set", frame: "meta" }],
  ["mn", { shape: "fixed", frame: "line" }],
]);

const CRLF = Buffer.from("\r\n", "latin1");
const FENCE = Buffer.from("mn\r\n", "latin1");
const REPLY_ERROR = Buffer.from("ERROR\r\n", "latin1");
const REPLY_BAD_FORMAT = Buffer.from("CLIENT_ERROR bad command line format\r\n", "latin1");
const REPLY_BAD_CHUNK = Buffer.from("CLIENT_ERROR bad data chunk\r\n", "latin1");
const REPLY_LINE_TOO_LONG = Buffer.from("CLIENT_ERROR line too long\r\n", "latin1");
const REPLY_TOO_LARGE = Buffer.from("SERVER_ERROR object too large for cache\r\n", "latin1");

/** Answered frames kept at the front of the queue before it is compacted (amortized O(1)). */
const FRAMES_COMPACT_MIN = 64;

const UINT32_MAX = 2 ** 32 - 1;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const UINT64_MAX = 2n ** 64n - 1n;

/** A parsed line waiting for its data block. */
interface PendingData {
  /** The whole request: line, then room for the data block, CRLF and maybe the fence. */
  readonly bytes: Buffer;
  /** Offset in `bytes` where the data block goes. */
  readonly dataAt: number;
  readonly dataBytes: number;
  readonly quiet: boolean;
  readonly request: CutRequest;
}

class MemcacheRequestCutter implements RequestCutter {
  private readonly limits: MemcacheCodecLimits;
  private readonly input = new ChunkBuffer();
  /** Set once; from then on `next()` returns it. */
  private failed: CodecError | null = null;
  /** The line at the start of `input` holds no LF before this offset. */
  private lineFrom = 0;
  /** A storage line read, its data block not yet whole. */
  private pending: PendingData | null = null;

  constructor(limits: MemcacheCodecLimits) {
    this.limits = limits;
  }

  get bufferedBytes(): number {
    return this.input.length;
  }

  push(chunk: Uint8Array): void {
    if (this.failed === null) this.input.append(chunk);
  }

  next(): CutRequest | CodecError | null {
    if (this.failed !== null) return this.failed;
    if (this.pending !== null) return this.readData(this.pending);
    const input = this.input;
    const newline = input.indexOf(10, this.lineFrom);
    if (newline === -1) {
      this.lineFrom = input.length;
      if (input.length > this.limits.lineBytesMax + 1) return this.lineTooLong();
      return null;
    }
    const lineEnd = newline > 0 && input.at(newline - 1) === 13 ? newline - 1 : newline;
    if (lineEnd > this.limits.lineBytesMax) return this.lineTooLong();
    const tokens = splitTokens(input.view(0, lineEnd));
    input.skip(newline + 1);
    this.lineFrom = 0;
    return this.onLine(tokens);
  }

  private onLine(tokens: Buffer[]): CutRequest | CodecError | null {
    const nameToken = tokens.shift();
    if (nameToken === undefined)
      return refuse("ERR_CODEC_SYNTAX", "empty command line", REPLY_ERROR);
    const name = nameToken.toString("latin1");
    const spec = COMMANDS.get(name);
    if (spec === undefined) {
      return refuse(
        "ERR_CODEC_UNSUPPORTED",
        `command ${JSON.stringify(name)} is not supported`,
        REPLY_ERROR,
      );
    }
    const args = tokens;
    switch (spec.shape) {
      case "storage":
      case "cas":
        return this.onStorage(name, spec.shape, args);
      case "meta-set":
        return this.onMetaSet(name, args);
      case "retrieval":
      case "touching-retrieval": {
        const keysFrom = spec.shape === "retrieval" ? 0 : 1;
        if (args.length <= keysFrom) {
          return refuse("ERR_CODEC_SYNTAX", `${name} names no key`, REPLY_ERROR);
        }
        for (let i = keysFrom; i < args.length; i++) {
          const refusal = this.checkKey(args[i]!, false);
          if (refusal !== null) return refusal;
        }
        return encode(name, args, -1, false, spec.frame);
      }
      case "keyed":
      case "meta": {
        const key = args[0];
        if (key === undefined)
          return refuse("ERR_CODEC_SYNTAX", `${name} names no key`, REPLY_ERROR);
        const refusal = this.checkKey(key, false);
        if (refusal !== null) return refusal;
        const quiet =
          spec.shape === "meta" ? hasQuietFlag(name, args, 1) : endsWithNoreply(args, 1);
        return encode(name, args, -1, quiet, spec.frame);
      }
      case "plain":
        return encode(name, args, -1, endsWithNoreply(args, 0), spec.frame);
      case "fixed":
        return encode(name, args, -1, false, spec.frame);
      case "quit":
        return { ...encode(name, args, -1, false, "none"), replies: 0 };
    }
  }

  /** `set`…`prepend` and `cas`: checked as strictly as memcached, since the data block follows. */
  private onStorage(
    name: string,
    shape: "storage" | "cas",
    args: Buffer[],
  ): CodecError | CutRequest | null {
    const fields = shape === "cas" ? 5 : 4;
    const quiet = args.length === fields + 1 && isToken(args[fields]!, "noreply");
    if (args.length !== fields && !quiet)
      return this.badStorageLine(name, "wrong number of tokens");
    const keyRefusal = this.checkKey(args[0]!, true);
    if (keyRefusal !== null) return keyRefusal;
    const flags = parseBounded(args[1]!, 0, UINT32_MAX);
    const exptime = parseBounded(args[2]!, INT32_MIN, INT32_MAX);
    const dataBytes = parseBounded(args[3]!, 0, INT32_MAX - 2);
    if (Number.isNaN(flags) || Number.isNaN(exptime) || Number.isNaN(dataBytes)) {
      return this.badStorageLine(name, "bad flags, exptime or bytes");
    }
    if (shape === "cas" && !isUint64(args[4]!)) return this.badStorageLine(name, "bad cas unique");
    return this.startData(name, args, dataBytes, quiet, "line");
  }

  /** `ms <key> <datalen> <flag>*`: the data length must parse, since the data block follows. */
  private onMetaSet(name: string, args: Buffer[]): CodecError | CutRequest | null {
    if (args.length < 2) return this.badStorageLine(name, "no key or data length");
    const keyRefusal = this.checkKey(args[0]!, true);
    if (keyRefusal !== null) return keyRefusal;
    const dataBytes = parseBounded(args[1]!, 0, INT32_MAX - 2);
    if (Number.isNaN(dataBytes)) return this.badStorageLine(name, "bad data length");
    return this.startData(name, args, dataBytes, hasQuietFlag(name, args, 2), "meta");
  }

  private startData(
    name: string,
    args: Buffer[],
    dataBytes: number,
    quiet: boolean,
    frame: ReplyFrame,
  ): CodecError | CutRequest | null {
    if (dataBytes > this.limits.valueBytesMax) {
      return this.fail(
        "ERR_CODEC_LIMIT",
        `${name} data block of ${dataBytes} bytes is above valueBytesMax ${this.limits.valueBytesMax}`,
        REPLY_TOO_LARGE,
      );
    }
    const request = encode(name, args, dataBytes, quiet, frame);
    const dataAt = request.bytes.length - dataBytes - 2 - (quiet ? FENCE.length : 0);
    this.pending = { bytes: request.bytes as Buffer, dataAt, dataBytes, quiet, request };
    return this.readData(this.pending);
  }

  private readData(pending: PendingData): CutRequest | CodecError | null {
    const input = this.input;
    const blockBytes = pending.dataBytes + 2;
    if (input.length < blockBytes) return null;
    if (input.at(blockBytes - 2) !== 13 || input.at(blockBytes - 1) !== 10) {
      return this.fail("ERR_CODEC_SYNTAX", "data block not followed by CRLF", REPLY_BAD_CHUNK);
    }
    input.view(0, blockBytes).copy(pending.bytes, pending.dataAt);
    if (pending.quiet) FENCE.copy(pending.bytes, pending.dataAt + blockBytes);
    input.skip(blockBytes);
    this.pending = null;
    return pending.request;
  }

  /** Null when `key` is acceptable; else a refusal (final when a data block follows). */
  private checkKey(key: Buffer, dataFollows: boolean): CodecError | null {
    let reason: string | null = null;
    if (key.length > this.limits.keyBytesMax) {
      reason = `key of ${key.length} bytes is above keyBytesMax ${this.limits.keyBytesMax}`;
    } else if (key.some((c) => c < 33 || c === 127)) reason = "key holds a control byte";
    if (reason === null) return null;
    return dataFollows
      ? this.fail("ERR_CODEC_LIMIT", reason, REPLY_BAD_FORMAT)
      : refuse("ERR_CODEC_LIMIT", reason, REPLY_BAD_FORMAT);
  }

  private badStorageLine(name: string, reason: string): CodecError {
    return this.fail("ERR_CODEC_SYNTAX", `${name}: ${reason}`, REPLY_BAD_FORMAT);
  }

  private lineTooLong(): CodecError {
    return this.fail(
      "ERR_CODEC_LIMIT",
      `command line above lineBytesMax ${this.limits.lineBytesMax}`,
      REPLY_LINE_TOO_LONG,
    );
  }

  private fail(code: CodecError["code"], message: string, clientReply: Uint8Array): CodecError {
    this.failed = new CodecError(code, message, true, clientReply);
    this.input.clear();
    this.pending = null;
    return this.failed;
  }
}

function refuse(code: CodecError["code"], message: string, clientReply: Uint8Array): CodecError {
  return new CodecError(code, message, false, clientReply);
}

/** memcached's tokenizer: tokens separated by runs of spaces (only spaces). Views into `line`. */
function splitTokens(line: Buffer): Buffer[] {
  const tokens: Buffer[] = [];
  let start = -1;
  for (let i = 0; i <= line.length; i++) {
    const space = i === line.length || line[i] === 32;
    if (space && start >= 0) {
      tokens.push(line.subarray(start, i));
      start = -1;
    } else if (!space && start < 0) start = i;
  }
  return tokens;
}

function isToken(token: Buffer, text: string): boolean {
  return token.length === text.length && token.toString("latin1") === text;
}

/** The last token, at index `indexMin` or later, is `noreply` (memcached's set_noreply_maybe). */
function endsWithNoreply(args: readonly Buffer[], indexMin: number): boolean {
  const last = args[args.length - 1];
  return args.length > indexMin && last !== undefined && isToken(last, "noreply");
}

/** A meta command's flags (from `flagsFrom`) include `q` (`me` takes none). */
function hasQuietFlag(name: string, args: readonly Buffer[], flagsFrom: number): boolean {
  if (name === "me") return false;
  for (let i = flagsFrom; i < args.length; i++) if (args[i]![0] === 113 /* 'q' */) return true;
  return false;
}

/** A decimal integer in [min, max] (a '-' only when min < 0), or NaN. */
function parseBounded(token: Buffer, min: number, max: number): number {
  const negative = token[0] === 45;
  if (negative && min >= 0) return Number.NaN;
  const digits = token.subarray(negative ? 1 : 0);
  if (digits.length < 1 || digits.length > 15 || digits.some((c) => c < 48 || c > 57)) {
    return Number.NaN;
  }
  const value = Number(token.toString("latin1"));
  return value >= min && value <= max ? value : Number.NaN;
}

function isUint64(token: Buffer): boolean {
  if (token.length < 1 || token.length > 20 || token.some((c) => c < 48 || c > 57)) return false;
  return BigInt(token.toString("latin1")) <= UINT64_MAX;
}

/**
 * The canonical request: `name args…\r\n`, room for a data block and its CRLF when
 * `dataBytes >= 0` (filled in later), then the fence when quiet. Args are views into the bytes.
 */
function encode(
  name: string,
  tokens: readonly Buffer[],
  dataBytes: number,
  quiet: boolean,
  frame: ReplyFrame,
): CutRequest {
  let size = name.length + CRLF.length;
  for (const token of tokens) size += 1 + token.length;
  const lineBytes = size;
  if (dataBytes >= 0) size += dataBytes + CRLF.length;
  if (quiet) size += FENCE.length;
  const bytes = Buffer.allocUnsafe(size);
  let offset = bytes.write(name, 0, "latin1");
  const args: Buffer[] = [];
  for (const token of tokens) {
    bytes[offset++] = 32;
    token.copy(bytes, offset);
    args.push(bytes.subarray(offset, offset + token.length));
    offset += token.length;
  }
  offset += CRLF.copy(bytes, offset);
  assert(offset === lineBytes);
  if (quiet && dataBytes < 0) offset += FENCE.copy(bytes, offset);
  return { bytes, replies: 1, replyFrame: quiet ? "fenced" : frame, name, args };
}

class MemcacheReplyCutter implements ReplyCutter {
  private readonly limits: MemcacheCodecLimits;
  private readonly input = new ChunkBuffer();
  /** Set once; from then on `next()` returns it. */
  private failed: CodecError | null = null;
  /** Frames of the requests expected and not yet answered, oldest at `head`. */
  private frames: ReplyFrame[] = [];
  private head = 0;

  // The reply being cut; offsets from its first byte (the first unread byte of `input`).
  /** Bytes of the reply parsed so far. Invariant: scan <= input.length. */
  private scan = 0;
  /** The line at `scan` holds no LF before this offset. Invariant: scan <= lineFrom. */
  private lineFrom = 0;
  /** A data block (plus CRLF) expected at `scan`, or -1 when a line comes next. */
  private blockBytes = -1;
  /** A stats reply has begun its `STAT … END` list. */
  private statsList = false;

  constructor(limits: MemcacheCodecLimits) {
    this.limits = limits;
  }

  get bufferedBytes(): number {
    return this.input.length;
  }

  expect(request: CutRequest): void {
    const frame = request.replyFrame;
    assert(frame !== "resp" && frame !== "raw", `not a memcache request: ${frame}`);
    if (frame === "none") return;
    assert(request.replies === 1);
    assert(this.frames.length - this.head < this.limits.pendingRepliesMax, "pendingRepliesMax");
    this.frames.push(frame);
  }

  push(chunk: Uint8Array): void {
    if (this.failed === null) this.input.append(chunk);
  }

  next(): CutReply | CodecError | null {
    if (this.failed !== null) return this.failed;
    for (;;) {
      const frame = this.frames[this.head];
      if (frame === undefined) {
        if (this.input.length === 0) return null;
        return this.fail("ERR_CODEC_UNEXPECTED", "the copy sent bytes when no reply was expected");
      }
      if (this.blockBytes >= 0) {
        const done = this.readBlock();
        if (done !== true) return done;
        if (frame === "meta") return this.emit(this.scan);
        continue;
      }
      const line = this.readLine();
      if (line === null || line instanceof CodecError) return line;
      const reply = this.onLine(frame, line);
      if (reply !== null) return reply;
    }
  }

  /** What the line [from, to) means in `frame`: a whole reply, an error, or null to read on. */
  private onLine(
    frame: ReplyFrame,
    [from, to]: readonly [number, number],
  ): CutReply | CodecError | null {
    switch (frame) {
      case "line":
        return this.emit(this.scan);
      case "values":
        if (this.lineIs(from, to, "END") || this.isErrorLine(from, to)) return this.emit(this.scan);
        if (this.lineStarts(from, to, "VALUE ")) return this.startBlock(from, to, 3);
        return this.fail("ERR_CODEC_SYNTAX", "expected VALUE or END in a retrieval reply");
      case "stats":
        if (!this.statsList) {
          this.statsList = ["STAT ", "ITEM ", "PREFIX "].some((p) => this.lineStarts(from, to, p));
          return this.statsList ? null : this.emit(this.scan);
        }
        if (this.lineIs(from, to, "END") || this.isErrorLine(from, to)) return this.emit(this.scan);
        return null;
      case "meta":
        if (this.lineStarts(from, to, "VA ")) return this.startBlock(from, to, 1);
        return this.emit(this.scan);
      case "fenced":
        if (this.lineIs(from, to, "MN")) return this.emit(from);
        if (this.lineStarts(from, to, "VA ")) return this.startBlock(from, to, 1);
        return null;
      default:
        assert(false, `unexpected frame ${frame}`);
    }
  }

  /** The next line: [from, to) with CRLF after `to`, `scan` past it; null or an error. */
  private readLine(): readonly [number, number] | null | CodecError {
    const input = this.input;
    const newline = input.indexOf(10, this.lineFrom);
    if (newline === -1) {
      this.lineFrom = input.length;
      if (input.length - this.scan > this.limits.replyLineBytesMax) return this.lineTooLong();
      return null;
    }
    if (newline - this.scan > this.limits.replyLineBytesMax) return this.lineTooLong();
    if (newline === this.scan || input.at(newline - 1) !== 13) {
      return this.fail("ERR_CODEC_SYNTAX", "reply line not ended by CRLF");
    }
    const from = this.scan;
    this.scan = newline + 1;
    this.lineFrom = this.scan;
    if (this.scan > this.limits.replyBytesMax) return this.tooBig();
    return [from, newline - 1];
  }

  /** A `VALUE`/`VA` line: its `index`th token (from 0, after the code) is the data block size. */
  private startBlock(from: number, to: number, index: number): CodecError | null {
    const size = this.tokenDecimal(from, to, index);
    if (Number.isNaN(size)) return this.fail("ERR_CODEC_SYNTAX", "bad data size in a reply line");
    if (size > this.limits.valueBytesMax) {
      return this.fail(
        "ERR_CODEC_LIMIT",
        `reply data block above valueBytesMax ${this.limits.valueBytesMax}`,
      );
    }
    if (this.scan + size + 2 > this.limits.replyBytesMax) return this.tooBig();
    this.blockBytes = size + 2;
    return null;
  }

  private readBlock(): true | null | CodecError {
    const end = this.scan + this.blockBytes;
    if (this.input.length < end) return null;
    if (this.input.at(end - 2) !== 13 || this.input.at(end - 1) !== 10) {
      return this.fail("ERR_CODEC_SYNTAX", "reply data block not followed by CRLF");
    }
    this.scan = end;
    this.lineFrom = end;
    this.blockBytes = -1;
    return true;
  }

  /** The decimal value of the space-separated token `index` of line [from, to) (the code is 0). */
  private tokenDecimal(from: number, to: number, index: number): number {
    let start = from;
    for (let seen = 0; seen < index; seen++) {
      while (start < to && this.input.at(start) !== 32) start++;
      while (start < to && this.input.at(start) === 32) start++;
    }
    let end = start;
    while (end < to && this.input.at(end) !== 32) end++;
    return this.input.decimal(start, end, false);
  }

  private lineIs(from: number, to: number, text: string): boolean {
    return to - from === text.length && this.lineStarts(from, to, text);
  }

  private lineStarts(from: number, to: number, prefix: string): boolean {
    if (to - from < prefix.length) return false;
    for (let i = 0; i < prefix.length; i++) {
      if (this.input.at(from + i) !== prefix.charCodeAt(i)) return false;
    }
    return true;
  }

  /** `ERROR`, `ERROR <message>`, `CLIENT_ERROR <message>`, `SERVER_ERROR <message>`. */
  private isErrorLine(from: number, to: number): boolean {
    return (
      this.lineIs(from, to, "ERROR") ||
      this.lineStarts(from, to, "ERROR ") ||
      this.lineStarts(from, to, "CLIENT_ERROR") ||
      this.lineStarts(from, to, "SERVER_ERROR")
    );
  }

  /** Cuts the reply: bytes [0, bytesEnd) are relayed, [0, scan) are consumed. */
  private emit(bytesEnd: number): CutReply {
    const bytes = this.input.view(0, bytesEnd);
    this.input.skip(this.scan);
    this.scan = 0;
    this.lineFrom = 0;
    this.blockBytes = -1;
    this.statsList = false;
    this.head++;
    if (this.head === this.frames.length) {
      this.frames = [];
      this.head = 0;
    } else if (this.head >= FRAMES_COMPACT_MIN && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    return { bytes, push: false };
  }

  private lineTooLong(): CodecError {
    return this.fail(
      "ERR_CODEC_LIMIT",
      `reply line above replyLineBytesMax ${this.limits.replyLineBytesMax}`,
    );
  }

  private tooBig(): CodecError {
    return this.fail("ERR_CODEC_LIMIT", `reply above replyBytesMax ${this.limits.replyBytesMax}`);
  }

  private fail(code: CodecError["code"], message: string): CodecError {
    this.failed = new CodecError(code, message, true, null);
    this.input.clear();
    return this.failed;
  }
}

/** Commands whose first argument is their one key. */
const ONE_KEY = new Set([
  "set",
  "add",
  "replace",
  "append",
  "prepend",
  "cas",
  "delete",
  "incr",
  "decr",
  "touch",
  "mg",
  "ms",
  "md",
  "ma",
]);

/**
 * Stands for memcached's one CAS counter: every write takes the next CAS unique, so two writes on
 * different keys still do not commute (their order decides which key gets which unique, and
 * `gets` shows it). Every write names it as a key; reads do not.
 */
const CAS_COUNTER = Buffer.from("\0cas-counter", "latin1");

/**
 * The keys a memcached request touches, for sending commuting requests to a copy together: reads
 * (get, gets) their keys; writes their key and the CAS counter; "all" for the rest (flush_all,
 * stats, verbosity, mn, …: they commute with nothing).
 */
export function memcacheKeys(request: CutRequest): readonly Buffer[] | "all" {
  const args = request.args ?? [];
  if (request.name === "get" || request.name === "gets") return args.length > 0 ? args : "all";
  if (ONE_KEY.has(request.name)) return args.length > 0 ? [args[0]!, CAS_COUNTER] : "all";
  if (request.name === "gat" || request.name === "gats")
    return args.length > 1 ? [...args.slice(1), CAS_COUNTER] : "all";
  return "all";
}

/** Meta-get flags whose answer is the copy's own: remaining TTL (t), last access (l), hit before (h). */
const COPY_SPECIFIC_MG_FLAGS = new Set(["t", "l", "h"]);

/**
 * Whether a memcached request's reply is the copy's own (its pid, uptime, clock, access history)
 * though its state is not: left out of output checking, like Redis's INFO.
 */
export function memcacheDivergentOutput(request: CutRequest): boolean {
  if (request.name === "stats" || request.name === "me") return true;
  if (request.name !== "mg") return false;
  const flags = (request.args ?? []).slice(1);
  return flags.some((flag) => COPY_SPECIFIC_MG_FLAGS.has(flag.toString("latin1").charAt(0)));
}

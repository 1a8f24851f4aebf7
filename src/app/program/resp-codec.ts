/**
 * The RESP codec of transparent mode (`--protocol resp`, redis-server and its kin).
 *
 * Requests: the client parser `src/app/resp-parser.ts` (multibulk and inline, Redis's limits and
 * error wording) cuts ONE command per request, re-encoded as a RESP multibulk, so an inline
 * command reaches every copy in the same canonical form. A protocol error is final, as in Redis:
 * answer `-ERR Protocol error: …` and close.
 *
 * Replies: a streaming RESP2 and RESP3 framer. Types `+ - : _ , # (` are one line; `$ ! =` are a
 * length line and a body; `* ~ >` are N values, `%` 2N; `|` (attributes) is 2N values that belong
 * to the value after them, so an attribute and the reply it annotates are cut as one. Nested
 * aggregates, null bulk `$-1` and null array `*-1` are framed. The parse state (a stack of values
 * left per open aggregate, the offset reached, where the line search stopped, the body awaited)
 * survives between pushes, so a reply split anywhere costs no rescan: O(n) overall.
 *
 * Limits (what this codec cannot do):
 * - RESP3 streamed strings and aggregates (`$?`, `*?`, `;`, `.`) are refused (Redis never sends
 *   them): a final ERR_CODEC_UNSUPPORTED.
 * - `replies` counts one reply per command, except the (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE family,
 *   which confirms each channel named; UNSUBSCRIBE without channels answers once per current
 *   subscription (or once when there are none): `replies` says 1, the caller must track
 *   subscriptions. Commands that change how many replies follow (MONITOR, CLIENT REPLY OFF|SKIP)
 *   or that block (BLPOP, WAIT, XREAD BLOCK) must be refused or handled by the policy layer.
 * - `push` is true only for RESP3 `>` frames: pub/sub messages, tracking invalidations, and (in
 *   RESP3) the SUBSCRIBE family's confirmations, which do answer their request: `isRespAnswer`
 *   tells which. In RESP2 a subscribed connection receives messages as ordinary arrays;
 *   `respPushKind` reads their first element (`message`, …) but only the caller knows whether
 *   the connection is subscribed.
 */
import { assert } from "../../core/errors.ts";
import { errorReply } from "../resp.ts";
import {
  isProtocolError,
  RESP_PARSER_DEFAULTS,
  RespParser,
  type RespParserOptions,
} from "../resp-parser.ts";
import {
  ChunkBuffer,
  CodecError,
  type CutReply,
  type CutRequest,
  type ProgramCodec,
  parseDecimal,
  type ReplyCutter,
  type RequestCutter,
} from "./codec.ts";

/** Largest reply, bytes, attributes and every nested value included (Redis's proto-max-bulk-len). */
export const RESP_REPLY_BYTES_MAX = 512 * 1024 * 1024;
/** Longest line in a reply (simple string, error, number, length header), bytes. */
export const RESP_REPLY_LINE_BYTES_MAX = 1024 * 1024;
/** Deepest nesting of aggregates in a reply (Redis's own replies nest a few levels). */
export const RESP_REPLY_DEPTH_MAX = 1024;

export interface RespCodecLimits {
  /** Client request limits, as for the embedded server (`RESP_PARSER_DEFAULTS`). */
  readonly request: RespParserOptions;
  readonly replyBytesMax: number;
  readonly replyLineBytesMax: number;
  readonly replyDepthMax: number;
}

export const RESP_CODEC_LIMITS: RespCodecLimits = Object.freeze({
  request: RESP_PARSER_DEFAULTS,
  replyBytesMax: RESP_REPLY_BYTES_MAX,
  replyLineBytesMax: RESP_REPLY_LINE_BYTES_MAX,
  replyDepthMax: RESP_REPLY_DEPTH_MAX,
});

assert(RESP_REPLY_LINE_BYTES_MAX <= RESP_REPLY_BYTES_MAX);

export function respCodec(limits: Partial<RespCodecLimits> = {}): ProgramCodec {
  const resolved: RespCodecLimits = { ...RESP_CODEC_LIMITS, ...limits };
  for (const name of ["replyBytesMax", "replyLineBytesMax", "replyDepthMax"] as const) {
    const value = resolved[name];
    assert(Number.isSafeInteger(value) && value >= 1, `invalid ${name}: ${value}`);
  }
  return {
    name: "resp",
    framesReplies: true,
    requests: () => new RespRequestCutter(resolved.request),
    replies: () => new RespReplyCutter(resolved),
  };
}

/** Commands that answer once per channel (or pattern) they name. */
const PER_CHANNEL_COMMANDS = new Set([
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
]);

class RespRequestCutter implements RequestCutter {
  private readonly parser: RespParser;
  /** Set once; from then on `next()` returns it. */
  private failed: CodecError | null = null;

  constructor(options: RespParserOptions) {
    this.parser = new RespParser(options);
  }

  get bufferedBytes(): number {
    return this.parser.bufferedBytes;
  }

  push(chunk: Uint8Array): void {
    this.parser.feed(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
  }

  next(): CutRequest | CodecError | null {
    if (this.failed !== null) return this.failed;
    const parsed = this.parser.next();
    if (parsed === null) return null;
    if (isProtocolError(parsed)) {
      const code = parsed.error.includes("too big") ? "ERR_CODEC_LIMIT" : "ERR_CODEC_SYNTAX";
      this.failed = new CodecError(code, parsed.error, true, errorReply(`ERR ${parsed.error}`));
      return this.failed;
    }
    return respRequest(parsed);
  }
}

/** `args` (name first) as one multibulk; the returned args are views into its bytes. */
export function respRequest(parsed: readonly Buffer[]): CutRequest {
  assert(parsed.length >= 1);
  let size = `*${parsed.length}\r\n`.length;
  for (const arg of parsed) size += `$${arg.length}\r\n`.length + arg.length + 2;
  const bytes = Buffer.allocUnsafe(size);
  let offset = bytes.write(`*${parsed.length}\r\n`, 0, "latin1");
  const args: Buffer[] = [];
  for (const arg of parsed) {
    offset += bytes.write(`$${arg.length}\r\n`, offset, "latin1");
    arg.copy(bytes, offset);
    args.push(bytes.subarray(offset, offset + arg.length));
    offset += arg.length;
    bytes[offset++] = 13;
    bytes[offset++] = 10;
  }
  assert(offset === size);
  const name = args.shift()!.toString("latin1").toLowerCase();
  const replies = PER_CHANNEL_COMMANDS.has(name) && args.length > 0 ? args.length : 1;
  return { bytes, replies, replyFrame: "resp", name, args };
}

// RESP type bytes.
const T_SIMPLE = 43; // +
const T_ERROR = 45; // -
const T_INTEGER = 58; // :
const T_NULL = 95; // _
const T_DOUBLE = 44; // ,
const T_BOOLEAN = 35; // #
const T_BIG_NUMBER = 40; // (
const T_BULK = 36; // $
const T_BLOB_ERROR = 33; // !
const T_VERBATIM = 61; // =
const T_ARRAY = 42; // *
const T_MAP = 37; // %
const T_SET = 126; // ~
const T_PUSH = 62; // >
const T_ATTRIBUTE = 124; // |
const T_CHUNK = 59; // ; (streamed string part)
const T_END = 46; // . (streamed aggregate end)
const QUESTION = 63; // ?

class RespReplyCutter implements ReplyCutter {
  private readonly limits: RespCodecLimits;
  private readonly input = new ChunkBuffer();
  /** Set once; from then on `next()` returns it. */
  private failed: CodecError | null = null;

  // The reply being cut; offsets are from its first byte (the first unread byte of `input`).
  /** Bytes of the reply parsed so far. Invariant: scan <= input.length, scan <= replyBytesMax. */
  private scan = 0;
  /** The line at `scan` holds no LF before this offset. Invariant: scan <= lineFrom. */
  private lineFrom = 0;
  /** Length of the bulk body (plus CRLF) expected at `scan`, or -1 when a line comes next. */
  private bodyBytes = -1;
  /** Values still to read in each open aggregate, outermost first; `depth` of them are open. */
  private readonly left: number[] = [];
  /** Whether each open aggregate is an attribute (its end completes no value). */
  private readonly attribute: boolean[] = [];
  private depth = 0;
  /** The outermost value (not an attribute) is a `>` push. */
  private isPush = false;
  /** The outermost value is whole (set by `completeValue()`): cut the reply. */
  private complete = false;

  constructor(limits: RespCodecLimits) {
    this.limits = limits;
  }

  get bufferedBytes(): number {
    return this.input.length;
  }

  expect(request: CutRequest): void {
    assert(request.replyFrame === "resp");
  }

  push(chunk: Uint8Array): void {
    if (this.failed === null) this.input.append(chunk);
  }

  next(): CutReply | CodecError | null {
    if (this.failed !== null) return this.failed;
    for (;;) {
      if (this.bodyBytes >= 0) {
        const done = this.readBody();
        if (done !== true) return done;
      } else {
        const done = this.readLine();
        if (done !== true) return done;
      }
      // Guards the declared body too, so a huge length fails before its bytes arrive.
      if (this.scan + Math.max(this.bodyBytes, 0) > this.limits.replyBytesMax) {
        return this.fail(
          "ERR_CODEC_LIMIT",
          `reply above replyBytesMax ${this.limits.replyBytesMax}`,
        );
      }
      if (this.complete) return this.emit();
    }
  }

  /** The bulk body at `scan`: true when consumed, else null (incomplete) or an error. */
  private readBody(): true | null | CodecError {
    const end = this.scan + this.bodyBytes;
    if (this.input.length < end) return null;
    if (this.input.at(end - 2) !== 13 || this.input.at(end - 1) !== 10) {
      return this.fail("ERR_CODEC_SYNTAX", "bulk reply body not followed by CRLF");
    }
    this.scan = end;
    this.lineFrom = end;
    this.bodyBytes = -1;
    this.completeValue();
    return true;
  }

  /** One line at `scan` and what its type means: true when consumed, else null or an error. */
  private readLine(): true | null | CodecError {
    const input = this.input;
    const lineMax = this.limits.replyLineBytesMax;
    const newline = input.indexOf(10, this.lineFrom);
    if (newline === -1) {
      this.lineFrom = input.length;
      if (input.length - this.scan > lineMax) return this.lineTooLong();
      return null;
    }
    if (newline - this.scan > lineMax) return this.lineTooLong();
    if (newline - this.scan < 2 || input.at(newline - 1) !== 13) {
      return this.fail("ERR_CODEC_SYNTAX", "reply line without a type byte or not ended by CRLF");
    }
    const type = input.at(this.scan);
    const from = this.scan + 1;
    const to = newline - 1;
    this.scan = newline + 1;
    this.lineFrom = this.scan;
    if (this.depth === 0 && type !== T_ATTRIBUTE) this.isPush = type === T_PUSH;
    return this.onType(type, from, to);
  }

  private onType(type: number, from: number, to: number): true | CodecError {
    switch (type) {
      case T_SIMPLE:
      case T_ERROR:
      case T_INTEGER:
      case T_DOUBLE:
      case T_BIG_NUMBER:
        this.completeValue();
        return true;
      case T_NULL:
        if (to !== from) return this.fail("ERR_CODEC_SYNTAX", "RESP3 null `_` with content");
        this.completeValue();
        return true;
      case T_BOOLEAN: {
        const value = to === from + 1 ? this.input.at(from) : 0;
        if (value !== 116 && value !== 102) return this.fail("ERR_CODEC_SYNTAX", "bad boolean");
        this.completeValue();
        return true;
      }
      case T_BULK:
      case T_BLOB_ERROR:
      case T_VERBATIM:
        return this.onBulkHeader(type, from, to);
      case T_ARRAY:
      case T_SET:
      case T_PUSH:
      case T_MAP:
      case T_ATTRIBUTE:
        return this.onAggregateHeader(type, from, to);
      case T_CHUNK:
      case T_END:
        return this.unsupported(type);
      default:
        return this.fail("ERR_CODEC_SYNTAX", `unknown RESP type byte ${type}`);
    }
  }

  private onBulkHeader(type: number, from: number, to: number): true | CodecError {
    const length = this.readLength(from, to);
    if (length === STREAMED) return this.unsupported(type);
    if (Number.isNaN(length) || length < -1 || (length === -1 && type !== T_BULK)) {
      return this.fail("ERR_CODEC_SYNTAX", "bad bulk length");
    }
    if (length === -1) this.completeValue();
    else this.bodyBytes = length + 2;
    return true;
  }

  private onAggregateHeader(type: number, from: number, to: number): true | CodecError {
    const count = this.readLength(from, to);
    if (count === STREAMED) return this.unsupported(type);
    if (Number.isNaN(count) || count < -1 || (count === -1 && type !== T_ARRAY)) {
      return this.fail("ERR_CODEC_SYNTAX", "bad aggregate length");
    }
    const values = type === T_MAP || type === T_ATTRIBUTE ? count * 2 : count;
    // Every value takes at least 3 bytes: a count this big can never fit.
    if (values > this.limits.replyBytesMax / 3) {
      return this.fail("ERR_CODEC_LIMIT", `aggregate of ${count} above replyBytesMax`);
    }
    if (values <= 0) {
      if (type !== T_ATTRIBUTE) this.completeValue();
      return true;
    }
    if (this.depth >= this.limits.replyDepthMax) {
      return this.fail(
        "ERR_CODEC_LIMIT",
        `reply nested above replyDepthMax ${this.limits.replyDepthMax}`,
      );
    }
    this.left[this.depth] = values;
    this.attribute[this.depth] = type === T_ATTRIBUTE;
    this.depth++;
    return true;
  }

  /** A length header's value, STREAMED for `?`, NaN when invalid. */
  private readLength(from: number, to: number): number {
    if (to === from + 1 && this.input.at(from) === QUESTION) return STREAMED;
    return this.input.decimal(from, to, true);
  }

  /** One value is whole: close every aggregate it completes; `complete` when the reply is. */
  private completeValue(): void {
    while (this.depth > 0) {
      const top = this.depth - 1;
      const left = this.left[top]! - 1;
      this.left[top] = left;
      if (left > 0) return;
      this.depth--;
      // An attribute's end completes nothing: the value it annotates comes next.
      if (this.attribute[top]) return;
    }
    this.complete = true;
  }

  private emit(): CutReply {
    const reply: CutReply = { bytes: this.input.take(this.scan), push: this.isPush };
    this.scan = 0;
    this.lineFrom = 0;
    this.isPush = false;
    this.complete = false;
    return reply;
  }

  private lineTooLong(): CodecError {
    return this.fail(
      "ERR_CODEC_LIMIT",
      `reply line above replyLineBytesMax ${this.limits.replyLineBytesMax}`,
    );
  }

  private unsupported(type: number): CodecError {
    return this.fail(
      "ERR_CODEC_UNSUPPORTED",
      `RESP3 streamed value (type ${String.fromCharCode(type)}) is not supported`,
    );
  }

  private fail(code: CodecError["code"], message: string): CodecError {
    this.failed = new CodecError(code, message, true, null);
    this.input.clear();
    return this.failed;
  }
}

/**
 * Whether a cut reply answers a request (counts toward its `replies`): every reply but a push that
 * is not a subscription confirmation (a pub/sub message, a tracking invalidation). RESP2 pub/sub
 * messages are plain arrays: a caller that knows the connection is subscribed also checks
 * `respPushKind` for `message`, `pmessage` and `smessage`.
 */
export function isRespAnswer(reply: CutReply): boolean {
  if (!reply.push) return true;
  const kind = respPushKind(reply.bytes);
  return kind !== null && PER_CHANNEL_COMMANDS.has(kind);
}

/** readLength() result for `?` (a streamed value); below any length a header can hold. */
const STREAMED = -(2 ** 60);

/**
 * For a reply that is an array or push whose first element is a bulk or simple string: that
 * string, lower-case (`message`, `pmessage`, `smessage`, `subscribe`, `pong`, …); else null.
 * Lets a caller that knows a connection is subscribed tell RESP2 pub/sub messages from replies.
 */
export function respPushKind(reply: Uint8Array): string | null {
  const bytes = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  if (bytes[0] !== T_ARRAY && bytes[0] !== T_PUSH) return null;
  const headerEnd = bytes.indexOf(10);
  if (headerEnd === -1 || headerEnd + 1 >= bytes.length) return null;
  const first = headerEnd + 1;
  const lineEnd = bytes.indexOf(13, first);
  if (lineEnd === -1) return null;
  if (bytes[first] === T_SIMPLE) return bytes.toString("latin1", first + 1, lineEnd).toLowerCase();
  if (bytes[first] !== T_BULK) return null;
  const length = parseDecimal(bytes, first + 1, lineEnd, false);
  const body = lineEnd + 2;
  if (Number.isNaN(length) || body + length > bytes.length) return null;
  return bytes.toString("latin1", body, body + length).toLowerCase();
}

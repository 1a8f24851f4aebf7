/**
 * Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.
 *
 * Redis 7.0.15's bitops.c, quirks included: bit 0 is the most significant bit of the first byte;
 * BITCOUNT and BITPOS look the key up before reading their range (a missing key answers 0 or -1
 * whatever the arguments; 7.2 changed that), and BITCOUNT's "both negative, start > end" answers
 * 0 before the BIT|BYTE word is checked; BITFIELD's `#n` offsets are n × width, with int64
 * wrap-around as in C; SET and INCRBY create or grow the string even when OVERFLOW FAIL then
 * refuses every write, as Redis does.
 *
 * Limits: an offset whose byte is at or past 512 MB (Redis's proto-max-bulk-len) is Redis's
 * "bit offset is not an integer or out of range"; growing a string past --max-value-bytes is
 * ours (`value too large`), and then nothing changes.
 */
import { type CommandSpec, KEY_1 } from "./kv-command-spec.ts";
import { isStringValue, type Keyspace, type KvEntry } from "./kv-keyspace.ts";
import {
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  isReply,
  latin1,
  parseInt64,
  valueTooLarge,
  WRONGTYPE,
} from "./kv-shared.ts";
import { array, errorReply, integer, NULL_BULK, ONE, ZERO } from "./resp.ts";

/** Redis's proto-max-bulk-len: a bit offset's byte must be below it. */
const REDIS_STRING_BYTES_MAX = 512 * 1024 * 1024;
/** The first bit offset Redis refuses (its byte is at 512 MB). */
const BIT_OFFSET_LIMIT = REDIS_STRING_BYTES_MAX * 8;

const ERR_BIT_OFFSET = errorReply("ERR bit offset is not an integer or out of range");
const ERR_BIT_VALUE = errorReply("ERR bit is not an integer or out of range");
const ERR_BIT_ARGUMENT = errorReply("ERR The bit argument must be 1 or 0.");
const ERR_BITOP_NOT = errorReply("ERR BITOP NOT must be called with a single source key.");
const ERR_BITFIELD_TYPE = errorReply(
  "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
);
const ERR_OVERFLOW_TYPE = errorReply("ERR Invalid OVERFLOW type specified");
const ERR_BITFIELD_RO = errorReply("ERR BITFIELD_RO only supports the GET subcommand");
const MINUS_ONE = integer(-1);

/**
 * An argument as C's strcasecmp sees it: up to its first NUL byte, uppercased. Redis compares
 * option words (AND, BIT, OVERFLOW …) that way, so "and\0x" is AND there too.
 */
function cWord(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return latin1(nul === -1 ? bytes : bytes.subarray(0, nul)).toUpperCase();
}

/** Redis's getLongLongFromObject: an int64 (string2ll) as a bigint, or null. */
function parseBigInt64(bytes: Buffer): bigint | null {
  const value = parseInt64(bytes);
  return value === null ? null : BigInt(value);
}

/**
 * Redis's getBitOffsetFromArgument: a bit offset in [0, 2^32), or null for its error. With
 * `width` > 0 (BITFIELD), `#n` means n × width, multiplied in int64 as C does (wrapping).
 */
function bitOffset(bytes: Buffer, width = 0): number | null {
  const hash = width > 0 && bytes.length > 0 && bytes[0] === 35; // '#'
  const parsed = parseInt64(hash ? bytes.subarray(1) : bytes);
  if (parsed === null) return null;
  let offset: number;
  if (!hash) offset = typeof parsed === "number" ? parsed : Number(parsed);
  else {
    const product = BigInt.asIntN(64, BigInt(parsed) * BigInt(width));
    offset = product < 0n || product >= BigInt(BIT_OFFSET_LIMIT) ? -1 : Number(product);
  }
  return offset < 0 || offset >= BIT_OFFSET_LIMIT ? null : offset;
}

/**
 * The string `entry` holds, zero-padded to at least `length` bytes (Redis's sdsgrowzero), or the
 * refusal when that would pass --max-value-bytes. Grows by replacing the value: the old Buffer
 * may be a snapshot's.
 */
function grownString(entry: KvEntry, length: number): Buffer {
  const current = entry.value as Buffer;
  if (current.length >= length) return current;
  const grown = Buffer.alloc(length);
  current.copy(grown);
  entry.value = grown;
  return grown;
}

/**
 * Redis's lookupStringForBitCommand: the key's string grown to `length` bytes, created (zeros)
 * if absent; WRONGTYPE or `value too large` (nothing changed) as a reply instead.
 */
function stringForBits(
  keyspace: Keyspace,
  key: string,
  length: number,
  now: number,
): Buffer | { reply: Buffer } {
  const entry = keyspace.lookup(key, now);
  if (entry !== undefined && !isStringValue(entry.value)) return { reply: WRONGTYPE };
  const limit = keyspace.limits.valueBytesMax;
  const currentLength = entry === undefined ? 0 : (entry.value as Buffer).length;
  if (length > currentLength && length > limit) return { reply: valueTooLarge(limit) };
  if (entry === undefined) {
    const value = Buffer.alloc(length);
    keyspace.insert(key, value);
    return value;
  }
  return grownString(entry, length);
}

/** SETBIT key offset 0|1: answers the bit's old value. */
export const setbit: Handler = (keyspace, args, now) => {
  const offset = bitOffset(args[2]!);
  if (offset === null) return ERR_BIT_OFFSET;
  const on = parseInt64(args[3]!);
  if (on !== 0 && on !== 1) return ERR_BIT_VALUE;
  const byte = Math.floor(offset / 8);
  const value = stringForBits(keyspace, latin1(args[1]!), byte + 1, now);
  if ("reply" in value) return value.reply;
  const mask = 1 << (7 - (offset & 7));
  const old = value[byte]! & mask;
  value[byte] = on === 1 ? value[byte]! | mask : value[byte]! & ~mask;
  return old !== 0 ? ONE : ZERO;
};

/** GETBIT key offset: 0 past the end or for a missing key. */
export const getbit: Handler = (keyspace, args, now) => {
  const offset = bitOffset(args[2]!);
  if (offset === null) return ERR_BIT_OFFSET;
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return ZERO;
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  const byte = Math.floor(offset / 8);
  if (byte >= value.length) return ZERO;
  return (value[byte]! & (1 << (7 - (offset & 7)))) !== 0 ? ONE : ZERO;
};

/** Set bits per byte value. */
const BITS_IN_BYTE = new Uint8Array(256);
for (let i = 1; i < 256; i++) BITS_IN_BYTE[i] = (i & 1) + BITS_IN_BYTE[i >> 1]!;

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Set bits in bytes[start, end). Whole 32-bit words where aligned: BITCOUNT of 8 MB is ~2 ms. */
function popcount(bytes: Buffer, start: number, end: number): number {
  let count = 0;
  let i = start;
  while (i < end && ((bytes.byteOffset + i) & 3) !== 0) count += BITS_IN_BYTE[bytes[i++]!]!;
  const words = (end - i) >>> 2;
  if (words > 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) count += popcount32(view[w]!);
    i += words * 4;
  }
  while (i < end) count += BITS_IN_BYTE[bytes[i++]!]!;
  return count;
}

/** Whether `bytes` is BIT or BYTE (true: BIT), or null for neither (Redis's strcasecmp). */
function bitUnit(bytes: Buffer): boolean | null {
  const word = cWord(bytes);
  return word === "BIT" ? true : word === "BYTE" ? false : null;
}

/**
 * An int64 argument as a number: exact below 2^53, and beyond that far past any string's length,
 * which is all the clamping needs (compare the exact values with `greater`).
 */
function parseIndex(bytes: Buffer): number | null {
  const value = parseInt64(bytes);
  return value === null ? null : Number(value);
}

/** a > b on the exact int64 arguments (two near -2^63 may round to one double). */
function greater(a: Buffer, b: Buffer): boolean {
  const x = parseInt64(a)!;
  const y = parseInt64(b)!;
  return typeof x === "number" && typeof y === "number" ? x > y : BigInt(x) > BigInt(y);
}

/** A range in bytes [start, end] with masks of the edge bits outside it (BIT ranges). */
interface ByteRange {
  start: number;
  end: number;
  /** Bits of bytes[start] before the range (set bits are outside). */
  firstOutside: number;
  /** Bits of bytes[end] after the range. */
  lastOutside: number;
}

/**
 * Redis's clamping of BITCOUNT's and BITPOS's range: negative indexes from the end, clamped to
 * the string, then BIT offsets turned into bytes and edge masks.
 */
function clampRange(start: number, end: number, length: number, isBit: boolean): ByteRange {
  const total = isBit ? length * 8 : length;
  if (start < 0) start += total;
  if (end < 0) end += total;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= total) end = total - 1;
  let firstOutside = 0;
  let lastOutside = 0;
  if (isBit && start <= end) {
    firstOutside = ~((1 << (8 - (start & 7))) - 1) & 0xff;
    lastOutside = (1 << (7 - (end & 7))) - 1;
    start = Math.floor(start / 8);
    end = Math.floor(end / 8);
  }
  return { start, end, firstOutside, lastOutside };
}

/** BITCOUNT key [start end [BYTE|BIT]]. */
export const bitcount: Handler = (keyspace, args, now) => {
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return ZERO; // before the arguments are read, as Redis 7.0
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  let range: ByteRange;
  if (args.length === 4 || args.length === 5) {
    const start = parseIndex(args[2]!);
    if (start === null) return ERR_NOT_INTEGER;
    const end = parseIndex(args[3]!);
    if (end === null) return ERR_NOT_INTEGER;
    if (start < 0 && end < 0 && greater(args[2]!, args[3]!)) return ZERO;
    const isBit = args.length === 5 ? bitUnit(args[4]!) : false;
    if (isBit === null) return ERR_SYNTAX;
    range = clampRange(start, end, value.length, isBit);
  } else if (args.length === 2) {
    range = { start: 0, end: value.length - 1, firstOutside: 0, lastOutside: 0 };
  } else return ERR_SYNTAX;
  const { start, end, firstOutside, lastOutside } = range;
  if (start > end) return ZERO;
  let count = popcount(value, start, end + 1);
  count -= BITS_IN_BYTE[value[start]! & firstOutside]!;
  count -= BITS_IN_BYTE[value[end]! & lastOutside]!;
  return integer(count);
};

/**
 * Redis's redisBitpos: the position of the first `bit` in bytes[start, start + count), counted
 * from bytes[start]'s most significant bit; for 0 with none found, count × 8 (the string is
 * taken as zero-padded); for 1 with none found, -1.
 */
function firstBit(bytes: Uint8Array, start: number, count: number, bit: number): number {
  const skip = bit === 1 ? 0 : 0xff;
  for (let i = start; i < start + count; i++) {
    const byte = bytes[i]!;
    if (byte === skip) continue;
    const bits = bit === 1 ? byte : ~byte & 0xff;
    return (i - start) * 8 + Math.clz32(bits) - 24;
  }
  return bit === 1 ? -1 : count * 8;
}

/**
 * Redis's search of a non-empty BITPOS range: the edge bytes of a BIT range masked, whole bytes
 * in between. `pos` counts from byte `start` as Redis leaves it; `bytes` are those left there.
 */
function searchRange(
  value: Buffer,
  bit: number,
  range: ByteRange,
): { pos: number; start: number; bytes: number } {
  let { start } = range;
  const { end, firstOutside, lastOutside } = range;
  let bytes = end - start + 1;
  const one = new Uint8Array(1);
  if (firstOutside !== 0) {
    let byte = bit === 1 ? value[start]! & ~firstOutside : value[start]! | firstOutside;
    if (lastOutside !== 0 && bytes === 1) {
      byte = bit === 1 ? byte & ~lastOutside : byte | lastOutside;
    }
    one[0] = byte;
    const pos = firstBit(one, 0, 1, bit);
    if (bytes === 1 || (pos !== -1 && pos !== 8)) return { pos, start, bytes };
    start++;
    bytes--;
  }
  const whole = bytes - (lastOutside !== 0 ? 1 : 0);
  if (whole > 0) {
    const pos = firstBit(value, start, whole, bit);
    if (bytes === whole || (pos !== -1 && pos !== whole * 8)) return { pos, start, bytes };
    start += whole;
    bytes -= whole;
  }
  one[0] = bit === 1 ? value[end]! & ~lastOutside : value[end]! | lastOutside;
  return { pos: firstBit(one, 0, 1, bit), start, bytes };
}

/** BITPOS key bit [start [end [BYTE|BIT]]]. */
export const bitpos: Handler = (keyspace, args, now) => {
  const bitArg = parseInt64(args[2]!);
  if (bitArg === null) return ERR_NOT_INTEGER;
  if (bitArg !== 0 && bitArg !== 1) return ERR_BIT_ARGUMENT;
  const bit = bitArg;
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return bit === 1 ? MINUS_ONE : ZERO; // before the range, as 7.0
  const value = entry.value;
  if (!isStringValue(value)) return WRONGTYPE;
  let range: ByteRange;
  let endGiven = false;
  if (args.length >= 4 && args.length <= 6) {
    const start = parseIndex(args[3]!);
    if (start === null) return ERR_NOT_INTEGER;
    let isBit = false;
    if (args.length === 6) {
      const unit = bitUnit(args[5]!);
      if (unit === null) return ERR_SYNTAX;
      isBit = unit;
    }
    let end = value.length - 1;
    if (args.length >= 5) {
      const parsed = parseIndex(args[4]!);
      if (parsed === null) return ERR_NOT_INTEGER;
      end = parsed;
      endGiven = true;
    }
    range = clampRange(start, end, value.length, isBit);
  } else if (args.length === 3) {
    range = { start: 0, end: value.length - 1, firstOutside: 0, lastOutside: 0 };
  } else return ERR_SYNTAX;
  if (range.start > range.end) return MINUS_ONE;
  const { pos, start, bytes } = searchRange(value, bit, range);
  // An explicit end: no zero padding past it, so "only ones in range" is -1.
  if (endGiven && bit === 0 && pos === bytes * 8) return MINUS_ONE;
  return integer(pos === -1 ? -1 : pos + start * 8);
};

const BITOP_AND = 0;
const BITOP_OR = 1;
const BITOP_XOR = 2;
const BITOP_NOT = 3;
const BITOP_NAMES: Readonly<Record<string, number>> = {
  AND: BITOP_AND,
  OR: BITOP_OR,
  XOR: BITOP_XOR,
  NOT: BITOP_NOT,
};

/**
 * BITOP AND|OR|XOR|NOT destkey key [key ...]: missing keys are empty strings, shorter ones
 * zero-padded; an empty result deletes destkey. Answers the result's length.
 */
export const bitop: Handler = (keyspace, args, now) => {
  const op = BITOP_NAMES[cWord(args[1]!)];
  if (op === undefined) return ERR_SYNTAX;
  if (op === BITOP_NOT && args.length !== 4) return ERR_BITOP_NOT;
  const sources: Buffer[] = [];
  let maxLength = 0;
  for (let i = 3; i < args.length; i++) {
    const entry = keyspace.lookup(latin1(args[i]!), now);
    if (entry === undefined) {
      sources.push(EMPTY);
      continue;
    }
    if (!isStringValue(entry.value)) return WRONGTYPE;
    sources.push(entry.value);
    if (entry.value.length > maxLength) maxLength = entry.value.length;
  }
  const dest = latin1(args[2]!);
  if (maxLength === 0) {
    const entry = keyspace.lookup(dest, now);
    if (entry !== undefined) keyspace.remove(dest, entry);
    return ZERO;
  }
  // Sources are stored values, each within --max-value-bytes: so is the result.
  const result = Buffer.alloc(maxLength);
  const first = sources[0]!;
  first.copy(result);
  if (op === BITOP_NOT) {
    for (let j = 0; j < maxLength; j++) result[j] = ~result[j]! & 0xff;
  }
  for (let i = 1; i < sources.length; i++) {
    const source = sources[i]!;
    const length = source.length;
    if (op === BITOP_AND) {
      for (let j = 0; j < length; j++) result[j]! &= source[j]!;
      result.fill(0, length);
    } else if (op === BITOP_OR) {
      for (let j = 0; j < length; j++) result[j]! |= source[j]!;
    } else {
      for (let j = 0; j < length; j++) result[j]! ^= source[j]!;
    }
  }
  keyspace.set(dest, result, now);
  return integer(maxLength);
};

const EMPTY = Buffer.alloc(0);

const OVERFLOW_WRAP = 0;
const OVERFLOW_SAT = 1;
const OVERFLOW_FAIL = 2;
const OVERFLOW_NAMES: Readonly<Record<string, number>> = {
  WRAP: OVERFLOW_WRAP,
  SAT: OVERFLOW_SAT,
  FAIL: OVERFLOW_FAIL,
};

const OP_GET = 0;
const OP_SET = 1;
const OP_INCRBY = 2;

interface BitfieldOp {
  readonly opcode: number;
  readonly offset: number;
  readonly bits: number;
  readonly signed: boolean;
  readonly overflow: number;
  /** SET's value or INCRBY's increment (int64). */
  readonly operand: bigint;
}

/** Redis's getBitfieldTypeFromArgument: i1…i64 or u1…u63 (lowercase, as Redis), or null. */
function bitfieldType(bytes: Buffer): { signed: boolean; bits: number } | null {
  const nul = bytes.indexOf(0);
  const text = nul === -1 ? bytes : bytes.subarray(0, nul); // strlen(p+1), as Redis
  const kind = text[0];
  if (kind !== 105 && kind !== 117) return null; // 'i', 'u'
  const bits = parseInt64(text.subarray(1));
  if (bits === null || typeof bits === "bigint" || bits < 1) return null;
  const signed = kind === 105;
  if (bits > (signed ? 64 : 63)) return null;
  return { signed, bits };
}

/** The unsigned `bits`-bit integer at bit `offset`; bytes past the end read as zeros. */
function getBits(bytes: Uint8Array, offset: number, bits: number): bigint {
  let value = 0n;
  for (let j = 0; j < bits; j++, offset++) {
    const byte = Math.floor(offset / 8);
    const bit = byte < bytes.length ? (bytes[byte]! >> (7 - (offset & 7))) & 1 : 0;
    value = (value << 1n) | BigInt(bit);
  }
  return value;
}

/** Writes the low `bits` bits of `value` (uint64) at bit `offset` (within `bytes`). */
function setBits(bytes: Uint8Array, offset: number, bits: number, value: bigint): void {
  for (let j = 0; j < bits; j++, offset++) {
    const bit = Number((value >> BigInt(bits - 1 - j)) & 1n);
    const byte = Math.floor(offset / 8);
    const mask = 1 << (7 - (offset & 7));
    bytes[byte] = bit === 1 ? bytes[byte]! | mask : bytes[byte]! & ~mask;
  }
}

function toSigned(value: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, value);
}

/** The result of an overflow check: 0 none, else the value to store (absent for FAIL). */
interface Overflow {
  readonly overflowed: boolean;
  readonly limit?: bigint;
}
const NO_OVERFLOW: Overflow = { overflowed: false };

/**
 * Redis's checkUnsignedBitfieldOverflow for `value` (uint64) + `increment` (int64) in `bits`
 * bits, its int64 arithmetic (maxincr, minincr) wrapping as in C.
 */
function unsignedOverflow(value: bigint, increment: bigint, bits: number, how: number): Overflow {
  const max = (1n << BigInt(bits)) - 1n;
  const maxIncrement = BigInt.asIntN(64, max - value);
  const minIncrement = BigInt.asIntN(64, -value);
  let saturated: bigint;
  if (value > max || (increment > 0n && increment > maxIncrement)) saturated = max;
  else if (increment < 0n && increment < minIncrement) saturated = 0n;
  else return NO_OVERFLOW;
  if (how === OVERFLOW_WRAP)
    return { overflowed: true, limit: BigInt.asUintN(bits, value + increment) };
  return how === OVERFLOW_SAT ? { overflowed: true, limit: saturated } : { overflowed: true };
}

/** Redis's checkSignedBitfieldOverflow, likewise (int64 value and increment). */
function signedOverflow(value: bigint, increment: bigint, bits: number, how: number): Overflow {
  const max = (1n << BigInt(bits - 1)) - 1n;
  const min = -max - 1n;
  const maxIncrement = BigInt.asIntN(64, max - value);
  const minIncrement = BigInt.asIntN(64, min - value);
  const narrow = bits !== 64;
  let saturated: bigint;
  if (
    value > max ||
    (narrow && increment > maxIncrement) ||
    (value >= 0n && increment > 0n && increment > maxIncrement)
  ) {
    saturated = max;
  } else if (
    value < min ||
    (narrow && increment < minIncrement) ||
    (value < 0n && increment < 0n && increment < minIncrement)
  ) {
    saturated = min;
  } else return NO_OVERFLOW;
  if (how === OVERFLOW_WRAP) {
    return { overflowed: true, limit: toSigned(BigInt.asUintN(64, value + increment), bits) };
  }
  return how === OVERFLOW_SAT ? { overflowed: true, limit: saturated } : { overflowed: true };
}

/** Parsed BITFIELD subcommands, or an error reply; `writes` if any is SET or INCRBY. */
function parseBitfield(
  args: readonly Buffer[],
): { ops: BitfieldOp[]; writes: boolean; highestBit: number } | Buffer {
  const ops: BitfieldOp[] = [];
  let overflow = OVERFLOW_WRAP;
  let writes = false;
  let highestBit = 0;
  for (let j = 2; j < args.length; j++) {
    const remaining = args.length - j - 1;
    const name = cWord(args[j]!);
    let opcode: number;
    if (name === "GET" && remaining >= 2) opcode = OP_GET;
    else if (name === "SET" && remaining >= 3) opcode = OP_SET;
    else if (name === "INCRBY" && remaining >= 3) opcode = OP_INCRBY;
    else if (name === "OVERFLOW" && remaining >= 1) {
      const how = OVERFLOW_NAMES[cWord(args[++j]!)];
      if (how === undefined) return ERR_OVERFLOW_TYPE;
      overflow = how;
      continue;
    } else return ERR_SYNTAX;
    const type = bitfieldType(args[j + 1]!);
    if (type === null) return ERR_BITFIELD_TYPE;
    const offset = bitOffset(args[j + 2]!, type.bits);
    if (offset === null) return ERR_BIT_OFFSET;
    let operand = 0n;
    if (opcode !== OP_GET) {
      writes = true;
      highestBit = Math.max(highestBit, offset + type.bits - 1);
      const parsed = parseBigInt64(args[j + 3]!);
      if (parsed === null) return ERR_NOT_INTEGER;
      operand = parsed;
    }
    ops.push({ opcode, offset, bits: type.bits, signed: type.signed, overflow, operand });
    j += opcode === OP_GET ? 2 : 3;
  }
  return { ops, writes, highestBit };
}

/** One SET or INCRBY on `value`: its reply item (old value for SET, new for INCRBY, or nil). */
function bitfieldWrite(value: Buffer, op: BitfieldOp): Buffer {
  const { bits, offset } = op;
  const raw = getBits(value, offset, bits);
  let old: bigint;
  let next: bigint;
  let overflow: Overflow;
  if (op.signed) {
    old = toSigned(raw, bits);
    if (op.opcode === OP_INCRBY) {
      overflow = signedOverflow(old, op.operand, bits, op.overflow);
      next = overflow.overflowed ? (overflow.limit ?? 0n) : old + op.operand;
    } else {
      overflow = signedOverflow(op.operand, 0n, bits, op.overflow);
      next = overflow.overflowed ? (overflow.limit ?? 0n) : op.operand;
    }
  } else {
    old = raw;
    if (op.opcode === OP_INCRBY) {
      overflow = unsignedOverflow(old, op.operand, bits, op.overflow);
      next = overflow.overflowed ? (overflow.limit ?? 0n) : old + op.operand;
    } else {
      const operand = BigInt.asUintN(64, op.operand); // C's (uint64_t) of the int64
      overflow = unsignedOverflow(operand, 0n, bits, op.overflow);
      next = overflow.overflowed ? (overflow.limit ?? 0n) : operand;
    }
  }
  if (overflow.overflowed && op.overflow === OVERFLOW_FAIL) return NULL_BULK;
  setBits(value, offset, bits, BigInt.asUintN(64, next));
  return integer(op.opcode === OP_INCRBY ? next : old);
}

function bitfieldCommand(readOnly: boolean): Handler {
  return (keyspace, args, now) => {
    const parsed = parseBitfield(args);
    if (isReply(parsed)) return parsed;
    const { ops, writes, highestBit } = parsed;
    const key = latin1(args[1]!);
    let value: Buffer | undefined;
    if (!writes) {
      const entry = keyspace.lookup(key, now);
      if (entry !== undefined && !isStringValue(entry.value)) return WRONGTYPE;
      value = entry?.value as Buffer | undefined;
    } else {
      if (readOnly) return ERR_BITFIELD_RO;
      const found = stringForBits(keyspace, key, Math.floor(highestBit / 8) + 1, now);
      if ("reply" in found) return found.reply;
      value = found;
    }
    const replies: Buffer[] = [];
    for (const op of ops) {
      if (op.opcode !== OP_GET) {
        replies.push(bitfieldWrite(value!, op));
        continue;
      }
      const raw = value === undefined ? 0n : getBits(value, op.offset, op.bits);
      replies.push(integer(op.signed ? toSigned(raw, op.bits) : raw));
    }
    return array(replies);
  };
}

/** BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment | OVERFLOW WRAP|SAT|FAIL] … */
export const bitfield: Handler = bitfieldCommand(false);
/** BITFIELD_RO key [GET type offset] …: GET alone. */
export const bitfieldRo: Handler = bitfieldCommand(true);

/** BITOP's keys: the destination and every source. */
const BITOP_KEYS = { first: 2, last: -1, step: 1 } as const;

export const BIT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "setbit",
    arity: 4,
    kind: "write",
    handler: setbit,
    flags: ["denyoom"],
    keys: KEY_1,
  },
  { name: "getbit", arity: 3, kind: "read", handler: getbit, flags: ["fast"], keys: KEY_1 },
  { name: "bitcount", arity: -2, kind: "read", handler: bitcount, keys: KEY_1 },
  { name: "bitpos", arity: -3, kind: "read", handler: bitpos, keys: KEY_1 },
  {
    name: "bitop",
    arity: -4,
    kind: "write",
    handler: bitop,
    flags: ["denyoom"],
    keys: BITOP_KEYS,
  },
  {
    name: "bitfield",
    arity: -2,
    kind: "write",
    handler: bitfield,
    flags: ["denyoom"],
    keys: KEY_1,
  },
  {
    name: "bitfield_ro",
    arity: -2,
    kind: "read",
    handler: bitfieldRo,
    flags: ["fast"],
    keys: KEY_1,
  },
];

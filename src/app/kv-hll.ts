/**
 * HyperLogLog commands: PFADD PFCOUNT PFMERGE.
 *
 * A HyperLogLog is a string value (TYPE says string; GET, SETRANGE, APPEND see its bytes) in
 * Redis 7.0.15's exact representation (hyperloglog.c), so GET and PFCOUNT match redis-server
 * byte for byte:
 *
 *   "HYLL" | encoding (0 dense, 1 sparse) | 3 unused bytes | cached cardinality (int64 LE; its
 *   top bit set: stale) | registers
 *
 * 16384 registers of 6 bits hold, for the elements whose 64-bit MurmurHash64A (seed 0xadc83b19)
 * picks the register by its low 14 bits, the longest run of zeros (+1) in the other 50. Dense:
 * the registers packed LSB first (12288 bytes). Sparse: run-length opcodes ZERO 00xxxxxx (1-64
 * zero registers), XZERO 01xxxxxx yyyyyyyy (1-16384), VAL 1vvvvvxx (1-4 registers of value
 * 1-32); an HLL starts sparse and turns dense for good when a register passes 32 or the sparse
 * form would pass hll-sparse-max-bytes (3000). The cardinality is Ertl's estimator over the
 * register histogram, as Redis computes it in doubles.
 *
 * PFCOUNT of one key caches the cardinality in the value, so it writes: its kind is "write" (in
 * Redis it is readonly + may_replicate) so every replica stores the same bytes. A result past
 * --max-value-bytes (a dense HLL is 12304 bytes) is refused and nothing changes.
 *
 * Left out: PFDEBUG and PFSELFTEST, Redis's debugging aids for its own implementation (the unit
 * tests check the encoding instead).
 */
import { type CommandSpec, KEY_1, KEYS_FROM_1 } from "./kv-command-spec.ts";
import { isStringValue, type Keyspace, type KvEntry, type KvValue } from "./kv-keyspace.ts";
import { type Handler, latin1, valueTooLarge, WRONGTYPE } from "./kv-shared.ts";
import { errorReply, integer, OK, ONE, ZERO } from "./resp.ts";

const HLL_P = 14;
/** Hash bits that give the run of zeros. */
const HLL_Q = 64 - HLL_P;
export const HLL_REGISTERS = 1 << HLL_P;
const HLL_P_MASK = HLL_REGISTERS - 1;
const HLL_BITS = 6;
const HLL_REGISTER_MAX = (1 << HLL_BITS) - 1;
export const HLL_HEADER_BYTES = 16;
export const HLL_DENSE_BYTES = HLL_HEADER_BYTES + Math.floor((HLL_REGISTERS * HLL_BITS + 7) / 8);
const HLL_DENSE = 0;
const HLL_SPARSE = 1;
const HLL_MAX_ENCODING = 1;
/** Redis's hll-sparse-max-bytes default: a longer sparse form turns dense. */
export const HLL_SPARSE_BYTES_MAX = 3000;
const SPARSE_VAL_VALUE_MAX = 32;
const SPARSE_VAL_LENGTH_MAX = 4;
const SPARSE_ZERO_LENGTH_MAX = 64;
const SPARSE_XZERO_LENGTH_MAX = 16384;
const HLL_ALPHA_INF = 0.7213475204444817; // 0.5 / ln(2), Redis's 0.721347520444481703680 as a double
/** The byte of the cached cardinality whose top bit marks it stale. */
const CARD_TOP = 15;

const HLL_WRONGTYPE = errorReply("WRONGTYPE Key is not a valid HyperLogLog string value.");
const ERR_INVALID_HLL = errorReply("INVALIDOBJ Corrupted HLL object detected");

// ---------------------------------------------------------------------------------------------
// MurmurHash64A on 32-bit halves (bigints would cost ~30 allocations per element).

const M_HI = 0xc6a4a793;
const M_LO = 0x5bd1e995;
/** Results of mul64 and murmurHash64A: high and low 32 bits. */
let outHi = 0;
let outLo = 0;

/** The low 64 bits of (ah:al) × (bh:bl), into outHi:outLo. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const high = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  outLo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  outHi = (high + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** Redis's MurmurHash64A of `data` (little-endian words), into outHi:outLo. */
function murmurHash64A(data: Uint8Array, seed: number): void {
  const length = data.length;
  mul64(0, length >>> 0, M_HI, M_LO);
  let hHi = outHi;
  let hLo = (outLo ^ seed) >>> 0;
  const end = length - (length & 7);
  for (let i = 0; i < end; i += 8) {
    const kLo =
      (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
    const kHi =
      (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24)) >>> 0;
    mul64(kHi, kLo, M_HI, M_LO);
    const kHi1 = outHi;
    const kLo1 = (outLo ^ (outHi >>> 15)) >>> 0; // k ^= k >> 47
    mul64(kHi1, kLo1, M_HI, M_LO);
    mul64((hHi ^ outHi) >>> 0, (hLo ^ outLo) >>> 0, M_HI, M_LO);
    hHi = outHi;
    hLo = outLo;
  }
  const rest = length & 7;
  if (rest > 0) {
    if (rest >= 7) hHi ^= data[end + 6]! << 16;
    if (rest >= 6) hHi ^= data[end + 5]! << 8;
    if (rest >= 5) hHi ^= data[end + 4]!;
    if (rest >= 4) hLo ^= data[end + 3]! << 24;
    if (rest >= 3) hLo ^= data[end + 2]! << 16;
    if (rest >= 2) hLo ^= data[end + 1]! << 8;
    hLo ^= data[end]!;
    mul64(hHi >>> 0, hLo >>> 0, M_HI, M_LO);
    hHi = outHi;
    hLo = outLo;
  }
  hLo = (hLo ^ (hHi >>> 15)) >>> 0;
  mul64(hHi, hLo, M_HI, M_LO);
  outHi = outHi >>> 0;
  outLo = (outLo ^ (outHi >>> 15)) >>> 0;
}

/** MurmurHash64A as a bigint (for tests). */
export function murmurHash64ABig(data: Uint8Array, seed: number): bigint {
  murmurHash64A(data, seed);
  return (BigInt(outHi) << 32n) | BigInt(outLo);
}

const HASH_SEED = 0xadc83b19;

/** Index of the register an element picks (set by patternLength). */
let patternIndex = 0;

/**
 * Redis's hllPatLen: the length of the 000…1 pattern in the element's hash above the index bits
 * (1 to Q + 1), its register index into patternIndex.
 */
function patternLength(element: Uint8Array): number {
  murmurHash64A(element, HASH_SEED);
  patternIndex = outLo & HLL_P_MASK;
  // hash >> 14, with bit Q set so the run ends: Q + 1 at most.
  const lo = ((outLo >>> HLL_P) | (outHi << (32 - HLL_P))) >>> 0;
  const hi = (outHi >>> HLL_P) | (1 << (HLL_Q - 32));
  if (lo !== 0) return 32 - Math.clz32(lo & -lo);
  return 64 - Math.clz32(hi & -hi);
}

/** The register an element raises and the value it raises it to (for tests). */
export function hllRegisterOf(element: Uint8Array): { index: number; count: number } {
  const count = patternLength(element);
  return { index: patternIndex, count };
}

// ---------------------------------------------------------------------------------------------
// Representations.

/** An HLL being changed: bytes[0, length) is its value, with room to grow in place. */
interface Hll {
  bytes: Buffer;
  length: number;
}

/** Redis's isHLLObjectOrReply, without the reply: a string of a well-formed header. */
function isHll(value: Buffer): boolean {
  if (value.length < HLL_HEADER_BYTES) return false;
  if (value[0] !== 0x48 || value[1] !== 0x59 || value[2] !== 0x4c || value[3] !== 0x4c) {
    return false; // "HYLL"
  }
  const encoding = value[4]!;
  if (encoding > HLL_MAX_ENCODING) return false;
  return encoding !== HLL_DENSE || value.length === HLL_DENSE_BYTES;
}

/** The HLL `value` holds, or the error reply for a non-HLL value. */
function hllOrReply(value: KvValue): Buffer | { reply: Buffer } {
  if (!isStringValue(value)) return { reply: WRONGTYPE };
  return isHll(value) ? value : { reply: HLL_WRONGTYPE };
}

/** Redis's createHLLObject: sparse, every register zero (one XZERO of 16384), cache 0. */
export function emptyHll(): Buffer {
  const value = Buffer.alloc(HLL_HEADER_BYTES + 2);
  value.write("HYLL", 0, "latin1");
  value[4] = HLL_SPARSE;
  const run = SPARSE_XZERO_LENGTH_MAX - 1;
  value[HLL_HEADER_BYTES] = (run >> 8) | 0x40;
  value[HLL_HEADER_BYTES + 1] = run & 0xff;
  return value;
}

/** A working copy of `value` with room for the sparse form to grow to its limit. */
function workingCopy(value: Buffer): Hll {
  const room = value[4] === HLL_SPARSE ? Math.max(value.length, HLL_SPARSE_BYTES_MAX) + 8 : 0;
  const bytes = Buffer.alloc(Math.max(value.length, room));
  value.copy(bytes);
  return { bytes, length: value.length };
}

function finished(hll: Hll): Buffer {
  return hll.length === hll.bytes.length
    ? hll.bytes
    : Buffer.from(hll.bytes.subarray(0, hll.length));
}

function invalidateCache(bytes: Buffer): void {
  bytes[CARD_TOP] = bytes[CARD_TOP]! | 0x80;
}

/** Dense register `index` of the registers at bytes[HLL_HEADER_BYTES…]. */
function denseGet(bytes: Uint8Array, index: number): number {
  const byte = HLL_HEADER_BYTES + ((index * HLL_BITS) >> 3);
  const shift = (index * HLL_BITS) & 7;
  const b0 = bytes[byte]!;
  const b1 = byte + 1 < bytes.length ? bytes[byte + 1]! : 0; // past the end: sds's NUL
  return ((b0 >> shift) | (b1 << (8 - shift))) & HLL_REGISTER_MAX;
}

function denseWrite(bytes: Uint8Array, index: number, value: number): void {
  const byte = HLL_HEADER_BYTES + ((index * HLL_BITS) >> 3);
  const shift = (index * HLL_BITS) & 7;
  bytes[byte] = (bytes[byte]! & ~(HLL_REGISTER_MAX << shift)) | (value << shift);
  if (byte + 1 < bytes.length) {
    const rest = 8 - shift;
    bytes[byte + 1] = (bytes[byte + 1]! & ~(HLL_REGISTER_MAX >> rest)) | (value >> rest);
  }
}

/** Redis's hllDenseSet: raises register `index` to `count`; 1 if it changed. */
function denseSet(bytes: Uint8Array, index: number, count: number): number {
  if (count <= denseGet(bytes, index)) return 0;
  denseWrite(bytes, index, count);
  return 1;
}

function isZero(op: number): boolean {
  return (op & 0xc0) === 0;
}
function isXzero(op: number): boolean {
  return (op & 0xc0) === 0x40;
}
function isVal(op: number): boolean {
  return (op & 0x80) !== 0;
}
function valValue(op: number): number {
  return ((op >> 2) & 0x1f) + 1;
}
function valLength(op: number): number {
  return (op & 0x3) + 1;
}
function valOp(value: number, length: number): number {
  return ((value - 1) << 2) | (length - 1) | 0x80;
}

/** Redis's hllSparseToDense; null for a corrupt sparse form (registers not exactly 16384). */
function sparseToDense(bytes: Uint8Array, length: number): Buffer | null {
  const dense = Buffer.alloc(HLL_DENSE_BYTES);
  dense.set(bytes.subarray(0, HLL_HEADER_BYTES)); // magic and cached cardinality
  dense[4] = HLL_DENSE;
  let index = 0;
  let p = HLL_HEADER_BYTES;
  while (p < length) {
    const op = bytes[p]!;
    if (isZero(op)) {
      index += (op & 0x3f) + 1;
      p++;
    } else if (isXzero(op)) {
      index += (((op & 0x3f) << 8) | (p + 1 < length ? bytes[p + 1]! : 0)) + 1;
      p += 2;
    } else {
      let run = valLength(op);
      const value = valValue(op);
      if (run + index > HLL_REGISTERS) break;
      while (run-- > 0) denseWrite(dense, index++, value);
      p++;
    }
  }
  return index === HLL_REGISTERS ? dense : null;
}

/** Turns `hll` dense and raises register `index` to `count` (Redis's promote: label). */
function promote(hll: Hll, index: number, count: number): number {
  const dense = sparseToDense(hll.bytes, hll.length);
  if (dense === null) return -1;
  hll.bytes = dense;
  hll.length = HLL_DENSE_BYTES;
  denseSet(dense, index, count);
  return 1;
}

/** A zero run of `length` as ZERO or XZERO opcodes into `out`. */
function pushZeros(out: number[], length: number): void {
  if (length > SPARSE_ZERO_LENGTH_MAX) {
    const run = length - 1;
    out.push((run >> 8) | 0x40, run & 0xff);
  } else out.push(length - 1);
}

/**
 * Redis's hllSparseSet, step for step (the bytes must come out the same): raises register
 * `index` to `count`; 1 if it changed, 0 if not, -1 for a corrupt form. Turns `hll` dense when
 * `count` passes 32 or the form would pass HLL_SPARSE_BYTES_MAX.
 */
function sparseSet(hll: Hll, index: number, count: number): number {
  if (count > SPARSE_VAL_VALUE_MAX) return promote(hll, index, count);
  const b = hll.bytes;
  let end = hll.length;
  // Step 1: the opcode covering `index`.
  let p = HLL_HEADER_BYTES;
  let first = 0;
  let prev = -1;
  let span = 0;
  while (p < end) {
    const op = b[p]!;
    let opLength = 1;
    if (isZero(op)) span = (op & 0x3f) + 1;
    else if (isVal(op)) span = valLength(op);
    else {
      span = (((op & 0x3f) << 8) | (p + 1 < end ? b[p + 1]! : 0)) + 1;
      opLength = 2;
    }
    if (index <= first + span - 1) break;
    prev = p;
    p += opLength;
    first += span;
  }
  if (span === 0 || p >= end) return -1;
  const op = b[p]!;
  const next = isXzero(op) ? p + 2 : p + 1;
  const hasNext = next < end;
  const zero = isZero(op);
  const xzero = isXzero(op);
  const run = span;
  // Step 2: a VAL already as high changes nothing; a one-register VAL or ZERO becomes the VAL.
  if (!zero && !xzero && valValue(op) >= count) return 0;
  if (run === 1 && !xzero) b[p] = valOp(count, 1);
  else {
    // The general case: split the opcode into up to three.
    const seq: number[] = [];
    const last = first + span - 1;
    if (zero || xzero) {
      if (index !== first) pushZeros(seq, index - first);
      seq.push(valOp(count, 1));
      if (index !== last) pushZeros(seq, last - index);
    } else {
      const current = valValue(op);
      if (index !== first) seq.push(valOp(current, index - first));
      seq.push(valOp(count, 1));
      if (index !== last) seq.push(valOp(current, last - index));
    }
    // Step 3: put the sequence in the opcode's place.
    const delta = seq.length - (xzero ? 2 : 1);
    if (delta > 0 && hll.length + delta > HLL_SPARSE_BYTES_MAX) return promote(hll, index, count);
    if (delta !== 0 && hasNext) b.copyWithin(next + delta, next, end);
    hll.length += delta;
    for (let i = 0; i < seq.length; i++) b[p + i] = seq[i]!;
    end += delta;
  }
  // Step 4: merge adjacent VAL opcodes of one value, scanning 5 opcodes from the previous one.
  p = prev >= 0 ? prev : HLL_HEADER_BYTES;
  let scan = 5;
  while (p < end && scan-- > 0) {
    const here = b[p]!;
    if (isXzero(here)) {
      p += 2;
      continue;
    }
    if (isZero(here)) {
      p++;
      continue;
    }
    if (p + 1 < end && isVal(b[p + 1]!)) {
      const value = valValue(here);
      if (value === valValue(b[p + 1]!)) {
        const length = valLength(here) + valLength(b[p + 1]!);
        if (length <= SPARSE_VAL_LENGTH_MAX) {
          b[p + 1] = valOp(value, length);
          b.copyWithin(p, p + 1, end);
          hll.length--;
          end--;
          continue;
        }
      }
    }
    p++;
  }
  invalidateCache(b);
  return 1;
}

/** Redis's hllAdd: 1 if a register rose, 0 if not, -1 for a corrupt HLL. */
function hllAdd(hll: Hll, element: Uint8Array): number {
  const count = patternLength(element);
  const index = patternIndex;
  if (hll.bytes[4] === HLL_DENSE) return denseSet(hll.bytes, index, count);
  return sparseSet(hll, index, count);
}

/**
 * Redis's hllMerge: raises max[i] to each register of `value` (a checked HLL); false for a
 * corrupt sparse form.
 */
function hllMerge(max: Uint8Array, value: Buffer): boolean {
  if (value[4] === HLL_DENSE) {
    for (let i = 0; i < HLL_REGISTERS; i++) {
      const register = denseGet(value, i);
      if (register > max[i]!) max[i] = register;
    }
    return true;
  }
  let i = 0;
  let p = HLL_HEADER_BYTES;
  const end = value.length;
  while (p < end) {
    const op = value[p]!;
    if (isZero(op)) {
      i += (op & 0x3f) + 1;
      p++;
    } else if (isXzero(op)) {
      i += (((op & 0x3f) << 8) | (value[p + 1] ?? 0)) + 1;
      p += 2;
    } else {
      let run = valLength(op);
      const register = valValue(op);
      if (run + i > HLL_REGISTERS) break;
      while (run-- > 0) {
        if (register > max[i]!) max[i] = register;
        i++;
      }
      p++;
    }
  }
  return i === HLL_REGISTERS;
}

// ---------------------------------------------------------------------------------------------
// Cardinality.

/** Redis's hllSigma (Ertl). */
function sigma(x: number): number {
  if (x === 1) return Number.POSITIVE_INFINITY;
  let y = 1;
  let z = x;
  let zPrime: number;
  do {
    x *= x;
    zPrime = z;
    z += x * y;
    y += y;
  } while (zPrime !== z);
  return z;
}

/** Redis's hllTau (Ertl); pow(1 - x, 2) is one rounded product, as (1 - x) * (1 - x). */
function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let zPrime: number;
  do {
    x = Math.sqrt(x);
    zPrime = z;
    y *= 0.5;
    const d = 1 - x;
    z -= d * d * y;
  } while (zPrime !== z);
  return z / 3;
}

/** Redis's hllCount's estimate from the register histogram (64 slots). */
function estimate(histogram: Int32Array): number {
  const m = HLL_REGISTERS;
  let z = m * tau((m - histogram[HLL_Q + 1]!) / m);
  for (let j = HLL_Q; j >= 1; j--) {
    z += histogram[j]!;
    z *= 0.5;
  }
  z += m * sigma(histogram[0]! / m);
  return Math.round((HLL_ALPHA_INF * m * m) / z); // llroundl: z > 0, so half rounds up
}

/** The register histogram of a checked HLL; null for a corrupt sparse form. */
function histogramOf(value: Buffer): Int32Array | null {
  const histogram = new Int32Array(64);
  if (value[4] === HLL_DENSE) {
    for (let i = 0; i < HLL_REGISTERS; i++) histogram[denseGet(value, i)]!++;
    return histogram;
  }
  let index = 0;
  let p = HLL_HEADER_BYTES;
  while (p < value.length) {
    const op = value[p]!;
    if (isZero(op)) {
      const run = (op & 0x3f) + 1;
      index += run;
      histogram[0]! += run;
      p++;
    } else if (isXzero(op)) {
      const run = (((op & 0x3f) << 8) | (value[p + 1] ?? 0)) + 1;
      index += run;
      histogram[0]! += run;
      p += 2;
    } else {
      const run = valLength(op);
      index += run;
      histogram[valValue(op)]! += run;
      p++;
    }
  }
  return index === HLL_REGISTERS ? histogram : null;
}

/** The cardinality of one register per byte (PFCOUNT of several keys). */
function rawCount(registers: Uint8Array): number {
  const histogram = new Int32Array(64);
  for (let i = 0; i < HLL_REGISTERS; i++) histogram[registers[i]!]!++;
  return estimate(histogram);
}

/** The cached cardinality (int64 LE at bytes 8-15) when valid, else null. */
function cachedCount(value: Buffer): number | bigint | null {
  if ((value[CARD_TOP]! & 0x80) !== 0) return null;
  const card = value.readBigUInt64LE(8);
  return card <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(card) : card;
}

// ---------------------------------------------------------------------------------------------
// Commands.

/** Stores `hll` as `key`'s value (a new key if `entry` is absent), keeping its TTL. */
function store(keyspace: Keyspace, key: string, entry: KvEntry | undefined, hll: Hll): void {
  const value = finished(hll);
  if (entry === undefined) keyspace.insert(key, value);
  else entry.value = value;
}

/** PFADD key [element ...]: 1 if a register rose (or the key was created), else 0. */
export const pfadd: Handler = (keyspace, args, now) => {
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  let hll: Hll;
  let updated = 0;
  if (entry === undefined) {
    hll = workingCopy(emptyHll());
    updated++;
  } else {
    const value = hllOrReply(entry.value);
    if ("reply" in value) return value.reply;
    hll = workingCopy(value);
  }
  let corrupt = false;
  for (let i = 2; i < args.length; i++) {
    const result = hllAdd(hll, args[i]!);
    if (result === -1) {
      corrupt = true; // the registers already raised stay raised, as in Redis
      break;
    }
    updated += result;
  }
  if (updated === 0) return corrupt ? ERR_INVALID_HLL : ZERO;
  if (!corrupt) invalidateCache(hll.bytes);
  const limit = keyspace.limits.valueBytesMax;
  if (hll.length > limit) return valueTooLarge(limit);
  store(keyspace, key, entry, hll);
  return corrupt ? ERR_INVALID_HLL : ONE;
};

/**
 * PFCOUNT key [key ...]: one key answers (and caches) its cardinality; several, that of their
 * union, computed without storing anything.
 */
export const pfcount: Handler = (keyspace, args, now) => {
  if (args.length > 2) {
    const max = new Uint8Array(HLL_REGISTERS);
    for (let i = 1; i < args.length; i++) {
      const entry = keyspace.lookup(latin1(args[i]!), now);
      if (entry === undefined) continue;
      const value = hllOrReply(entry.value);
      if ("reply" in value) return value.reply;
      if (!hllMerge(max, value)) return ERR_INVALID_HLL;
    }
    return integer(rawCount(max));
  }
  const entry = keyspace.lookup(latin1(args[1]!), now);
  if (entry === undefined) return ZERO;
  const value = hllOrReply(entry.value);
  if ("reply" in value) return value.reply;
  const cached = cachedCount(value);
  if (cached !== null) return integer(cached);
  const histogram = histogramOf(value);
  if (histogram === null) return ERR_INVALID_HLL;
  const count = estimate(histogram);
  // The cache lives in the value: written in place (lookup told a snapshot first).
  value.writeBigUInt64LE(BigInt(count), 8);
  return integer(count);
};

/** PFMERGE destkey [sourcekey ...]: destkey becomes the union of itself and the sources. */
export const pfmerge: Handler = (keyspace, args, now) => {
  const max = new Uint8Array(HLL_REGISTERS);
  let dense = false;
  for (let i = 1; i < args.length; i++) {
    const entry = keyspace.lookup(latin1(args[i]!), now);
    if (entry === undefined) continue;
    const value = hllOrReply(entry.value);
    if ("reply" in value) return value.reply;
    if (value[4] === HLL_DENSE) dense = true;
    if (!hllMerge(max, value)) return ERR_INVALID_HLL;
  }
  const key = latin1(args[1]!);
  const entry = keyspace.lookup(key, now);
  // Checked above as a source: an HLL whose sparse form covers every register.
  const hll = workingCopy(entry === undefined ? emptyHll() : (entry.value as Buffer));
  if (dense && hll.bytes[4] === HLL_SPARSE) {
    const converted = sparseToDense(hll.bytes, hll.length);
    if (converted === null) return ERR_INVALID_HLL;
    hll.bytes = converted;
    hll.length = HLL_DENSE_BYTES;
  }
  for (let i = 0; i < HLL_REGISTERS; i++) {
    if (max[i] === 0) continue;
    if (hll.bytes[4] === HLL_DENSE) denseSet(hll.bytes, i, max[i]!);
    else sparseSet(hll, i, max[i]!);
  }
  invalidateCache(hll.bytes);
  const limit = keyspace.limits.valueBytesMax;
  if (hll.length > limit) return valueTooLarge(limit);
  store(keyspace, key, entry, hll);
  return OK;
};

export const HLL_COMMANDS: readonly CommandSpec[] = [
  {
    name: "pfadd",
    arity: -2,
    kind: "write",
    handler: pfadd,
    flags: ["denyoom", "fast"],
    keys: KEY_1,
  },
  // A write here: it may cache the cardinality in the value (Redis: readonly, may_replicate).
  { name: "pfcount", arity: -2, kind: "write", handler: pfcount, keys: KEYS_FROM_1 },
  {
    name: "pfmerge",
    arity: -2,
    kind: "write",
    handler: pfmerge,
    flags: ["denyoom"],
    keys: KEYS_FROM_1,
  },
];

/**
 * Geo commands, as Redis 7.0: GEOADD GEOPOS GEODIST GEOHASH GEOSEARCH GEOSEARCHSTORE GEORADIUS
 * GEORADIUS_RO GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO, over sorted sets whose scores are 52-bit
 * interleaved geohashes (26 bits of longitude, 26 of latitude in [-85.05112878, 85.05112878]).
 *
 * Everything follows redis-server's geohash.c, geohash_helper.c and geo.c step for step, so that
 * replies match byte for byte: the same encoding and decoding (a score of any value decodes, as
 * its conversion to uint64 on x86-64 does), the same nine boxes around the centre (the step
 * estimate, the one-step widening, the boxes dropped outside the bounding box), members scanned
 * box by box in score order, the same distance formula, and the same sorts: glibc's stable qsort,
 * or Redis's pqsort when COUNT keeps fewer than were found (kv-sort.ts). Distances print as
 * "%.4f" and coordinates as Redis's human long double ("%.17Lf", zeros trimmed), both from the
 * exact binary value.
 *
 * One difference may remain by design: sin, cos and asin. V8's (fdlibm's) differ from glibc's in
 * the last bit for about 5% of inputs, so ours are correctly rounded (double-double arithmetic,
 * below); glibc 2.36's are not in about 0.1% of inputs, which leaves about 0.2% of distances
 * different in their last bit: visible in STOREDIST's scores (17 digits), never seen in "%.4f"
 * (100,000 random pairs), and able to move a point only when it lies within an ulp of the radius.
 * Every replica computes the same.
 */
import { type CommandSpec, KEY_1, KEYS_1_2, type KeySpec } from "./kv-command-spec.ts";
import { type Keyspace, KvZset, type ZItem } from "./kv-keyspace.ts";
import { parseScore } from "./kv-scores.ts";
import {
  checkReplySize,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  type Handler,
  isReply,
  latin1,
  parseInt64,
  upper,
  WRONGTYPE,
} from "./kv-shared.ts";
import { pqsort } from "./kv-sort.ts";
import { zadd } from "./kv-zsets.ts";
import { formatLongDouble } from "./long-double.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkSize,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_ARRAY,
  NULL_BULK,
  ZERO,
} from "./resp.ts";

export const GEO_STEP_MAX = 26;
export const GEO_LAT_MIN = -85.05112878;
export const GEO_LAT_MAX = 85.05112878;
export const GEO_LONG_MIN = -180;
export const GEO_LONG_MAX = 180;

const D_R = Math.PI / 180.0;
/** Earth's quadratic mean radius for WGS-84, meters (geohash_helper.c). */
const EARTH_RADIUS_IN_METERS = 6372797.560856;
const MERCATOR_MAX = 20037726.37;

const ERR_NOT_FLOAT = errorReply("ERR value is not a valid float");
const ERR_UNIT = errorReply("ERR unsupported unit provided. please use M, KM, FT, MI");
const ERR_NO_MEMBER = errorReply("ERR could not decode requested zset member");

// ---------------------------------------------------------------------------------------------
// Exact formatting of doubles.

const U64 = (1n << 64n) - 1n;

/** A finite double as mant × 2^exp exactly (mant ≥ 0), and its sign. */
function doubleParts(value: number): { negative: boolean; mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (biased === 0) return { negative, mant: fraction, exp: -1074 };
  return { negative, mant: fraction | (1n << 52n), exp: biased - 1075 };
}

/** printf's "%.<digits>f" of a double: the exact value rounded half to even; "inf", "-inf". */
export function formatFixed(value: number, digits: number): string {
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  // toFixed is exact too, but rounds a tie up, not to even. A tie needs value × 2^(digits+1) to
  // be an integer (value × 10^digits then ends in .5 exactly); otherwise toFixed is printf's.
  if (Math.abs(value) < 1e21 && !Number.isInteger(value * 2 ** (digits + 1))) {
    return Object.is(value, -0) ? `-${value.toFixed(digits)}` : value.toFixed(digits);
  }
  const { negative, mant, exp } = doubleParts(value);
  const scale = 10n ** BigInt(digits);
  let q: bigint;
  if (exp >= 0) q = (mant << BigInt(exp)) * scale;
  else {
    const shift = BigInt(-exp);
    const scaled = mant * scale;
    q = scaled >> shift;
    const twice = (scaled - (q << shift)) * 2n;
    const unit = 1n << shift;
    if (twice > unit || (twice === unit && (q & 1n) === 1n)) q++;
  }
  const whole = (q / scale).toString();
  const text = digits === 0 ? whole : `${whole}.${(q % scale).toString().padStart(digits, "0")}`;
  return negative ? `-${text}` : text;
}

/** Redis's addReplyHumanLongDouble of a double: "%.17Lf" of its exact value, zeros trimmed. */
export function formatCoordinate(value: number): string {
  const { negative, mant, exp } = doubleParts(value);
  return formatLongDouble({ negative, infinite: false, mant, exp });
}

/** Redis's addReplyDoubleDistance: "%.4f". */
function distanceText(meters: number): string {
  return formatFixed(meters, 4);
}

// ---------------------------------------------------------------------------------------------
// sin, cos and asin as glibc's: correctly rounded. V8's (fdlibm's) differ from glibc's in the
// last bit for several percent of inputs, which shows in STOREDIST's scores and could move a
// point across a radius; glibc's round correctly in all but a vanishing fraction of cases. So
// these evaluate in double-double arithmetic (about 106 bits) and round once.

/** The result of the double-double helpers below: hi + lo, |lo| <= ulp(hi) / 2. */
let ddHi = 0;
let ddLo = 0;

/** 2^27 + 1: Veltkamp's splitter, so products of halves are exact without FMA. */
const SPLITTER = 134217729;

/** ddHi + ddLo = a + b exactly. */
function twoSum(a: number, b: number): void {
  const s = a + b;
  const bb = s - a;
  ddHi = s;
  ddLo = a - (s - bb) + (b - bb);
}

/** ddHi + ddLo = a × b exactly. */
function twoProd(a: number, b: number): void {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  ddHi = p;
  ddLo = ah * bh - p + ah * bl + al * bh + al * bl;
}

/** (ah, al) + (bh, bl). */
function ddAdd(ah: number, al: number, bh: number, bl: number): void {
  twoSum(ah, bh);
  let s = ddHi;
  let e = ddLo;
  twoSum(al, bl);
  const t = ddHi;
  const f = ddLo;
  e += t;
  let h = s + e;
  e -= h - s;
  s = h;
  e += f;
  h = s + e;
  ddLo = e - (h - s);
  ddHi = h;
}

/** (ah, al) × (bh, bl). */
function ddMul(ah: number, al: number, bh: number, bl: number): void {
  twoProd(ah, bh);
  const p = ddHi;
  const e = ddLo + (ah * bl + al * bh);
  const h = p + e;
  ddLo = e - (h - p);
  ddHi = h;
}

/** (ah, al) / (bh, bl): a quotient and one correction. */
function ddDiv(ah: number, al: number, bh: number, bl: number): void {
  const q1 = ah / bh;
  ddMul(bh, bl, q1, 0);
  ddAdd(ah, al, -ddHi, -ddLo);
  const q2 = ddHi / bh;
  twoSum(q1, q2);
}

/** num / den as a double-double (hi the nearest double, lo the nearest to the rest). */
function ddRational(num: bigint, den: bigint): [number, number] {
  const scale = 400n;
  const scaled = (num << scale) / den;
  const hi = Number(scaled) / 2 ** 400;
  const rest = scaled - BigInt(hi * 2 ** 200) * 2n ** 200n;
  return [hi, Number(rest) / 2 ** 400];
}

/** π/2 in four doubles (about 215 bits). */
const PIO2_1 = 1.5707963267948966;
const PIO2_2 = 6.123233995736766e-17;
const PIO2_3 = -1.4973849048591698e-33;
const PIO2_4 = 5.562271104316826e-50;
/** Beyond this the reduction below loses precision (and no search needs it). */
const REDUCTION_MAX = 2 ** 20;

/**
 * Taylor coefficients of sin r / r and cos r in r², (-1)^n / (2n+1)! and (-1)^n / (2n)!, as
 * double-doubles (hi, lo pairs), enough for |r| <= π/4; and their magnitudes, to stop early.
 */
const SIN_TERMS = new Float64Array(32);
const COS_TERMS = new Float64Array(32);
const TERMS_MAX = 16;
{
  let factorial = 1n;
  for (let n = 1; n <= 2 * TERMS_MAX; n++) {
    factorial *= BigInt(n);
    const [hi, lo] = ddRational(1n, factorial);
    const sign = (n >> 1) % 2 === 1 ? -1 : 1;
    const terms = n % 2 === 1 ? SIN_TERMS : COS_TERMS;
    const at = n % 2 === 1 ? (n - 1) / 2 : n / 2;
    terms[2 * at] = sign * hi;
    terms[2 * at + 1] = sign * lo;
  }
  COS_TERMS[0] = 1;
  COS_TERMS[1] = 0;
}
/** A term below this (relative to the sum's leading 1) cannot change the rounded result. */
const TERM_NEGLIGIBLE = 2 ** -116;

/**
 * Σ terms[n] × r2^n by Horner's rule, into ddHi/ddLo, from the last term that matters for this r2
 * (a small argument needs few).
 */
function series(terms: Float64Array, r2h: number, r2l: number): void {
  let count = 1;
  for (let power = r2h; count < TERMS_MAX; count++, power *= r2h) {
    if (power * Math.abs(terms[2 * count]!) < TERM_NEGLIGIBLE) break;
  }
  let ph = terms[2 * count - 2]!;
  let pl = terms[2 * count - 1]!;
  for (let n = count - 2; n >= 0; n--) {
    ddMul(ph, pl, r2h, r2l);
    ddAdd(ddHi, ddLo, terms[2 * n]!, terms[2 * n + 1]!);
    ph = ddHi;
    pl = ddLo;
  }
  ddHi = ph;
  ddLo = pl;
}

/** sin(x) and cos(x) of the last ddSinCos, as double-doubles (only those it was asked for). */
let sinHi = 0;
let sinLo = 0;
let cosHi = 0;
let cosLo = 0;

/**
 * sin and/or cos of (xh, xl), |x| <= REDUCTION_MAX, into sinHi/sinLo and cosHi/cosLo: one
 * reduction by π/2, then the series of sin r and cos r that the quadrant needs.
 */
function ddSinCos(xh: number, xl: number, wantSin: boolean, wantCos: boolean): void {
  const k = Math.round(xh / PIO2_1);
  let rh = xh;
  let rl = xl;
  if (k !== 0) {
    twoProd(k, PIO2_1);
    ddAdd(rh, rl, -ddHi, -ddLo);
    rh = ddHi;
    rl = ddLo;
    twoProd(k, PIO2_2);
    ddAdd(rh, rl, -ddHi, -ddLo);
    rh = ddHi;
    rl = ddLo;
    twoProd(k, PIO2_3);
    ddAdd(rh, rl, -ddHi, -ddLo - k * PIO2_4);
    rh = ddHi;
    rl = ddLo;
  }
  // x = r + kπ/2: sin x = [sin r, cos r, -sin r, -cos r][k mod 4], cos x one quadrant on.
  const quadrant = ((k % 4) + 4) % 4;
  const odd = quadrant % 2 === 1;
  const needSinR = odd ? wantCos : wantSin;
  const needCosR = odd ? wantSin : wantCos;
  ddMul(rh, rl, rh, rl);
  const r2h = ddHi;
  const r2l = ddLo;
  let sh = 0;
  let sl = 0;
  let ch = 0;
  let cl = 0;
  if (needSinR) {
    series(SIN_TERMS, r2h, r2l);
    ddMul(ddHi, ddLo, rh, rl);
    sh = ddHi;
    sl = ddLo;
  }
  if (needCosR) {
    series(COS_TERMS, r2h, r2l);
    ch = ddHi;
    cl = ddLo;
  }
  if (quadrant === 0) {
    sinHi = sh;
    sinLo = sl;
    cosHi = ch;
    cosLo = cl;
  } else if (quadrant === 1) {
    sinHi = ch;
    sinLo = cl;
    cosHi = -sh;
    cosLo = -sl;
  } else if (quadrant === 2) {
    sinHi = -sh;
    sinLo = -sl;
    cosHi = -ch;
    cosLo = -cl;
  } else {
    sinHi = -ch;
    sinLo = -cl;
    cosHi = sh;
    cosLo = sl;
  }
}

/** sin(x), correctly rounded (|x| < 2^-26: x itself, sign of zero kept). */
export function sinRounded(x: number): number {
  if (Math.abs(x) < 2 ** -26) return x;
  if (!(Math.abs(x) <= REDUCTION_MAX)) return Math.sin(x);
  ddSinCos(x, 0, true, false);
  return sinHi + sinLo;
}

/**
 * The last two cosRounded arguments and results, the older replaced first: a search takes its
 * centre's cosine with every point's.
 */
const cosArguments = [0, 0];
const cosResults = [1, 1];
let cosOlder = 0;

/** cos(x), correctly rounded. */
export function cosRounded(x: number): number {
  if (x === cosArguments[0]) return cosResults[0]!;
  if (x === cosArguments[1]) return cosResults[1]!;
  let result: number;
  if (Math.abs(x) < 2 ** -27) result = 1;
  else if (!(Math.abs(x) <= REDUCTION_MAX)) result = Math.cos(x);
  else {
    ddSinCos(x, 0, false, true);
    result = cosHi + cosLo;
  }
  cosArguments[cosOlder] = x;
  cosResults[cosOlder] = result;
  cosOlder ^= 1;
  return result;
}

/** Past this |y|, asin's slope is steep enough that one Newton step may not settle the last bit. */
const ASIN_STEEP = 0.999;

/**
 * asin(y), correctly rounded: V8's estimate (within an ulp), then Newton steps on sin in
 * double-double: one leaves an error of about tan(a) × ulp², two near ±1.
 */
export function asinRounded(y: number): number {
  if (!(Math.abs(y) <= 1)) return Number.NaN;
  if (Math.abs(y) < 2 ** -26) return y;
  if (Math.abs(y) === 1) return y * PIO2_1;
  let ah = Math.asin(y);
  let al = 0;
  const steps = Math.abs(y) > ASIN_STEEP ? 2 : 1;
  for (let step = 0; step < steps; step++) {
    ddSinCos(ah, al, true, true);
    const ch = cosHi;
    const cl = cosLo;
    ddAdd(y, 0, -sinHi, -sinLo);
    ddDiv(ddHi, ddLo, ch, cl);
    ddAdd(ah, al, ddHi, ddLo);
    ah = ddHi;
    al = ddLo;
  }
  return ah + al;
}

// ---------------------------------------------------------------------------------------------
// geohash.c

/** A geohash of `step` bits per coordinate (2 × step bits), as Redis's GeoHashBits. */
export interface HashBits {
  readonly bits: bigint;
  readonly step: number;
}

interface Range {
  readonly min: number;
  readonly max: number;
}

interface Area {
  readonly longitude: Range;
  readonly latitude: Range;
}

const LONG_RANGE: Range = { min: GEO_LONG_MIN, max: GEO_LONG_MAX };
const LAT_RANGE: Range = { min: GEO_LAT_MIN, max: GEO_LAT_MAX };
const ZERO_HASH: HashBits = { bits: 0n, step: 0 };

const EVEN_BITS = 0x5555555555555555n;
const ODD_BITS = 0xaaaaaaaaaaaaaaaan;

/** Bits of a uint32 spread to the even positions of a uint64. */
function spread(value: number): bigint {
  let out = 0n;
  for (let i = 0; i < 32; i++) if ((value >>> i) & 1) out |= 1n << BigInt(2 * i);
  return out;
}

/** The even positions of a uint64 packed into a uint32. */
function squash(value: bigint): number {
  let out = 0;
  for (let i = 0; i < 32; i++) if ((value >> BigInt(2 * i)) & 1n) out += 2 ** i;
  return out;
}

/** A C conversion of a non-negative double to uint32_t (truncation; in range here). */
function toUint32(value: number): number {
  return Math.trunc(value) >>> 0;
}

/** geohashEncode: latitude in the even bits, longitude in the odd ones. Null out of range. */
function geohashEncode(
  longRange: Range,
  latRange: Range,
  longitude: number,
  latitude: number,
  step: number,
): HashBits | null {
  if (
    longitude > GEO_LONG_MAX ||
    longitude < GEO_LONG_MIN ||
    latitude > GEO_LAT_MAX ||
    latitude < GEO_LAT_MIN
  ) {
    return null;
  }
  if (
    latitude < latRange.min ||
    latitude > latRange.max ||
    longitude < longRange.min ||
    longitude > longRange.max
  ) {
    return null;
  }
  let latOffset = (latitude - latRange.min) / (latRange.max - latRange.min);
  let longOffset = (longitude - longRange.min) / (longRange.max - longRange.min);
  latOffset *= 2 ** step;
  longOffset *= 2 ** step;
  return { bits: spread(toUint32(latOffset)) | (spread(toUint32(longOffset)) << 1n), step };
}

function geohashDecode(longRange: Range, latRange: Range, hash: HashBits): Area {
  return cellArea(longRange, latRange, squash(hash.bits >> 1n), squash(hash.bits), hash.step);
}

/** The area of cell (ilono, ilato) at `step` bits per coordinate (geohashDecode's arithmetic). */
function cellArea(
  longRange: Range,
  latRange: Range,
  ilono: number,
  ilato: number,
  step: number,
): Area {
  const latScale = latRange.max - latRange.min;
  const longScale = longRange.max - longRange.min;
  const cells = 2 ** step;
  // (ilato + 1) is uint32 arithmetic in Redis: it wraps.
  return {
    latitude: {
      min: latRange.min + (ilato / cells) * latScale,
      max: latRange.min + (((ilato + 1) >>> 0) / cells) * latScale,
    },
    longitude: {
      min: longRange.min + (ilono / cells) * longScale,
      max: longRange.min + (((ilono + 1) >>> 0) / cells) * longScale,
    },
  };
}

/** The centre of a decoded area, clamped to the valid range: [longitude, latitude]. */
function areaCentre(area: Area): [number, number] {
  let x = (area.longitude.min + area.longitude.max) / 2;
  if (x > GEO_LONG_MAX) x = GEO_LONG_MAX;
  if (x < GEO_LONG_MIN) x = GEO_LONG_MIN;
  let y = (area.latitude.min + area.latitude.max) / 2;
  if (y > GEO_LAT_MAX) y = GEO_LAT_MAX;
  if (y < GEO_LAT_MIN) y = GEO_LAT_MIN;
  return [x, y];
}

/**
 * A score as x86-64's (uint64_t) conversion of a double gives it: truncation, negatives wrapping,
 * and 2^63 (below -2^63) or 0 (at or above 2^64) beyond.
 */
export function scoreBits(score: number): bigint {
  const two63 = 2 ** 63;
  if (!(score >= two63)) {
    if (!(score > -two63)) return 1n << 63n; // cvttsd2si's "integer indefinite", NaN too
    return BigInt(Math.trunc(score)) & U64;
  }
  const low = score - two63;
  if (low >= two63) return 0n;
  return BigInt(Math.trunc(low)) ^ (1n << 63n);
}

/** The even bits of a uint32 packed into its low 16 bits. */
function squash32(value: number): number {
  let x = value & 0x55555555;
  x = (x | (x >>> 1)) & 0x33333333;
  x = (x | (x >>> 2)) & 0x0f0f0f0f;
  x = (x | (x >>> 4)) & 0x00ff00ff;
  x = (x | (x >>> 8)) & 0x0000ffff;
  return x;
}

const TWO_32 = 2 ** 32;
const TWO_64 = 2 ** 64;

/**
 * decodeGeohash: the [longitude, latitude] a sorted-set score stands for (any score decodes). A
 * score in [0, 2^64) takes 32-bit integer arithmetic; others the exact uint64 conversion.
 */
export function decodeScore(score: number): [number, number] {
  let high: number;
  let low: number;
  if (score >= 0 && score < TWO_64) {
    const bits = Math.trunc(score);
    high = Math.floor(bits / TWO_32);
    low = bits - high * TWO_32;
  } else {
    const bits = scoreBits(score);
    high = Number(bits >> 32n);
    low = Number(bits & 0xffffffffn);
  }
  const ilato = (squash32(low) | (squash32(high) << 16)) >>> 0;
  const ilono = (squash32(low >>> 1) | (squash32(high >>> 1) << 16)) >>> 0;
  return areaCentre(cellArea(LONG_RANGE, LAT_RANGE, ilono, ilato, GEO_STEP_MAX));
}

/** The 52-bit score of a valid position (GEOADD's). */
export function encodeScore(longitude: number, latitude: number): number {
  const hash = geohashEncode(LONG_RANGE, LAT_RANGE, longitude, latitude, GEO_STEP_MAX);
  return hash === null ? 0 : Number(align52(hash));
}

function align52(hash: HashBits): bigint {
  return hash.bits << BigInt(52 - hash.step * 2);
}

function moveX(hash: HashBits, d: number): HashBits {
  if (d === 0) return hash;
  let x = hash.bits & ODD_BITS;
  const y = hash.bits & EVEN_BITS;
  const zz = EVEN_BITS >> BigInt(64 - hash.step * 2);
  if (d > 0) x = (x + (zz + 1n)) & U64;
  else {
    x |= zz;
    x = (x - (zz + 1n)) & U64;
  }
  x &= ODD_BITS >> BigInt(64 - hash.step * 2);
  return { bits: x | y, step: hash.step };
}

function moveY(hash: HashBits, d: number): HashBits {
  if (d === 0) return hash;
  const x = hash.bits & ODD_BITS;
  let y = hash.bits & EVEN_BITS;
  const zz = ODD_BITS >> BigInt(64 - hash.step * 2);
  if (d > 0) y = (y + (zz + 1n)) & U64;
  else {
    y |= zz;
    y = (y - (zz + 1n)) & U64;
  }
  y &= EVEN_BITS >> BigInt(64 - hash.step * 2);
  return { bits: x | y, step: hash.step };
}

interface Neighbors {
  north: HashBits;
  south: HashBits;
  east: HashBits;
  west: HashBits;
  northEast: HashBits;
  northWest: HashBits;
  southEast: HashBits;
  southWest: HashBits;
}

function geohashNeighbors(hash: HashBits): Neighbors {
  const at = (dx: number, dy: number) => moveY(moveX(hash, dx), dy);
  return {
    east: at(1, 0),
    west: at(-1, 0),
    south: at(0, -1),
    north: at(0, 1),
    northWest: at(-1, 1),
    northEast: at(1, 1),
    southEast: at(1, -1),
    southWest: at(-1, -1),
  };
}

// ---------------------------------------------------------------------------------------------
// geohash_helper.c

function degRad(angle: number): number {
  return angle * D_R;
}

function radDeg(angle: number): number {
  return angle / D_R;
}

/** geohashEstimateStepsByRadius: the step of the nine boxes for a search of `meters`. */
function estimateSteps(meters: number, latitude: number): number {
  if (meters === 0) return 26;
  let step = 1;
  while (meters < MERCATOR_MAX) {
    meters *= 2;
    step++;
  }
  step -= 2;
  if (latitude > 66 || latitude < -66) {
    step--;
    if (latitude > 80 || latitude < -80) step--;
  }
  if (step < 1) step = 1;
  if (step > 26) step = 26;
  return step;
}

/** A search area: a circle (radius) or an axis-aligned box (width, height), in `conversion` units. */
interface GeoShape {
  circle: boolean;
  longitude: number;
  latitude: number;
  /** Meters per unit. */
  conversion: number;
  radius: number;
  width: number;
  height: number;
}

/** geohashBoundingBox: [min longitude, min latitude, max longitude, max latitude]. */
function boundingBox(shape: GeoShape): [number, number, number, number] {
  const { longitude, latitude } = shape;
  const height = shape.conversion * (shape.circle ? shape.radius : shape.height / 2);
  const width = shape.conversion * (shape.circle ? shape.radius : shape.width / 2);
  const latDelta = radDeg(height / EARTH_RADIUS_IN_METERS);
  const longDeltaTop = radDeg(
    width / EARTH_RADIUS_IN_METERS / cosRounded(degRad(latitude + latDelta)),
  );
  const longDeltaBottom = radDeg(
    width / EARTH_RADIUS_IN_METERS / cosRounded(degRad(latitude - latDelta)),
  );
  const southern = latitude < 0;
  return [
    southern ? longitude - longDeltaBottom : longitude - longDeltaTop,
    latitude - latDelta,
    southern ? longitude + longDeltaBottom : longitude + longDeltaTop,
    latitude + latDelta,
  ];
}

/** The centre box and its eight neighbours to scan; zero hashes are skipped. */
interface SearchAreas {
  readonly hash: HashBits;
  readonly neighbors: Neighbors;
}

/** geohashCalculateAreasByShapeWGS84. */
function searchAreas(shape: GeoShape): SearchAreas {
  const [minLon, minLat, maxLon, maxLat] = boundingBox(shape);
  const { longitude, latitude } = shape;
  let radiusMeters = shape.circle
    ? shape.radius
    : Math.sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2));
  radiusMeters *= shape.conversion;
  let steps = estimateSteps(radiusMeters, latitude);
  let hash = geohashEncode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps) ?? ZERO_HASH;
  let neighbors = geohashNeighbors(hash);
  let area = geohashDecode(LONG_RANGE, LAT_RANGE, hash);
  // Near a box's edge the estimated step may not cover the area: one step wider then.
  const north = geohashDecode(LONG_RANGE, LAT_RANGE, neighbors.north);
  const south = geohashDecode(LONG_RANGE, LAT_RANGE, neighbors.south);
  const east = geohashDecode(LONG_RANGE, LAT_RANGE, neighbors.east);
  const west = geohashDecode(LONG_RANGE, LAT_RANGE, neighbors.west);
  const decrease =
    north.latitude.max < maxLat ||
    south.latitude.min > minLat ||
    east.longitude.max < maxLon ||
    west.longitude.min > minLon;
  if (steps > 1 && decrease) {
    steps--;
    hash = geohashEncode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps) ?? ZERO_HASH;
    neighbors = geohashNeighbors(hash);
    area = geohashDecode(LONG_RANGE, LAT_RANGE, hash);
  }
  // Drop the boxes that lie wholly outside the bounding box.
  if (steps >= 2) {
    if (area.latitude.min < minLat) {
      neighbors.south = ZERO_HASH;
      neighbors.southWest = ZERO_HASH;
      neighbors.southEast = ZERO_HASH;
    }
    if (area.latitude.max > maxLat) {
      neighbors.north = ZERO_HASH;
      neighbors.northEast = ZERO_HASH;
      neighbors.northWest = ZERO_HASH;
    }
    if (area.longitude.min < minLon) {
      neighbors.west = ZERO_HASH;
      neighbors.southWest = ZERO_HASH;
      neighbors.northWest = ZERO_HASH;
    }
    if (area.longitude.max > maxLon) {
      neighbors.east = ZERO_HASH;
      neighbors.southEast = ZERO_HASH;
      neighbors.northEast = ZERO_HASH;
    }
  }
  return { hash, neighbors };
}

/** geohashGetDistance: the haversine great-circle distance, meters. */
export function geoDistance(lon1d: number, lat1d: number, lon2d: number, lat2d: number): number {
  const lat1r = degRad(lat1d);
  const lon1r = degRad(lon1d);
  const lat2r = degRad(lat2d);
  const lon2r = degRad(lon2d);
  const u = sinRounded((lat2r - lat1r) / 2);
  const v = sinRounded((lon2r - lon1r) / 2);
  // v = 0 (one longitude): the cosines' term is +0, so they need not be computed.
  const along = v === 0 ? 0 : cosRounded(lat1r) * cosRounded(lat2r) * v * v;
  return 2.0 * EARTH_RADIUS_IN_METERS * asinRounded(Math.sqrt(u * u + along));
}

/** The distance from the shape's centre to (x, y) if within the shape, else null. */
function distanceIfWithin(shape: GeoShape, x: number, y: number): number | null {
  if (shape.circle) {
    const distance = geoDistance(shape.longitude, shape.latitude, x, y);
    return distance > shape.radius * shape.conversion ? null : distance;
  }
  // geohashGetDistanceIfInRectangle: each axis's distance within half the box.
  const width = shape.width * shape.conversion;
  const height = shape.height * shape.conversion;
  const lonDistance = geoDistance(x, y, shape.longitude, y);
  const latDistance = geoDistance(x, y, x, shape.latitude);
  if (lonDistance > width / 2 || latDistance > height / 2) return null;
  return geoDistance(shape.longitude, shape.latitude, x, y);
}

// ---------------------------------------------------------------------------------------------
// geo.c

/** A member found within the shape. */
interface GeoPoint {
  readonly member: string;
  readonly score: number;
  readonly longitude: number;
  readonly latitude: number;
  /** Meters until the reply divides it by the unit. */
  dist: number;
}

/** Appends the members with min <= score < max inside the shape; stops at `limit` (0: none). */
function pointsInRange(
  zset: KvZset,
  min: number,
  max: number,
  shape: GeoShape,
  found: GeoPoint[],
  limit: number,
): void {
  const items = zset.items;
  for (let i = zset.firstAbove(min, false); i < items.length; i++) {
    const item = items[i]!;
    if (!(item.score < max)) break;
    const [longitude, latitude] = decodeScore(item.score);
    const dist = distanceIfWithin(shape, longitude, latitude);
    if (dist !== null) {
      found.push({ member: item.member, score: item.score, longitude, latitude, dist });
    }
    if (found.length > 0 && limit > 0 && found.length >= limit) break;
  }
}

/** membersOfAllNeighbors: the centre box, then N S E W NE NW SE SW, skipping repeats. */
function membersOfAllNeighbors(
  zset: KvZset,
  areas: SearchAreas,
  shape: GeoShape,
  limit: number,
): GeoPoint[] {
  const n = areas.neighbors;
  const boxes = [
    areas.hash,
    n.north,
    n.south,
    n.east,
    n.west,
    n.northEast,
    n.northWest,
    n.southEast,
    n.southWest,
  ];
  const found: GeoPoint[] = [];
  let lastProcessed = 0;
  for (let i = 0; i < boxes.length; i++) {
    const box = boxes[i]!;
    if (box.bits === 0n && box.step === 0) continue;
    // Huge radii make adjacent boxes the same: scan each once.
    const last = boxes[lastProcessed]!;
    if (lastProcessed !== 0 && box.bits === last.bits && box.step === last.step) continue;
    if (found.length > 0 && limit > 0 && found.length >= limit) break;
    const min = Number(align52(box));
    const max = Number(align52({ bits: box.bits + 1n, step: box.step }));
    pointsInRange(zset, min, max, shape, found, limit);
    lastProcessed = i;
  }
  return found;
}

/** The sorted set at `key`, undefined when absent, or WRONGTYPE. */
function readZset(keyspace: Keyspace, key: string, now: number): KvZset | undefined | Buffer {
  const entry = keyspace.lookup(key, now);
  if (entry === undefined) return undefined;
  return entry.value instanceof KvZset ? entry.value : WRONGTYPE;
}

/** extractLongLatOrReply: a valid [longitude, latitude] or the error. */
function parseLonLat(lonArg: Buffer, latArg: Buffer): [number, number] | Buffer {
  const longitude = parseScore(latin1(lonArg));
  if (longitude === null) return ERR_NOT_FLOAT;
  const latitude = parseScore(latin1(latArg));
  if (latitude === null) return ERR_NOT_FLOAT;
  if (
    longitude < GEO_LONG_MIN ||
    longitude > GEO_LONG_MAX ||
    latitude < GEO_LAT_MIN ||
    latitude > GEO_LAT_MAX
  ) {
    return errorReply(
      `ERR invalid longitude,latitude pair ${formatFixed(longitude, 6)},${formatFixed(latitude, 6)}`,
    );
  }
  return [longitude, latitude];
}

/** extractUnitOrReply: meters per unit (case-insensitive m, km, ft, mi), or the error. */
function parseUnit(arg: Buffer): number | Buffer {
  switch (latin1(arg).toLowerCase()) {
    case "m":
      return 1;
    case "km":
      return 1000;
    case "ft":
      return 0.3048;
    case "mi":
      return 1609.34;
    default:
      return ERR_UNIT;
  }
}

/** A double argument as getDoubleFromObjectOrReply reads it, or the error `message` names. */
function parseDouble(arg: Buffer, message: string): number | Buffer {
  const value = parseScore(latin1(arg));
  return value === null ? errorReply(`ERR ${message}`) : value;
}

/** extractDistanceOrReply: radius and unit. */
function parseRadius(args: readonly Buffer[], at: number, shape: GeoShape): Buffer | undefined {
  const radius = parseDouble(args[at]!, "need numeric radius");
  if (isReply(radius)) return radius;
  if (radius < 0) return errorReply("ERR radius cannot be negative");
  shape.radius = radius;
  const unit = parseUnit(args[at + 1]!);
  if (isReply(unit)) return unit;
  shape.conversion = unit;
  return undefined;
}

/** extractBoxOrReply: width, height and unit. */
function parseBox(args: readonly Buffer[], at: number, shape: GeoShape): Buffer | undefined {
  const width = parseDouble(args[at]!, "need numeric width");
  if (isReply(width)) return width;
  const height = parseDouble(args[at + 1]!, "need numeric height");
  if (isReply(height)) return height;
  if (height < 0 || width < 0) return errorReply("ERR height or width cannot be negative");
  shape.width = width;
  shape.height = height;
  const unit = parseUnit(args[at + 2]!);
  if (isReply(unit)) return unit;
  shape.conversion = unit;
  return undefined;
}

/** GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the encoded scores. */
export const geoadd: Handler = (keyspace, args, now, context) => {
  let xx = false;
  let nx = false;
  let at = 2;
  for (; at < args.length; at++) {
    const option = upper(args[at]!);
    if (option === "NX") nx = true;
    else if (option === "XX") xx = true;
    else if (option !== "CH") break;
  }
  if ((args.length - at) % 3 !== 0 || (xx && nx)) return ERR_SYNTAX;
  const zaddArgs: Buffer[] = [Buffer.from("zadd"), ...args.slice(1, at)];
  for (let i = at; i < args.length; i += 3) {
    const position = parseLonLat(args[i]!, args[i + 1]!);
    if (isReply(position)) return position;
    zaddArgs.push(Buffer.from(String(encodeScore(position[0], position[1]))), args[i + 2]!);
  }
  return zadd(keyspace, zaddArgs, now, context);
};

/** GEOPOS key member [...]: each member's [longitude, latitude], or a null array. */
export const geopos: Handler = (keyspace, args, now) => {
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (isReply(zset)) return zset;
  const replies: (string[] | null)[] = [];
  let size = arrayHeaderSize(args.length - 2);
  for (let j = 2; j < args.length; j++) {
    const score = zset?.scores.get(latin1(args[j]!));
    if (score === undefined) {
      replies.push(null);
      size += NULL_ARRAY.length;
      continue;
    }
    const pair = decodeScore(score).map(formatCoordinate);
    replies.push(pair);
    size += arrayHeaderSize(2) + bulkSize(pair[0]!.length) + bulkSize(pair[1]!.length);
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(replies.map((pair) => (pair === null ? NULL_ARRAY : array(pair.map(bulk)))));
};

/** GEODIST key member1 member2 [unit]: "%.4f", or null when either is missing. */
export const geodist: Handler = (keyspace, args, now) => {
  let toMeters = 1;
  if (args.length === 5) {
    const unit = parseUnit(args[4]!);
    if (isReply(unit)) return unit;
    toMeters = unit;
  } else if (args.length > 5) return ERR_SYNTAX;
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (zset === undefined) return NULL_BULK;
  if (isReply(zset)) return zset;
  const score1 = zset.scores.get(latin1(args[2]!));
  const score2 = zset.scores.get(latin1(args[3]!));
  if (score1 === undefined || score2 === undefined) return NULL_BULK;
  const [x1, y1] = decodeScore(score1);
  const [x2, y2] = decodeScore(score2);
  return bulk(distanceText(geoDistance(x1, y1, x2, y2) / toMeters));
};

const GEO_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz";
/** Bytes of an 11-character geohash's bulk reply. */
const GEOHASH_SIZE = bulkSize(11);

/** The standard 11-character geohash (-90..90 latitudes, the last character always "0"). */
function geohashString(score: number): string {
  const [longitude, latitude] = decodeScore(score);
  const hash = geohashEncode(
    { min: -180, max: 180 },
    { min: -90, max: 90 },
    longitude,
    latitude,
    26,
  );
  const bits = hash?.bits ?? 0n;
  let out = "";
  for (let i = 0; i < 11; i++) {
    const index = i === 10 ? 0 : Number((bits >> BigInt(52 - (i + 1) * 5)) & 0x1fn);
    out += GEO_ALPHABET[index];
  }
  return out;
}

/** GEOHASH key member [...]: each member's geohash, or a null bulk. */
export const geohash: Handler = (keyspace, args, now) => {
  const zset = readZset(keyspace, latin1(args[1]!), now);
  if (isReply(zset)) return zset;
  const scores = args.slice(2).map((arg) => zset?.scores.get(latin1(arg)));
  let size = arrayHeaderSize(scores.length);
  for (const score of scores) size += score === undefined ? NULL_BULK.length : GEOHASH_SIZE;
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(
    scores.map((score) => (score === undefined ? NULL_BULK : bulk(geohashString(score)))),
  );
};

// ---------------------------------------------------------------------------------------------
// GEORADIUS, GEORADIUSBYMEMBER, GEOSEARCH, GEOSEARCHSTORE: Redis's georadiusGeneric.

/** Which command: georadiusGeneric's flags. */
interface SearchKind {
  /** GEORADIUS(_RO): longitude latitude radius unit follow the key. */
  readonly coords: boolean;
  /** GEORADIUSBYMEMBER(_RO): member radius unit follow the key. */
  readonly member: boolean;
  /** The _RO variants: no STORE or STOREDIST. */
  readonly noStore: boolean;
  /** GEOSEARCH(STORE): FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX options. */
  readonly search: boolean;
  /** GEOSEARCHSTORE: destination then source; STOREDIST is a flag. */
  readonly searchStore: boolean;
}

const GEORADIUS: SearchKind = {
  coords: true,
  member: false,
  noStore: false,
  search: false,
  searchStore: false,
};
const GEORADIUSBYMEMBER: SearchKind = { ...GEORADIUS, coords: false, member: true };
const GEOSEARCH: SearchKind = { ...GEORADIUS, coords: false, search: true };

type SortOrder = "none" | "asc" | "desc";

/** What the options said. */
interface SearchOptions {
  withDist: boolean;
  withHash: boolean;
  withCoord: boolean;
  sort: SortOrder;
  any: boolean;
  /** 0: no COUNT. */
  count: number;
  store: string | null;
  storeDist: boolean;
}

function compareAscending(a: GeoPoint, b: GeoPoint): number {
  return a.dist > b.dist ? 1 : a.dist === b.dist ? 0 : -1;
}

function compareDescending(a: GeoPoint, b: GeoPoint): number {
  return -compareAscending(a, b);
}

/** Parses the options after `base` into `options` and `shape`; an error reply, or undefined. */
function parseSearchOptions(
  args: readonly Buffer[],
  base: number,
  kind: SearchKind,
  zset: KvZset | undefined,
  options: SearchOptions,
  shape: GeoShape,
): Buffer | undefined {
  let fromMember = false;
  let fromLonLat = false;
  let byRadius = false;
  let byBox = false;
  const remaining = args.length - base;
  for (let i = 0; i < remaining; i++) {
    const at = base + i;
    const arg = upper(args[at]!);
    if (arg === "WITHDIST") options.withDist = true;
    else if (arg === "WITHHASH") options.withHash = true;
    else if (arg === "WITHCOORD") options.withCoord = true;
    else if (arg === "ANY") options.any = true;
    else if (arg === "ASC") options.sort = "asc";
    else if (arg === "DESC") options.sort = "desc";
    else if (arg === "COUNT" && i + 1 < remaining) {
      const count = parseInt64(args[at + 1]!);
      if (count === null) return ERR_NOT_INTEGER;
      if (count <= 0) return errorReply("ERR COUNT must be > 0");
      options.count = Number(count);
      i++;
    } else if (
      (arg === "STORE" || arg === "STOREDIST") &&
      i + 1 < remaining &&
      !kind.noStore &&
      !kind.search
    ) {
      options.store = latin1(args[at + 1]!);
      options.storeDist = arg === "STOREDIST";
      i++;
    } else if (arg === "STOREDIST" && kind.search && kind.searchStore) {
      options.storeDist = true;
    } else if (arg === "FROMMEMBER" && i + 1 < remaining && kind.search && !fromLonLat) {
      // Without a source key the parsing goes on, to give the right empty reply.
      if (zset !== undefined) {
        const score = zset.scores.get(latin1(args[at + 1]!));
        if (score === undefined) return ERR_NO_MEMBER;
        [shape.longitude, shape.latitude] = decodeScore(score);
      }
      fromMember = true;
      i++;
    } else if (arg === "FROMLONLAT" && i + 2 < remaining && kind.search && !fromMember) {
      const position = parseLonLat(args[at + 1]!, args[at + 2]!);
      if (isReply(position)) return position;
      [shape.longitude, shape.latitude] = position;
      fromLonLat = true;
      i += 2;
    } else if (arg === "BYRADIUS" && i + 2 < remaining && kind.search && !byBox) {
      const error = parseRadius(args, at + 1, shape);
      if (error !== undefined) return error;
      shape.circle = true;
      byRadius = true;
      i += 2;
    } else if (arg === "BYBOX" && i + 3 < remaining && kind.search && !byRadius) {
      const error = parseBox(args, at + 1, shape);
      if (error !== undefined) return error;
      shape.circle = false;
      byBox = true;
      i += 3;
    } else return ERR_SYNTAX;
  }
  if (options.store !== null && (options.withDist || options.withHash || options.withCoord)) {
    const what = kind.searchStore ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS";
    return errorReply(
      `ERR ${what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options`,
    );
  }
  const name = latin1(args[0]!);
  if (kind.search && !(fromMember || fromLonLat)) {
    return errorReply(`ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for ${name}`);
  }
  if (kind.search && !(byRadius || byBox)) {
    return errorReply(`ERR exactly one of BYRADIUS and BYBOX can be specified for ${name}`);
  }
  if (options.any && options.count === 0) {
    return errorReply("ERR the ANY argument requires COUNT argument");
  }
  return undefined;
}

function searchGeneric(sourceAt: number, kind: SearchKind): Handler {
  return (keyspace, args, now) => {
    const zset = readZset(keyspace, latin1(args[sourceAt]!), now);
    if (isReply(zset)) return zset;
    const shape: GeoShape = {
      circle: true,
      longitude: 0,
      latitude: 0,
      conversion: 0,
      radius: 0,
      width: 0,
      height: 0,
    };
    const options: SearchOptions = {
      withDist: false,
      withHash: false,
      withCoord: false,
      sort: "none",
      any: false,
      count: 0,
      store: kind.searchStore ? latin1(args[1]!) : null,
      storeDist: false,
    };
    let base: number;
    if (kind.coords) {
      base = 6;
      const position = parseLonLat(args[2]!, args[3]!);
      if (isReply(position)) return position;
      [shape.longitude, shape.latitude] = position;
      const error = parseRadius(args, 4, shape);
      if (error !== undefined) return error;
    } else if (kind.member) {
      base = 5;
      if (zset !== undefined) {
        const score = zset.scores.get(latin1(args[2]!));
        if (score === undefined) return ERR_NO_MEMBER;
        [shape.longitude, shape.latitude] = decodeScore(score);
        const error = parseRadius(args, 3, shape);
        if (error !== undefined) return error;
      }
    } else base = kind.searchStore ? 3 : 2;
    const error = parseSearchOptions(args, base, kind, zset, options, shape);
    if (error !== undefined) return error;
    if (zset === undefined) {
      if (options.store === null) return EMPTY_ARRAY;
      const entry = keyspace.lookup(options.store, now);
      if (entry !== undefined) keyspace.remove(options.store, entry);
      return ZERO;
    }
    // COUNT without an order means the nearest: ascending (not with ANY).
    if (options.count !== 0 && options.sort === "none" && !options.any) options.sort = "asc";
    const found = membersOfAllNeighbors(
      zset,
      searchAreas(shape),
      shape,
      options.any ? options.count : 0,
    );
    if (found.length === 0 && options.store === null) return EMPTY_ARRAY;
    const returned =
      options.count === 0 || found.length < options.count ? found.length : options.count;
    if (options.sort !== "none") {
      const cmp = options.sort === "asc" ? compareAscending : compareDescending;
      // glibc's qsort is a stable merge sort, as Array.prototype.sort.
      if (returned === found.length) found.sort(cmp);
      else pqsort(found, cmp, 0, returned - 1);
    }
    const points = found.slice(0, returned);
    for (const point of points) point.dist /= shape.conversion;
    if (options.store === null) return searchReply(keyspace, points, options);
    return storeResults(keyspace, options.store, points, options.storeDist, now);
  };
}

/** Each point: its member, or [member, dist?, hash?, [lon, lat]?] with options. */
function searchReply(keyspace: Keyspace, points: readonly GeoPoint[], options: SearchOptions) {
  const extras =
    (options.withDist ? 1 : 0) + (options.withHash ? 1 : 0) + (options.withCoord ? 1 : 0);
  const texts = points.map((point) => ({
    dist: options.withDist ? distanceText(point.dist) : "",
    hash: options.withHash ? `:${Math.trunc(point.score)}\r\n` : "",
    coords: options.withCoord
      ? [formatCoordinate(point.longitude), formatCoordinate(point.latitude)]
      : [],
  }));
  let size = arrayHeaderSize(points.length);
  for (let i = 0; i < points.length; i++) {
    const text = texts[i]!;
    if (extras > 0) size += arrayHeaderSize(extras + 1);
    size += bulkSize(points[i]!.member.length);
    if (options.withDist) size += bulkSize(text.dist.length);
    size += text.hash.length;
    if (options.withCoord) {
      size +=
        arrayHeaderSize(2) + bulkSize(text.coords[0]!.length) + bulkSize(text.coords[1]!.length);
    }
  }
  const refusal = checkReplySize(keyspace, size);
  if (refusal !== undefined) return refusal;
  return array(
    points.map((point, i) => {
      const text = texts[i]!;
      if (extras === 0) return bulk(point.member);
      const parts = [bulk(point.member)];
      if (options.withDist) parts.push(bulk(text.dist));
      if (options.withHash) parts.push(integer(Math.trunc(point.score)));
      if (options.withCoord) parts.push(array(text.coords.map(bulk)));
      return array(parts);
    }),
  );
}

/** STORE/STOREDIST: a sorted set of the points (scored by hash or distance); none deletes it. */
function storeResults(
  keyspace: Keyspace,
  key: string,
  points: readonly GeoPoint[],
  storeDist: boolean,
  now: number,
): Buffer {
  if (points.length === 0) {
    const entry = keyspace.lookup(key, now);
    if (entry !== undefined) keyspace.remove(key, entry);
    return ZERO;
  }
  const items: ZItem[] = points.map((point) => ({
    member: point.member,
    score: storeDist ? point.dist : point.score,
  }));
  items.sort((a, b) =>
    a.score !== b.score ? (a.score < b.score ? -1 : 1) : a.member < b.member ? -1 : 1,
  );
  const zset = new KvZset();
  for (const item of items) zset.appendSorted(item.member, item.score === 0 ? 0 : item.score);
  keyspace.set(key, zset, now);
  return integer(points.length);
}

export const georadius = searchGeneric(1, GEORADIUS);
export const georadiusRo = searchGeneric(1, { ...GEORADIUS, noStore: true });
export const georadiusbymember = searchGeneric(1, GEORADIUSBYMEMBER);
export const georadiusbymemberRo = searchGeneric(1, { ...GEORADIUSBYMEMBER, noStore: true });
export const geosearch = searchGeneric(1, GEOSEARCH);
export const geosearchstore = searchGeneric(2, { ...GEOSEARCH, searchStore: true });

/**
 * GEORADIUS(BYMEMBER)'s keys: the source, and the STORE/STOREDIST destination the options name
 * (the last one, as the command takes it), found as the command parses its options.
 */
function radiusKeys(base: number): KeySpec {
  return {
    find: (args) => {
      const found = [1];
      let store = -1;
      for (let i = base; i < args.length; i++) {
        const option = upper(args[i]!);
        if (option === "COUNT" && i + 1 < args.length) i++;
        else if ((option === "STORE" || option === "STOREDIST") && i + 1 < args.length) {
          store = ++i;
        }
      }
      if (store !== -1) found.push(store);
      return found;
    },
    legacy: { first: 1, last: 1, step: 1 },
  };
}

/**
 * GEOADD declares no `values`: its members are every third argument, which ValueArgs cannot say;
 * ZADD (which it calls) still refuses one over --max-value-bytes before changing anything.
 * GEORADIUS and GEORADIUSBYMEMBER are writes (STORE), as in Redis; their _RO forms and GEOSEARCH
 * are reads.
 */
export const GEO_COMMANDS: readonly CommandSpec[] = [
  { name: "geoadd", arity: -5, kind: "write", handler: geoadd, flags: ["denyoom"], keys: KEY_1 },
  { name: "geopos", arity: -2, kind: "read", handler: geopos, keys: KEY_1 },
  { name: "geodist", arity: -4, kind: "read", handler: geodist, keys: KEY_1 },
  { name: "geohash", arity: -2, kind: "read", handler: geohash, keys: KEY_1 },
  {
    name: "georadius",
    arity: -6,
    kind: "write",
    handler: georadius,
    flags: ["denyoom"],
    keys: radiusKeys(6),
  },
  { name: "georadius_ro", arity: -6, kind: "read", handler: georadiusRo, keys: KEY_1 },
  {
    name: "georadiusbymember",
    arity: -5,
    kind: "write",
    handler: georadiusbymember,
    flags: ["denyoom"],
    keys: radiusKeys(5),
  },
  {
    name: "georadiusbymember_ro",
    arity: -5,
    kind: "read",
    handler: georadiusbymemberRo,
    keys: KEY_1,
  },
  { name: "geosearch", arity: -7, kind: "read", handler: geosearch, keys: KEY_1 },
  {
    name: "geosearchstore",
    arity: -8,
    kind: "write",
    handler: geosearchstore,
    flags: ["denyoom"],
    keys: KEYS_1_2,
  },
];

/**
 * x87 80-bit extended precision ("long double" of redis-server on x86-64), exactly as HINCRBYFLOAT
 * and INCRBYFLOAT compute: glibc's strtold (correctly rounded), one rounded addition, and printf's
 * "%.17Lf" with trailing zeros dropped (Redis's ld2string LD_STR_HUMAN). JavaScript has only
 * doubles, whose 53-bit sums and 17 printed decimals differ from Redis's 64-bit ones ("10.5" +
 * "0.1" is 10.6 there), so values are held exactly as mantissa × 2^exponent in bigints and rounded
 * to nearest, ties to even, at the same points as the hardware does.
 */
import { assert } from "../core/errors.ts";

/** Mantissa bits: a normal value's mantissa lies in [2^63, 2^64). */
const MANT_BITS = 64;
/** Exponent of the lowest mantissa bit of the smallest subnormal, 2^-16445. */
const LSB_EXP_MIN = -16445;
/** Exponent of the highest bit of the largest finite value: < 2^16384. */
const TOP_EXP_MAX = 16383;
/** Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses a string of this many bytes or more. */
export const LONG_DOUBLE_CHARS_MAX = 5 * 1024;
/** Decimal orders of magnitude past which a value surely overflows or underflows (clamps). */
const DECIMAL_TOP_MAX = 4940;
const DECIMAL_TOP_MIN = -4960;
/** A parsed exponent beyond this many digits is only used to overflow or underflow. */
const EXPONENT_DIGITS_MAX = 9;

/** A finite value (-1)^negative × mant × 2^exp, mant 0 for zero, or an infinity. */
export interface LongDouble {
  readonly negative: boolean;
  readonly infinite: boolean;
  readonly mant: bigint;
  readonly exp: number;
}

const ZERO: LongDouble = { negative: false, infinite: false, mant: 0n, exp: 0 };

function infinity(negative: boolean): LongDouble {
  return { negative, infinite: true, mant: 0n, exp: 0 };
}

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/**
 * num / den × 2^exp2 (num, den > 0) rounded to the nearest long double, ties to even; an
 * infinity on overflow, and null when it underflows to zero (strtold's ERANGE with 0).
 */
function roundRational(
  negative: boolean,
  num: bigint,
  den: bigint,
  exp2: number,
): LongDouble | null {
  assert(num > 0n && den > 0n);
  // t = floor(log2(num / den)).
  let t = bitLength(num) - bitLength(den);
  if (t >= 0 ? num < den << BigInt(t) : num << BigInt(-t) < den) t--;
  const top = t + exp2;
  if (top > TOP_EXP_MAX) return infinity(negative);
  let lsb = Math.max(top - (MANT_BITS - 1), LSB_EXP_MIN);
  const shift = exp2 - lsb;
  const n = shift >= 0 ? num << BigInt(shift) : num;
  const d = shift >= 0 ? den : den << BigInt(-shift);
  let mant = n / d;
  const twice = (n - mant * d) * 2n;
  if (twice > d || (twice === d && (mant & 1n) === 1n)) mant++;
  if (mant === 0n) return null;
  if (mant === 1n << BigInt(MANT_BITS)) {
    mant >>= 1n;
    lsb++;
    if (lsb + MANT_BITS - 1 > TOP_EXP_MAX) return infinity(negative);
  }
  return { negative, infinite: false, mant, exp: lsb };
}

/** A decimal exponent's digits as a number, clamped far beyond any value's range. */
function exponentValue(sign: string | undefined, digits: string): number {
  const trimmed = digits.replace(/^0+/, "");
  const magnitude =
    trimmed.length > EXPONENT_DIGITS_MAX ? 10 ** EXPONENT_DIGITS_MAX : Number(trimmed);
  return sign === "-" ? -magnitude : magnitude;
}

const DECIMAL = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?$/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?)([0-9]+))?$/;
const INFINITY = /^([+-]?)(?:inf|infinity)$/i;

/**
 * Redis's string2ld: the whole string must be one strtold number (decimal, hexadecimal with a
 * binary exponent, or inf/infinity; no leading space, no NaN), shorter than
 * LONG_DOUBLE_CHARS_MAX, not overflowing to an infinity nor underflowing to 0. Null otherwise.
 */
export function parseLongDouble(text: string): LongDouble | null {
  if (text.length === 0 || text.length >= LONG_DOUBLE_CHARS_MAX) return null;
  const inf = INFINITY.exec(text);
  if (inf !== null) return infinity(inf[1] === "-");
  const hex = HEX.exec(text);
  if (hex !== null) return parseHex(hex);
  const decimal = DECIMAL.exec(text);
  if (decimal === null) return null;
  const [, sign, whole = "", fraction = "", expSign, expDigits] = decimal;
  if (whole.length + fraction.length === 0) return null; // "." or "e5": no digits
  const negative = sign === "-";
  const digits = (whole + fraction).replace(/^0+/, "");
  if (digits.length === 0) return negative ? { ...ZERO, negative } : ZERO;
  const exponent =
    (expDigits === undefined ? 0 : exponentValue(expSign, expDigits)) - fraction.length;
  // value = digits × 10^exponent, in [10^(length - 1 + exponent), 10^(length + exponent)).
  if (digits.length - 1 + exponent > DECIMAL_TOP_MAX) return null;
  if (digits.length + exponent < DECIMAL_TOP_MIN) return null;
  const mant = BigInt(digits);
  const rounded =
    exponent >= 0
      ? roundRational(negative, mant * 5n ** BigInt(exponent), 1n, exponent)
      : roundRational(negative, mant, 5n ** BigInt(-exponent), exponent);
  return rounded === null || rounded.infinite ? null : rounded;
}

function parseHex(match: RegExpExecArray): LongDouble | null {
  const [, sign, whole = "", fraction = "", expSign, expDigits] = match;
  // "0x" without a hex digit: strtold reads the "0" and stops before the "x".
  if (whole.length + fraction.length === 0) return null;
  const negative = sign === "-";
  const mant = BigInt(`0x${whole}${fraction}`);
  if (mant === 0n) return negative ? { ...ZERO, negative } : ZERO;
  const exp2 =
    (expDigits === undefined ? 0 : exponentValue(expSign, expDigits)) - 4 * fraction.length;
  const top = bitLength(mant) - 1 + exp2;
  if (top > TOP_EXP_MAX + 1 || top < LSB_EXP_MIN - 2) return null;
  const rounded = roundRational(negative, mant, 1n, exp2);
  return rounded === null || rounded.infinite ? null : rounded;
}

/** An int64 (a hash value stored as an integer) exactly. */
export function longDoubleFromInteger(value: bigint): LongDouble {
  if (value === 0n) return ZERO;
  const rounded = roundRational(value < 0n, value < 0n ? -value : value, 1n, 0);
  assert(rounded !== null && !rounded.infinite);
  return rounded;
}

/** a + b, rounded once; an infinity on overflow (either operand infinite: that infinity). */
export function addLongDouble(a: LongDouble, b: LongDouble): LongDouble {
  assert(!(a.infinite && b.infinite && a.negative !== b.negative), "inf - inf");
  if (a.infinite) return a;
  if (b.infinite) return b;
  const exp = Math.min(a.exp, b.exp);
  const sa = (a.negative ? -a.mant : a.mant) << BigInt(a.exp - exp);
  const sb = (b.negative ? -b.mant : b.mant) << BigInt(b.exp - exp);
  const sum = sa + sb;
  // An exact zero is +0 under round-to-nearest, unless both were -0.
  if (sum === 0n) return a.negative && b.negative ? a : ZERO;
  // A sum of two values no smaller than 2^LSB_EXP_MIN never underflows to zero.
  const rounded = roundRational(sum < 0n, sum < 0n ? -sum : sum, 1n, exp);
  assert(rounded !== null);
  return rounded;
}

/** Digits printed after the point ("%.17Lf"). */
const FRACTION_DIGITS = 17;
const FRACTION_SCALE = 10n ** BigInt(FRACTION_DIGITS);

/**
 * Redis's ld2string(LD_STR_HUMAN) of a finite value: printf "%.17Lf" (rounded to nearest, ties to
 * even, on the exact binary value), trailing zeros and a bare point dropped, "-0" written "0".
 */
export function formatLongDouble(value: LongDouble): string {
  assert(!value.infinite);
  let digits: string;
  if (value.exp >= 0) digits = (value.mant << BigInt(value.exp)).toString();
  else {
    const shift = BigInt(-value.exp);
    const scaled = value.mant * FRACTION_SCALE;
    let q = scaled >> shift;
    const twice = (scaled - (q << shift)) * 2n;
    const unit = 1n << shift;
    if (twice > unit || (twice === unit && (q & 1n) === 1n)) q++;
    const whole = (q / FRACTION_SCALE).toString();
    const fraction = (q % FRACTION_SCALE)
      .toString()
      .padStart(FRACTION_DIGITS, "0")
      .replace(/0+$/, "");
    digits = fraction.length === 0 ? whole : `${whole}.${fraction}`;
  }
  return value.negative && digits !== "0" ? `-${digits}` : digits;
}

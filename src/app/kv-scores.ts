/**
 * Sorted-set scores as Redis 7.0 reads and writes them: glibc strtod's syntax (decimal, hex,
 * inf/infinity, nan), and replies in printf's "%.17g" (Redis 7.0's addReplyDouble), "inf"/"-inf".
 */

/** C isspace: space, \t \n \v \f \r. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

interface Strtod {
  value: number;
  /** Characters consumed; 0 when nothing converted (like strtod's endptr = nptr). */
  end: number;
  /** A finite literal that overflowed to ±inf or a nonzero one that underflowed to 0 (ERANGE). */
  range: boolean;
}

/** glibc strtod on `text` (latin1, one char per byte). */
function strtod(text: string): Strtod {
  const n = text.length;
  let i = 0;
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  let negative = false;
  if (text[i] === "+" || text[i] === "-") {
    negative = text[i] === "-";
    i++;
  }
  const sign = negative ? -1 : 1;
  const rest = text.slice(i, i + 8).toLowerCase();
  if (rest.startsWith("inf")) {
    return { value: sign * Infinity, end: i + (rest === "infinity" ? 8 : 3), range: false };
  }
  if (rest.startsWith("nan")) {
    let end = i + 3;
    if (text[end] === "(") {
      const close = text.indexOf(")", end);
      if (close !== -1 && /^[0-9A-Za-z_]*$/.test(text.slice(end + 1, close))) end = close + 1;
    }
    return { value: Number.NaN, end, range: false };
  }
  if (text[i] === "0" && (text[i + 1] === "x" || text[i + 1] === "X")) {
    let j = i + 2;
    let mantissa = "";
    let fractionDigits = 0;
    while (j < n && isHexDigit(text.charCodeAt(j))) mantissa += text[j++];
    if (text[j] === ".") {
      let k = j + 1;
      while (k < n && isHexDigit(text.charCodeAt(k))) {
        mantissa += text[k++];
        fractionDigits++;
      }
      if (mantissa.length > 0) j = k;
    }
    // "0x" with no hex digits converts just the "0".
    if (mantissa.length === 0) return { value: sign * 0, end: i + 1, range: false };
    let exponent = 0;
    if (text[j] === "p" || text[j] === "P") {
      let k = j + 1;
      if (text[k] === "+" || text[k] === "-") k++;
      if (k < n && isDigit(text.charCodeAt(k))) {
        while (k < n && isDigit(text.charCodeAt(k))) k++;
        exponent = Math.max(-100_000, Math.min(100_000, Number(text.slice(j + 1, k))));
        j = k;
      }
    }
    const big = BigInt(`0x${mantissa}`);
    let value = Number(big) * 2 ** (exponent - 4 * fractionDigits);
    if (!Number.isFinite(value) && Number.isFinite(Number(big))) {
      // 2 ** e overflowed alone; scale in two steps.
      const e = exponent - 4 * fractionDigits;
      value = Number(big) * 2 ** Math.floor(e / 2) * 2 ** Math.ceil(e / 2);
    }
    return { value: sign * value, end: j, range: rangeError(value, big !== 0n) };
  }
  const start = i;
  let digits = 0;
  let nonzero = false;
  while (i < n && isDigit(text.charCodeAt(i))) {
    if (text[i] !== "0") nonzero = true;
    i++;
    digits++;
  }
  if (text[i] === ".") {
    let k = i + 1;
    while (k < n && isDigit(text.charCodeAt(k))) {
      if (text[k] !== "0") nonzero = true;
      k++;
      digits++;
    }
    if (digits > 0) i = k;
  }
  if (digits === 0) return { value: 0, end: 0, range: false };
  if (text[i] === "e" || text[i] === "E") {
    let k = i + 1;
    if (text[k] === "+" || text[k] === "-") k++;
    if (k < n && isDigit(text.charCodeAt(k))) {
      while (k < n && isDigit(text.charCodeAt(k))) k++;
      i = k;
    }
  }
  const value = Number(text.slice(start, i));
  return { value: sign * value, end: i, range: rangeError(value, nonzero) };
}

function rangeError(value: number, nonzero: boolean): boolean {
  return !Number.isFinite(value) || (value === 0 && nonzero);
}

/**
 * A score argument (ZADD, ZINCRBY) as Redis's string2d reads it: the whole string, no leading
 * space, not NaN, no overflow to ±inf or underflow to 0. Null means "ERR value is not a valid
 * float". Denormals are accepted, as in Redis.
 */
export function parseScore(text: string): number | null {
  if (text.length === 0 || isSpace(text.charCodeAt(0))) return null;
  const { value, end, range } = strtod(text);
  if (end !== text.length || range || Number.isNaN(value)) return null;
  return value;
}

/** A score-range bound (ZCOUNT, ZRANGEBYSCORE): `(` for exclusive, then strtod of the rest. */
export interface ScoreBound {
  readonly value: number;
  readonly exclusive: boolean;
}

/**
 * Redis's zslParseRange for one bound: strtod of the text (after an optional "("), which must
 * consume it all; leading spaces, overflow and an empty string (0) are accepted, NaN is not.
 * Null means "ERR min or max is not a float".
 */
export function parseScoreBound(text: string): ScoreBound | null {
  const exclusive = text[0] === "(";
  const body = exclusive ? text.slice(1) : text;
  const { value, end } = strtod(body);
  // strtod stops at a NUL byte, which Redis then sees as the end of the string.
  const stop = body.indexOf("\0");
  if (end !== (stop === -1 ? body.length : stop) || Number.isNaN(value)) return null;
  return { value, exclusive };
}

/** A score as Redis 7.0 replies with it: "inf", "-inf", or printf's "%.17g". */
export function formatScore(value: number): string {
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  if (Number.isSafeInteger(value) && Math.abs(value) < 1e16) return String(value);
  const exponential = value.toExponential(16);
  const eAt = exponential.indexOf("e");
  const exponent = Number(exponential.slice(eAt + 1));
  const negative = value < 0;
  const digits = exponential.slice(negative ? 1 : 0, eAt).replace(".", "");
  let out: string;
  if (exponent < -4 || exponent >= 17) {
    const mantissa = stripZeros(`${digits[0]}.${digits.slice(1)}`);
    const magnitude = Math.abs(exponent);
    out = `${mantissa}e${exponent < 0 ? "-" : "+"}${magnitude < 10 ? "0" : ""}${magnitude}`;
  } else if (exponent >= 0) {
    out = stripZeros(`${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`);
  } else {
    out = stripZeros(`0.${"0".repeat(-exponent - 1)}${digits}`);
  }
  return negative ? `-${out}` : out;
}

/** Drops trailing zeros of a fraction, and the point when none remain ("%g" without "#"). */
function stripZeros(text: string): string {
  if (!text.includes(".")) return text;
  let end = text.length;
  while (text[end - 1] === "0") end--;
  if (text[end - 1] === ".") end--;
  return text.slice(0, end);
}

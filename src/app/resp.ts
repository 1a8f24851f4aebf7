/**
 * RESP2 reply encoders. Every function returns a fresh Buffer except the exported constants, which
 * are shared: callers must never write into a reply Buffer.
 */

const CRLF = "\r\n";

export const OK: Buffer = Buffer.from("+OK\r\n", "latin1");
export const PONG: Buffer = Buffer.from("+PONG\r\n", "latin1");
export const ZERO: Buffer = Buffer.from(":0\r\n", "latin1");
export const ONE: Buffer = Buffer.from(":1\r\n", "latin1");
export const NULL_BULK: Buffer = Buffer.from("$-1\r\n", "latin1");
export const NULL_ARRAY: Buffer = Buffer.from("*-1\r\n", "latin1");
export const EMPTY_ARRAY: Buffer = Buffer.from("*0\r\n", "latin1");
export const EMPTY_BULK: Buffer = Buffer.from("$0\r\n\r\n", "latin1");

/** Integers in [0, SMALL_INTEGERS_MAX) are pre-encoded: lengths and counts are mostly small. */
const SMALL_INTEGERS_MAX = 1024;
const SMALL_INTEGERS: Buffer[] = [];
for (let i = 0; i < SMALL_INTEGERS_MAX; i++) SMALL_INTEGERS.push(Buffer.from(`:${i}${CRLF}`));

/** `+text\r\n`. `text` must not contain CR or LF. */
export function simpleString(text: string): Buffer {
  return Buffer.from(`+${text}${CRLF}`, "latin1");
}

/**
 * `-message\r\n`, where `message` starts with the error code (`ERR ...`, `WRONGTYPE ...`). Like
 * Redis, CR and LF inside the message become spaces so the reply stays one line.
 */
export function errorReply(message: string): Buffer {
  const line =
    message.includes("\r") || message.includes("\n") ? message.replace(/[\r\n]/g, " ") : message;
  return Buffer.from(`-${line}${CRLF}`, "latin1");
}

/** `:n\r\n` for a 64-bit signed integer given as a safe-integer number or a bigint. */
export function integer(value: number | bigint): Buffer {
  if (typeof value === "number" && value >= 0 && value < SMALL_INTEGERS_MAX) {
    return SMALL_INTEGERS[value]!;
  }
  return Buffer.from(`:${value}${CRLF}`, "latin1");
}

/** `$len\r\nbytes\r\n`; a string is taken as latin1 (one byte per char, binary-safe). */
export function bulk(value: Uint8Array | string): Buffer {
  const size = typeof value === "string" ? Buffer.byteLength(value, "latin1") : value.byteLength;
  const header = `$${size}${CRLF}`;
  const out = Buffer.allocUnsafe(header.length + size + 2);
  let offset = out.write(header, 0, "latin1");
  if (typeof value === "string") offset += out.write(value, offset, "latin1");
  else {
    out.set(value, offset);
    offset += size;
  }
  out[offset] = 13;
  out[offset + 1] = 10;
  return out;
}

/** A bulk string or `$-1` when absent. */
export function bulkOrNull(value: Uint8Array | string | undefined): Buffer {
  return value === undefined ? NULL_BULK : bulk(value);
}

/** `*n\r\n` followed by the already-encoded items. */
export function array(items: readonly Buffer[]): Buffer {
  if (items.length === 0) return EMPTY_ARRAY;
  const header = `*${items.length}${CRLF}`;
  let size = header.length;
  for (const item of items) size += item.byteLength;
  const out = Buffer.allocUnsafe(size);
  let offset = out.write(header, 0, "latin1");
  for (const item of items) {
    out.set(item, offset);
    offset += item.byteLength;
  }
  return out;
}

/** An array of bulk strings (or nulls for undefined items). */
export function bulkArray(values: readonly (Uint8Array | string | undefined)[]): Buffer {
  const items: Buffer[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) items[i] = bulkOrNull(values[i]);
  return array(items);
}

/**
 * Encoded sizes, so a command can total its reply before building it (and refuse one that would
 * pass the reply limit without allocating it). Each matches the encoder above byte for byte.
 */

/** Decimal digits of a non-negative integer. */
function digits(n: number): number {
  let count = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    count++;
  }
  return count;
}

/** Bytes of `bulk(v)` for a value of `byteLength` bytes: `$len\r\n` + bytes + `\r\n`. */
export function bulkSize(byteLength: number): number {
  return 1 + digits(byteLength) + 2 + byteLength + 2;
}

/** Bytes of `array(items)`'s header for `count` items (all of `*0\r\n` when empty). */
export function arrayHeaderSize(count: number): number {
  return 1 + digits(count) + 2;
}

/**
 * The options of SCAN, HSCAN, SSCAN and ZSCAN (Redis's scanGenericCommand): COUNT and MATCH, and
 * SCAN's TYPE, the last of each winning; and the refusal of a MATCH (or KEYS) pattern longer than
 * the store's `patternBytesMax`, checked before compiling it.
 */
import { GlobPattern } from "./glob.ts";
import type { Keyspace } from "./kv-keyspace.ts";
import { ERR_NOT_INTEGER, ERR_SYNTAX, latin1, parseLong, upper } from "./kv-shared.ts";
import { errorReply } from "./resp.ts";

/** The refusal of a KEYS / MATCH pattern over `patternBytesMax`, else undefined. */
export function patternTooLong(keyspace: Keyspace, pattern: Buffer): Buffer | undefined {
  const limit = keyspace.limits.patternBytesMax;
  if (pattern.length <= limit) return undefined;
  return errorReply(`ERR pattern too long (${pattern.length} bytes, limit ${limit})`);
}

export interface ScanOptions {
  /** Elements to examine in one call (COUNT, default 10, capped at the command's `countMax`). */
  readonly count: number;
  /** MATCH's pattern; undefined: everything ("*" too). */
  readonly pattern: GlobPattern | undefined;
  /** TYPE's type name, lowercased (SCAN only); undefined: any type. */
  readonly type: string | undefined;
}

/**
 * The options from args[from] on, in pairs: COUNT (capped at `countMax`), MATCH, and TYPE where
 * `withType` (SCAN); any other, or one without its value, is a syntax error.
 */
export function parseScanOptions(
  keyspace: Keyspace,
  args: readonly Buffer[],
  from: number,
  countMax: number,
  withType = false,
): ScanOptions | Buffer {
  let count = 10;
  let patternBytes: Buffer | undefined;
  let type: string | undefined;
  for (let i = from; i < args.length; i += 2) {
    const option = upper(args[i]!);
    const value = args[i + 1];
    if (value === undefined) return ERR_SYNTAX;
    if (option === "COUNT") {
      const parsed = parseLong(value);
      if (parsed === null) return ERR_NOT_INTEGER;
      if (parsed < 1) return ERR_SYNTAX;
      count = Math.min(parsed, countMax);
    } else if (option === "MATCH") {
      const refused = patternTooLong(keyspace, value);
      if (refused !== undefined) return refused;
      patternBytes = value; // compiled once, below
    } else if (withType && option === "TYPE") type = latin1(value).toLowerCase();
    else return ERR_SYNTAX;
  }
  const pattern = patternBytes === undefined ? undefined : new GlobPattern(latin1(patternBytes));
  return { count, pattern: pattern?.matchesAll ? undefined : pattern, type };
}

export const ERR_INVALID_CURSOR = errorReply("ERR invalid cursor");
/** SSCAN/ZSCAN of a missing key: cursor 0, nothing. */
export const EMPTY_SCAN = Buffer.from("*2\r\n$1\r\n0\r\n*0\r\n", "latin1");

/**
 * Redis's parseScanCursorOrReply (strtoul, base 10): optional sign, digits (none: 0), no space,
 * within 64 bits; a negative one wraps around. Null for an invalid cursor.
 */
export function parseScanCursor(bytes: Buffer): bigint | null {
  const nul = bytes.indexOf(0); // strtoul stops at a NUL byte, which Redis sees as the end
  const text = latin1(nul === -1 ? bytes : bytes.subarray(0, nul));
  const match = /^([+-]?)([0-9]*)$/.exec(text);
  if (match === null) return null;
  const [, sign, digits] = match;
  if (digits!.length === 0) return sign === "" ? 0n : null;
  const value = BigInt(digits!);
  if (value > 2n ** 64n - 1n) return null;
  return sign === "-" && value !== 0n ? 2n ** 64n - value : value;
}

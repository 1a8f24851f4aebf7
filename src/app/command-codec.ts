/**
 * Binary encoding of a list of commands (the pipelined commands of one connection that the
 * runtime replicates as one log entry). Little-endian:
 *
 *   [headerBytes zeroed, for the runtime's own header]
 *   u32 commandCount
 *   per command: u32 argCount, then per argument: u32 byteLength, bytes
 *
 * Decoding returns views (no copies) and never throws: malformed input yields null.
 */
import { assert } from "../core/errors.ts";

const U32_BYTES = 4;
const U32_MAX = 0xffff_ffff;
/** Largest encoding: one contiguous buffer; Node's Buffer limit is far above this. */
export const COMMANDS_BYTES_MAX = 2 ** 31 - 1;

function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = (value >>> 8) & 0xff;
  out[offset + 2] = (value >>> 16) & 0xff;
  out[offset + 3] = value >>> 24;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x100_0000
  );
}

/** Bytes `encodeCommands(commands, 0)` produces. */
export function encodedCommandsBytes(commands: readonly (readonly Uint8Array[])[]): number {
  let size = U32_BYTES;
  for (const command of commands) {
    size += U32_BYTES * (1 + command.length);
    for (const arg of command) size += arg.byteLength;
  }
  return size;
}

/** Encodes `commands` after `headerBytes` zeroed bytes. */
export function encodeCommands(
  commands: readonly (readonly Uint8Array[])[],
  headerBytes: number,
): Uint8Array {
  assert(Number.isSafeInteger(headerBytes) && headerBytes >= 0, "headerBytes must be >= 0");
  assert(commands.length <= U32_MAX, "too many commands");
  const size = headerBytes + encodedCommandsBytes(commands);
  assert(size <= COMMANDS_BYTES_MAX, `commands encode to ${size} bytes, above the limit`);
  const out = new Uint8Array(size);
  let offset = headerBytes;
  writeU32(out, offset, commands.length);
  offset += U32_BYTES;
  for (const command of commands) {
    writeU32(out, offset, command.length);
    offset += U32_BYTES;
    for (const arg of command) {
      writeU32(out, offset, arg.byteLength);
      offset += U32_BYTES;
      out.set(arg, offset);
      offset += arg.byteLength;
    }
  }
  assert(offset === size);
  return out;
}

/**
 * Decodes the commands that start at `offset` and run to the end of `bytes`. Every argument is a
 * Buffer view into `bytes`. Returns null when a count or length does not fit the bytes left, or
 * when bytes are left over.
 */
export function decodeCommands(bytes: Uint8Array, offset: number): Buffer[][] | null {
  const end = bytes.byteLength;
  if (!Number.isSafeInteger(offset) || offset < 0 || end - offset < U32_BYTES) return null;
  let p = offset;
  const commandCount = readU32(bytes, p);
  p += U32_BYTES;
  // Every command takes at least its u32 argCount: check before allocating.
  if (commandCount > (end - p) / U32_BYTES) return null;
  const commands: Buffer[][] = new Array(commandCount);
  for (let c = 0; c < commandCount; c++) {
    if (end - p < U32_BYTES) return null;
    const argCount = readU32(bytes, p);
    p += U32_BYTES;
    if (argCount > (end - p) / U32_BYTES) return null;
    const args: Buffer[] = new Array(argCount);
    for (let a = 0; a < argCount; a++) {
      if (end - p < U32_BYTES) return null;
      const length = readU32(bytes, p);
      p += U32_BYTES;
      if (length > end - p) return null;
      args[a] = Buffer.from(bytes.buffer, bytes.byteOffset + p, length);
      p += length;
    }
    commands[c] = args;
  }
  return p === end ? commands : null;
}

/**
 * A checkpoint of a program's copy, as it travels in the runtime's snapshot:
 *
 *   u32 magic "APC1" | f64 applied steps | 32-byte output digest chain | u32 loop-state length
 *   | loop state (JSON: origins' incarnations, retired incarnations, closed connections, open
 *   connections by origin) | u32 file count | per file: u16 name length | name (UTF-8) | u32 size
 *   | bytes
 *
 * The files are what the checkpoint hook left in the copy's directory (Redis: dump.rdb); the rest
 * is the apply loop's own state at that log position, so a replica that starts from the
 * checkpoint judges later entries and digests exactly as one that applied the whole log.
 */
import { ApusError } from "../../core/errors.ts";

const MAGIC = 0x41504331; // "APC1"
/** Longest file name kept in a checkpoint. */
export const CHECKPOINT_NAME_BYTES_MAX = 255;

export interface CopyLoopState {
  readonly incarnations: readonly (readonly [number, number])[];
  readonly retired: readonly string[];
  /** Closed connections, with the log time they closed at. */
  readonly closed: readonly (readonly [string, number])[];
  readonly keysByOrigin: readonly (readonly [number, readonly string[]])[];
}

export interface CopyCheckpoint {
  readonly steps: number;
  readonly chain: Uint8Array;
  readonly loop: CopyLoopState;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

export function encodeCheckpoint(checkpoint: CopyCheckpoint): Uint8Array {
  const loop = Buffer.from(JSON.stringify(checkpoint.loop), "utf8");
  const names = [...checkpoint.files.keys()].map((name) => Buffer.from(name, "utf8"));
  for (const name of names)
    if (name.byteLength > CHECKPOINT_NAME_BYTES_MAX)
      throw new Error(`checkpoint file name longer than ${CHECKPOINT_NAME_BYTES_MAX} bytes`);
  let size = 4 + 8 + 32 + 4 + loop.byteLength + 4;
  const files = [...checkpoint.files.values()];
  for (let i = 0; i < names.length; i++)
    size += 2 + names[i]!.byteLength + 4 + files[i]!.byteLength;
  const out = Buffer.alloc(size);
  let at = out.writeUInt32LE(MAGIC, 0);
  at = out.writeDoubleLE(checkpoint.steps, at);
  out.set(checkpoint.chain.subarray(0, 32), at);
  at += 32;
  at = out.writeUInt32LE(loop.byteLength, at);
  out.set(loop, at);
  at += loop.byteLength;
  at = out.writeUInt32LE(names.length, at);
  for (let i = 0; i < names.length; i++) {
    at = out.writeUInt16LE(names[i]!.byteLength, at);
    out.set(names[i]!, at);
    at += names[i]!.byteLength;
    at = out.writeUInt32LE(files[i]!.byteLength, at);
    out.set(files[i]!, at);
    at += files[i]!.byteLength;
  }
  return out;
}

function damaged(what: string): never {
  throw new ApusError("ERR_WIRE_FIELD", `program checkpoint: ${what}`);
}

/**
 * Throws ApusError ERR_WIRE_FIELD ("program checkpoint: …") on a damaged checkpoint, whatever the
 * damage: a snapshot is checksummed by the WAL and comes from an authenticated peer, so this is a
 * bug, but one that must fail here, with a message, rather than in restore() with a TypeError.
 */
export function decodeCheckpoint(data: Uint8Array): CopyCheckpoint {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const need = (at: number, bytes: number) => {
    if (at + bytes > buf.byteLength) damaged("truncated");
  };
  need(0, 48);
  if (buf.readUInt32LE(0) !== MAGIC) damaged("not one (bad magic)");
  const steps = buf.readDoubleLE(4);
  const chain = Uint8Array.from(buf.subarray(12, 44));
  const loopLength = buf.readUInt32LE(44);
  need(48, loopLength + 4);
  const loop = parseLoopState(buf.toString("utf8", 48, 48 + loopLength));
  let at = 48 + loopLength;
  const count = buf.readUInt32LE(at);
  at += 4;
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    need(at, 2);
    const nameLength = buf.readUInt16LE(at);
    need(at + 2, nameLength + 4);
    const name = buf.toString("utf8", at + 2, at + 2 + nameLength);
    at += 2 + nameLength;
    const size = buf.readUInt32LE(at);
    need(at + 4, size);
    files.set(name, Uint8Array.from(buf.subarray(at + 4, at + 4 + size)));
    at += 4 + size;
  }
  for (const name of files.keys())
    if (name === "" || name === "." || name === ".." || /[/\\\0]/.test(name))
      damaged(`file name ${JSON.stringify(name)} is not a plain name`);
  return { steps, chain, loop, files };
}

/** The loop state's JSON, checked to have the shapes restore() iterates. */
function parseLoopState(text: string): CopyLoopState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    damaged("loop state is not JSON");
  }
  if (typeof value !== "object" || value === null) damaged("loop state is not an object");
  const loop = value as Record<string, unknown>;
  const incarnations = listOf(loop.incarnations, "incarnations", (v) =>
    isPair(v, "number", "number"),
  );
  const retired = listOf(loop.retired, "retired", (v) => typeof v === "string");
  const closed = listOf(loop.closed, "closed", (v) => isPair(v, "string", "number"));
  const keysByOrigin = listOf(
    loop.keysByOrigin,
    "keysByOrigin",
    (v) =>
      Array.isArray(v) &&
      v.length === 2 &&
      typeof v[0] === "number" &&
      Array.isArray(v[1]) &&
      v[1].every((key) => typeof key === "string"),
  );
  return {
    incarnations: incarnations as CopyLoopState["incarnations"],
    retired: retired as CopyLoopState["retired"],
    closed: closed as CopyLoopState["closed"],
    keysByOrigin: keysByOrigin as CopyLoopState["keysByOrigin"],
  };
}

function listOf(value: unknown, name: string, isItem: (item: unknown) => boolean): unknown[] {
  if (!Array.isArray(value) || !value.every(isItem)) damaged(`loop state has a bad ${name}`);
  return value;
}

function isPair(value: unknown, first: string, second: string): boolean {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === first &&
    typeof value[1] === second
  );
}

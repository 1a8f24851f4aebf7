import { assert, type ErrorCode } from "./errors.ts";
import {
  MEMBER_ADDRESS_BYTES_MAX,
  type Member,
  type MembershipChange,
  type MembershipEntry,
  membersProblem,
} from "./membership.ts";
import {
  type AcceptedEntry,
  type Batch,
  type ChosenEntry,
  type Message,
  MessageType,
  type PromiseMessage,
  type RecoverReply,
  type Snapshot,
} from "./types.ts";

/**
 * Binary encoding of core messages. Little-endian throughout; every variable part carries an
 * explicit length or count that decode checks against the bytes actually left BEFORE it allocates,
 * so hostile input can neither throw an unexpected exception nor make us allocate by its say-so.
 *
 *   header   u8 version | u8 type | u8 from | u8 to | u64 ballot            (HEADER_SIZE bytes)
 *   u64      a safe integer as two u32 (low, high); high must be < 2^21
 *   batch    u64 stampMs | u32 commandCount | commandCount × (u32 length | bytes) | [change]
 *            (the top bit of commandCount says a membership change follows the commands)
 *   change   u64 base | members (of base) | members (new)
 *   members  u8 count | count × (u8 id | u8 flags (1 voter) | u16 length | address, UTF-8)
 *   snapshot u64 slot | u32 length | bytes | u8 historyCount
 *            | historyCount × (u64 slot | u64 effectiveFrom | members)
 *   Prepare        u64 fromSlot
 *   Promise        u64 fromSlot | u64 chosenSlot | u8 flags (1 more, 2 snapshot) | [snapshot]
 *                  | u32 entryCount | entryCount × (u64 slot | u64 ballot | batch)
 *   Nack           (header only)
 *   Probe          u64 chosenSlot
 *   ProbeReply     u8 granted
 *   Accept         u64 slot | u64 commitSlot | batch
 *   Accepted       u64 slot | u64 chosenSlot
 *   Heartbeat      u64 commitSlot | u64 readRound
 *   HeartbeatReply u64 chosenSlot | u64 readRound
 *   Chosen         u64 commitSlot | u32 entryCount | entryCount × (u64 slot | batch)
 *   InstallSnapshot snapshot
 *   Recover        u32 nonce | u64 fromSlot
 *   RecoverReply   u32 nonce | u64 fromSlot | u64 chosenSlot | u8 flags (1 more, 2 snapshot,
 *                  4 recovering) | [snapshot] | u32 entryCount | entryCount × (u64 slot | u64 ballot | batch)
 *   ReadIndex      u32 nonce | u64 seq
 *   ReadIndexReply u32 nonce | u64 seq | u64 index
 *   TimeoutNow     u8 target
 *
 * Decoded commands and snapshot data are views into the input buffer (no copy): the caller must
 * not reuse that buffer while the message is alive.
 */
/**
 * 2: heartbeats carry the read round; ReadIndex and ReadIndexReply. 3: TimeoutNow. 4: membership
 * changes in batches and the membership history in snapshots (and MEMBERSHIP_LAG_SLOTS, which
 * every replica must share).
 */
export const WIRE_VERSION = 4;
export const HEADER_SIZE = 12;
const U64_SIZE = 8;
const U32_SIZE = 4;
const BATCH_HEADER_SIZE = U64_SIZE + U32_SIZE;
const TWO_32 = 4294967296;
/** In a batch's command count: a membership change follows the commands. */
const CHANGE_FLAG = 0x80000000;
const MEMBER_HEADER_SIZE = 4;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });
/** High word limit that keeps a u64 a safe integer (2^53 = 2^21 * 2^32). */
const HIGH_WORD_LIMIT = 2097152;

/** Limits on what decode accepts, independent of the byte count (which bounds everything else). */
export const WIRE_LIMITS = {
  /** Commands in one batch. */
  batchCommandsMax: 1 << 20,
  /** Entries in one Promise or Chosen message. */
  entriesMax: 1 << 20,
  /** Replica ids are one byte. */
  replicaIdMax: 255,
} as const;

export type WireErrorCode = Extract<ErrorCode, `ERR_WIRE_${string}`>;

export type DecodeResult =
  | { readonly ok: true; readonly message: Message }
  | { readonly ok: false; readonly code: WireErrorCode; readonly reason: string };

// ---- encode -----------------------------------------------------------------------------------

function membersSize(members: readonly Member[]): number {
  let size = 1;
  for (const m of members) size += MEMBER_HEADER_SIZE + textEncoder.encode(m.address).byteLength;
  return size;
}

function changeSize(change: MembershipChange): number {
  return U64_SIZE + membersSize(change.baseMembers) + membersSize(change.members);
}

function historySize(history: readonly MembershipEntry[] | undefined): number {
  let size = 1;
  for (const entry of history ?? []) size += 2 * U64_SIZE + membersSize(entry.members);
  return size;
}

function batchSize(batch: Batch): number {
  let size = BATCH_HEADER_SIZE;
  for (const command of batch.commands) size += U32_SIZE + command.byteLength;
  if (batch.change !== undefined) size += changeSize(batch.change);
  return size;
}

function snapshotSize(snapshot: Snapshot): number {
  return U64_SIZE + U32_SIZE + snapshot.data.byteLength + historySize(snapshot.membership);
}

/** fromSlot | chosenSlot | flags | [snapshot] | entries: the body Promise and RecoverReply share. */
function voteListSize(message: PromiseMessage | RecoverReply): number {
  let size = 2 * U64_SIZE + 1 + U32_SIZE;
  if (message.snapshot !== null) size += snapshotSize(message.snapshot);
  for (const entry of message.entries) size += 2 * U64_SIZE + batchSize(entry.batch);
  return size;
}

function bodySize(message: Message): number {
  switch (message.type) {
    case MessageType.Prepare:
      return U64_SIZE;
    case MessageType.Heartbeat:
    case MessageType.HeartbeatReply:
      return 2 * U64_SIZE;
    case MessageType.ReadIndex:
      return U32_SIZE + U64_SIZE;
    case MessageType.ReadIndexReply:
      return U32_SIZE + 2 * U64_SIZE;
    case MessageType.Promise:
      return voteListSize(message);
    case MessageType.Recover:
      return U32_SIZE + U64_SIZE;
    case MessageType.RecoverReply:
      return U32_SIZE + voteListSize(message);
    case MessageType.Nack:
      return 0;
    case MessageType.Probe:
      return U64_SIZE;
    case MessageType.ProbeReply:
    case MessageType.TimeoutNow:
      return 1;
    case MessageType.Accept:
      return 2 * U64_SIZE + batchSize(message.batch);
    case MessageType.Accepted:
      return 2 * U64_SIZE;
    case MessageType.Chosen: {
      let size = U64_SIZE + U32_SIZE;
      for (const entry of message.entries) size += U64_SIZE + batchSize(entry.batch);
      return size;
    }
    case MessageType.InstallSnapshot:
      return snapshotSize(message.snapshot);
  }
}

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(value: number): void {
    this.view.setUint8(this.offset, value);
    this.offset += 1;
  }

  u32(value: number): void {
    this.view.setUint32(this.offset, value, true);
    this.offset += U32_SIZE;
  }

  u64(value: number): void {
    this.view.setUint32(this.offset, value % TWO_32, true);
    this.view.setUint32(this.offset + U32_SIZE, Math.floor(value / TWO_32), true);
    this.offset += U64_SIZE;
  }

  raw(data: Uint8Array): void {
    this.bytes.set(data, this.offset);
    this.offset += data.byteLength;
  }

  batch(batch: Batch): void {
    this.u64(batch.stampMs);
    this.u32(batch.commands.length | (batch.change !== undefined ? CHANGE_FLAG : 0));
    for (const command of batch.commands) {
      this.u32(command.byteLength);
      this.raw(command);
    }
    if (batch.change !== undefined) this.change(batch.change);
  }

  members(members: readonly Member[]): void {
    assert(members.length <= 255, "more than 255 members");
    this.u8(members.length);
    for (const m of members) {
      const address = textEncoder.encode(m.address);
      assert(address.byteLength <= MEMBER_ADDRESS_BYTES_MAX, "member address too long");
      this.u8(m.id);
      this.u8(m.voter ? 1 : 0);
      this.view.setUint16(this.offset, address.byteLength, true);
      this.offset += 2;
      this.raw(address);
    }
  }

  change(change: MembershipChange): void {
    this.u64(change.base);
    this.members(change.baseMembers);
    this.members(change.members);
  }

  history(history: readonly MembershipEntry[] | undefined): void {
    assert((history?.length ?? 0) <= 255, "membership history longer than 255 entries");
    this.u8(history?.length ?? 0);
    for (const entry of history ?? []) {
      this.u64(entry.slot);
      this.u64(entry.effectiveFrom);
      this.members(entry.members);
    }
  }

  snapshot(snapshot: Snapshot): void {
    this.u64(snapshot.slot);
    this.u32(snapshot.data.byteLength);
    this.raw(snapshot.data);
    this.history(snapshot.membership);
  }

  voteList(message: PromiseMessage | RecoverReply, extraFlags: number): void {
    this.u64(message.fromSlot);
    this.u64(message.chosenSlot);
    this.u8((message.more ? 1 : 0) | (message.snapshot !== null ? 2 : 0) | extraFlags);
    if (message.snapshot !== null) this.snapshot(message.snapshot);
    this.u32(message.entries.length);
    for (const entry of message.entries) {
      this.u64(entry.slot);
      this.u64(entry.ballot);
      this.batch(entry.batch);
    }
  }
}

/** Size in bytes of `message` once encoded. */
export function encodedSize(message: Message): number {
  return HEADER_SIZE + bodySize(message);
}

export function encodeMessage(message: Message): Uint8Array {
  const w = new Writer(encodedSize(message));
  w.u8(WIRE_VERSION);
  w.u8(message.type);
  w.u8(message.from);
  w.u8(message.to);
  w.u64(message.ballot);
  switch (message.type) {
    case MessageType.Prepare:
      w.u64(message.fromSlot);
      break;
    case MessageType.Promise:
      w.voteList(message, 0);
      break;
    case MessageType.Recover:
      w.u32(message.nonce);
      w.u64(message.fromSlot);
      break;
    case MessageType.RecoverReply:
      w.u32(message.nonce);
      w.voteList(message, message.recovering ? 4 : 0);
      break;
    case MessageType.Nack:
      break;
    case MessageType.Probe:
      w.u64(message.chosenSlot);
      break;
    case MessageType.ProbeReply:
      w.u8(message.granted ? 1 : 0);
      break;
    case MessageType.TimeoutNow:
      w.u8(message.target);
      break;
    case MessageType.Accept:
      w.u64(message.slot);
      w.u64(message.commitSlot);
      w.batch(message.batch);
      break;
    case MessageType.Accepted:
      w.u64(message.slot);
      w.u64(message.chosenSlot);
      break;
    case MessageType.Heartbeat:
      w.u64(message.commitSlot);
      w.u64(message.readRound);
      break;
    case MessageType.HeartbeatReply:
      w.u64(message.chosenSlot);
      w.u64(message.readRound);
      break;
    case MessageType.ReadIndex:
      w.u32(message.nonce);
      w.u64(message.seq);
      break;
    case MessageType.ReadIndexReply:
      w.u32(message.nonce);
      w.u64(message.seq);
      w.u64(message.index);
      break;
    case MessageType.Chosen:
      w.u64(message.commitSlot);
      w.u32(message.entries.length);
      for (const entry of message.entries) {
        w.u64(entry.slot);
        w.batch(entry.batch);
      }
      break;
    case MessageType.InstallSnapshot:
      w.snapshot(message.snapshot);
      break;
  }
  return w.bytes;
}

// ---- decode -----------------------------------------------------------------------------------

/** Thrown only inside this module and always turned into a DecodeResult. */
class WireDecodeError {
  readonly code: WireErrorCode;
  readonly reason: string;
  constructor(code: WireErrorCode, reason: string) {
    this.code = code;
    this.reason = reason;
  }
}

class Reader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  need(size: number, what: string): void {
    if (size > this.remaining) {
      throw new WireDecodeError(
        "ERR_WIRE_TRUNCATED",
        `${what} needs ${size} bytes at offset ${this.offset}, ${this.remaining} left`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    const value = this.view.getUint8(this.offset);
    this.offset += 1;
    return value;
  }

  u32(what: string): number {
    this.need(U32_SIZE, what);
    const value = this.view.getUint32(this.offset, true);
    this.offset += U32_SIZE;
    return value;
  }

  u64(what: string): number {
    this.need(U64_SIZE, what);
    const low = this.view.getUint32(this.offset, true);
    const high = this.view.getUint32(this.offset + U32_SIZE, true);
    if (high >= HIGH_WORD_LIMIT)
      throw new WireDecodeError("ERR_WIRE_FIELD", `${what} is not a safe integer`);
    this.offset += U64_SIZE;
    return high * TWO_32 + low;
  }

  slot(what: string): number {
    const slot = this.u64(what);
    if (slot < 1) throw new WireDecodeError("ERR_WIRE_FIELD", `${what} must be >= 1`);
    return slot;
  }

  raw(length: number, what: string): Uint8Array {
    this.need(length, what);
    const data = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return data;
  }

  /** A count of items each at least `itemSize` bytes: checked against the bytes left. */
  count(itemSize: number, max: number, what: string): number {
    const count = this.u32(what);
    if (count > max) throw new WireDecodeError("ERR_WIRE_LIMIT", `${what} ${count} exceeds ${max}`);
    this.need(count * itemSize, what);
    return count;
  }

  batch(): Batch {
    const stampMs = this.u64("batch stamp");
    const word = this.u32("command count");
    const hasChange = word >= CHANGE_FLAG;
    const count = hasChange ? word - CHANGE_FLAG : word;
    if (count > WIRE_LIMITS.batchCommandsMax)
      throw new WireDecodeError(
        "ERR_WIRE_LIMIT",
        `command count ${count} exceeds ${WIRE_LIMITS.batchCommandsMax}`,
      );
    this.need(count * U32_SIZE, "command count");
    const commands: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) commands[i] = this.raw(this.u32("command length"), "command");
    if (!hasChange) return { stampMs, commands };
    if (count > 0)
      throw new WireDecodeError("ERR_WIRE_FIELD", "a batch with a membership change has commands");
    return { stampMs, commands, change: this.change() };
  }

  members(what: string): Member[] {
    const count = this.u8(`${what} count`);
    this.need(count * MEMBER_HEADER_SIZE, what);
    const members: Member[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const id = this.u8(`${what} id`);
      const flags = this.u8(`${what} flags`);
      if (flags > 1) throw new WireDecodeError("ERR_WIRE_FIELD", `${what} flags ${flags}`);
      this.need(2, `${what} address length`);
      const length = this.view.getUint16(this.offset, true);
      this.offset += 2;
      const bytes = this.raw(length, `${what} address`);
      let address: string;
      try {
        address = textDecoder.decode(bytes);
      } catch {
        throw new WireDecodeError("ERR_WIRE_FIELD", `${what} address is not UTF-8`);
      }
      members[i] = { id, voter: flags === 1, address };
    }
    const problem = membersProblem(members);
    if (problem !== null) throw new WireDecodeError("ERR_WIRE_FIELD", `${what}: ${problem}`);
    return members;
  }

  change(): MembershipChange {
    const base = this.u64("change base");
    const baseMembers = this.members("base members");
    return { base, baseMembers, members: this.members("members") };
  }

  history(): MembershipEntry[] {
    const count = this.u8("membership history count");
    const entries: MembershipEntry[] = [];
    let last = -1;
    for (let i = 0; i < count; i++) {
      const slot = this.u64("membership slot");
      const effectiveFrom = this.u64("membership effectiveFrom");
      if (slot <= last || effectiveFrom < 1 || (slot > 0 && effectiveFrom <= slot))
        throw new WireDecodeError("ERR_WIRE_FIELD", "membership history out of order");
      last = slot;
      entries.push({ slot, effectiveFrom, members: this.members("history members") });
    }
    return entries;
  }

  snapshot(): Snapshot {
    const slot = this.slot("snapshot slot");
    const data = this.raw(this.u32("snapshot length"), "snapshot data");
    const membership = this.history();
    return membership.length > 0 ? { slot, data, membership } : { slot, data };
  }

  /** The body Promise and RecoverReply share; `flagsKnown` is the mask of flags the type has. */
  voteList(flagsKnown: number) {
    const fromSlot = this.slot("fromSlot");
    const chosenSlot = this.u64("chosenSlot");
    const flags = this.u8("flags");
    if ((flags & ~flagsKnown) !== 0)
      throw new WireDecodeError("ERR_WIRE_FIELD", `unknown flags ${flags}`);
    const snapshot = (flags & 2) !== 0 ? this.snapshot() : null;
    const count = this.count(
      2 * U64_SIZE + BATCH_HEADER_SIZE,
      WIRE_LIMITS.entriesMax,
      "entry count",
    );
    const entries: AcceptedEntry[] = new Array(count);
    for (let i = 0; i < count; i++) {
      entries[i] = {
        slot: this.slot("entry slot"),
        ballot: this.u64("entry ballot"),
        batch: this.batch(),
      };
    }
    return { fromSlot, chosenSlot, flags, snapshot, entries };
  }
}

function replicaId(value: number, what: string): number {
  if (value < 1 || value > WIRE_LIMITS.replicaIdMax) {
    throw new WireDecodeError("ERR_WIRE_FIELD", `${what} ${value} is not a replica id`);
  }
  return value;
}

function decodeBody(r: Reader, type: number, from: number, to: number, ballot: number): Message {
  switch (type) {
    case MessageType.Prepare:
      return { type: MessageType.Prepare, from, to, ballot, fromSlot: r.slot("fromSlot") };
    case MessageType.Promise: {
      const { flags, ...votes } = r.voteList(3);
      return { type: MessageType.Promise, from, to, ballot, ...votes, more: (flags & 1) !== 0 };
    }
    case MessageType.Recover: {
      const nonce = r.u32("nonce");
      return { type: MessageType.Recover, from, to, ballot, nonce, fromSlot: r.slot("fromSlot") };
    }
    case MessageType.RecoverReply: {
      const nonce = r.u32("nonce");
      const { flags, ...votes } = r.voteList(7);
      return {
        type: MessageType.RecoverReply,
        from,
        to,
        ballot,
        nonce,
        ...votes,
        more: (flags & 1) !== 0,
        recovering: (flags & 4) !== 0,
      };
    }
    case MessageType.Nack:
      return { type: MessageType.Nack, from, to, ballot };
    case MessageType.Probe:
      return { type: MessageType.Probe, from, to, ballot, chosenSlot: r.u64("chosenSlot") };
    case MessageType.TimeoutNow: {
      const target = replicaId(r.u8("target"), "target");
      return { type: MessageType.TimeoutNow, from, to, ballot, target };
    }
    case MessageType.ProbeReply: {
      const granted = r.u8("granted");
      if (granted > 1) throw new WireDecodeError("ERR_WIRE_FIELD", "granted must be 0 or 1");
      return { type: MessageType.ProbeReply, from, to, ballot, granted: granted === 1 };
    }
    case MessageType.Accept: {
      const slot = r.slot("slot");
      const commitSlot = r.u64("commitSlot");
      return { type: MessageType.Accept, from, to, ballot, slot, commitSlot, batch: r.batch() };
    }
    case MessageType.Accepted:
      return {
        type: MessageType.Accepted,
        from,
        to,
        ballot,
        slot: r.slot("slot"),
        chosenSlot: r.u64("chosenSlot"),
      };
    case MessageType.Heartbeat: {
      const commitSlot = r.u64("commitSlot");
      return {
        type: MessageType.Heartbeat,
        from,
        to,
        ballot,
        commitSlot,
        readRound: r.u64("readRound"),
      };
    }
    case MessageType.HeartbeatReply: {
      const chosenSlot = r.u64("chosenSlot");
      const readRound = r.u64("readRound");
      return { type: MessageType.HeartbeatReply, from, to, ballot, chosenSlot, readRound };
    }
    case MessageType.ReadIndex: {
      const nonce = r.u32("nonce");
      return { type: MessageType.ReadIndex, from, to, ballot, nonce, seq: r.u64("seq") };
    }
    case MessageType.ReadIndexReply: {
      const nonce = r.u32("nonce");
      const seq = r.u64("seq");
      return {
        type: MessageType.ReadIndexReply,
        from,
        to,
        ballot,
        nonce,
        seq,
        index: r.u64("index"),
      };
    }
    case MessageType.Chosen: {
      const commitSlot = r.u64("commitSlot");
      const count = r.count(U64_SIZE + BATCH_HEADER_SIZE, WIRE_LIMITS.entriesMax, "entry count");
      const entries: ChosenEntry[] = new Array(count);
      for (let i = 0; i < count; i++) entries[i] = { slot: r.slot("entry slot"), batch: r.batch() };
      return { type: MessageType.Chosen, from, to, ballot, commitSlot, entries };
    }
    case MessageType.InstallSnapshot:
      return { type: MessageType.InstallSnapshot, from, to, ballot, snapshot: r.snapshot() };
    default:
      throw new WireDecodeError("ERR_WIRE_TYPE", `unknown message type ${type}`);
  }
}

/** Decode untrusted bytes. Never throws for bad input: a malformed message is a typed error. */
export function decodeMessage(bytes: Uint8Array): DecodeResult {
  try {
    const r = new Reader(bytes);
    const version = r.u8("version");
    if (version !== WIRE_VERSION) {
      throw new WireDecodeError(
        "ERR_WIRE_VERSION",
        `wire version ${version}, expected ${WIRE_VERSION}`,
      );
    }
    const type = r.u8("type");
    const from = replicaId(r.u8("from"), "from");
    const to = replicaId(r.u8("to"), "to");
    const ballot = r.u64("ballot");
    const message = decodeBody(r, type, from, to, ballot);
    if (r.remaining !== 0) {
      throw new WireDecodeError("ERR_WIRE_TRAILING", `${r.remaining} bytes after the message`);
    }
    return { ok: true, message };
  } catch (error) {
    if (error instanceof WireDecodeError)
      return { ok: false, code: error.code, reason: error.reason };
    throw error;
  }
}

// ---- membership codecs for storage ------------------------------------------------------------

/** A membership change alone (the WAL keeps it beside a vote's batch). */
export function encodeMembershipChange(change: MembershipChange): Uint8Array {
  const w = new Writer(changeSize(change));
  w.change(change);
  return w.bytes;
}

/** Decode a stored change; a typed error for damaged bytes. */
export function decodeMembershipChange(
  bytes: Uint8Array,
): { ok: true; change: MembershipChange } | { ok: false; reason: string } {
  return decodeStandalone(bytes, (r) => ({ ok: true, change: r.change() }));
}

/** The membership history a snapshot carries (the snapshot file keeps it after the data). */
export function encodeMembershipHistory(history: readonly MembershipEntry[]): Uint8Array {
  const w = new Writer(historySize(history));
  w.history(history);
  return w.bytes;
}

export function decodeMembershipHistory(
  bytes: Uint8Array,
): { ok: true; history: MembershipEntry[] } | { ok: false; reason: string } {
  return decodeStandalone(bytes, (r) => ({ ok: true, history: r.history() }));
}

function decodeStandalone<T>(
  bytes: Uint8Array,
  read: (r: Reader) => T,
): T | { ok: false; reason: string } {
  try {
    const r = new Reader(bytes);
    const result = read(r);
    if (r.remaining !== 0) return { ok: false, reason: `${r.remaining} bytes after the value` };
    return result;
  } catch (error) {
    if (error instanceof WireDecodeError) return { ok: false, reason: error.reason };
    throw error;
  }
}

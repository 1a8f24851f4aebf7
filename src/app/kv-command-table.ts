/**
 * The embedded store's command table: every command module's specs (kv-command-spec.ts) joined,
 * with COMMAND, which answers from it. The one place that says what a command is: the store
 * checks arity here, the client port reads kinds, admin rights and value positions, the read
 * path reads kinds.
 */
import { assert } from "../core/errors.ts";
import { BIT_COMMANDS } from "./kv-bits.ts";
import { BLOCKING_COMMANDS } from "./kv-blocking.ts";
import { commandCommand } from "./kv-command-info.ts";
import { type CommandKind, type CommandSpec, keyIndexes } from "./kv-command-spec.ts";
import { GEO_COMMANDS } from "./kv-geo.ts";
import { HASH_COMMANDS } from "./kv-hashes.ts";
import { HLL_COMMANDS } from "./kv-hll.ts";
import { KEY_COMMANDS } from "./kv-keys.ts";
import { LIST_COMMANDS } from "./kv-lists.ts";
import { SERVER_COMMANDS } from "./kv-server.ts";
import { SESSION_COMMANDS } from "./kv-session-commands.ts";
import { SET_COMMANDS } from "./kv-sets.ts";
import { latin1 } from "./kv-shared.ts";
import { SORT_COMMANDS } from "./kv-sort.ts";
import { STREAM_COMMANDS, xreadBlockMs } from "./kv-streams.ts";
import { STRING_COMMANDS } from "./kv-strings.ts";
import { ZSET_COMMANDS } from "./kv-zsets.ts";

const MODULE_SPECS: readonly CommandSpec[] = [
  ...STRING_COMMANDS,
  ...BIT_COMMANDS,
  ...HLL_COMMANDS,
  ...KEY_COMMANDS,
  ...HASH_COMMANDS,
  ...LIST_COMMANDS,
  ...SET_COMMANDS,
  ...ZSET_COMMANDS,
  ...GEO_COMMANDS,
  ...SORT_COMMANDS,
  ...STREAM_COMMANDS,
  ...SERVER_COMMANDS,
  ...BLOCKING_COMMANDS,
  ...SESSION_COMMANDS,
];

/** Every command, COMMAND included, in table order. */
export const COMMAND_SPECS: readonly CommandSpec[] = [
  ...MODULE_SPECS,
  commandCommand(() => COMMAND_SPECS),
];

/** Lowercase and uppercase names → spec, so the usual spellings need no case conversion. */
const BY_NAME = new Map<string, CommandSpec>();
for (const spec of COMMAND_SPECS) {
  assert(!BY_NAME.has(spec.name), `command ${spec.name} listed twice`);
  BY_NAME.set(spec.name, spec);
  BY_NAME.set(spec.name.toUpperCase(), spec);
}

export function toBuffer(bytes: Uint8Array): Buffer {
  return bytes instanceof Buffer
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The spec of the command named `name` (any case), or undefined. */
export function findCommand(name: Uint8Array): CommandSpec | undefined {
  const text = latin1(toBuffer(name));
  return BY_NAME.get(text) ?? BY_NAME.get(text.toLowerCase());
}

/** Whether `args` has the number of arguments `spec` takes. */
export function arityFits(spec: CommandSpec, args: readonly unknown[]): boolean {
  return spec.arity > 0 ? args.length === spec.arity : args.length >= -spec.arity;
}

/** The kind of the command named `name` (any case), or undefined for an unknown command. */
export function commandKind(name: Uint8Array): CommandKind | undefined {
  return findCommand(name)?.kind;
}

/** The keys of a command (its spec's key positions); [] for an unknown command or wrong arity. */
export function commandKeys(args: readonly Uint8Array[]): Buffer[] {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  if (spec === undefined || !arityFits(spec, args)) return [];
  const buffers = args.map(toBuffer);
  return keyIndexes(spec, buffers).map((i) => buffers[i]!);
}

/** Whether the command `args` administers the store (the spec's `admin`); false if unknown. */
export function isAdminCommand(args: readonly Uint8Array[]): boolean {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  return spec?.admin?.(args.map(toBuffer)) ?? false;
}

/**
 * Whether `args` carries a value (the spec's `values`) longer than `valueBytesMax`: the store
 * would answer `value too large` and change nothing, so the client port may refuse the command
 * before proposing it. False for an unknown command, a wrong arity or unpaired values: the store
 * answers those with its own error. A command malformed in some other way too (a SET option the
 * store rejects) and carrying an oversized value gets `value too large` rather than that error.
 */
export function hasValueOver(args: readonly Uint8Array[], valueBytesMax: number): boolean {
  const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
  const values = spec?.values;
  if (spec === undefined || values === undefined) return false;
  if (!arityFits(spec, args)) return false;
  const buffers = args.every((arg) => arg instanceof Buffer)
    ? (args as readonly Buffer[])
    : args.map(toBuffer);
  const first = typeof values.first === "number" ? values.first : values.first(buffers);
  if (values.step === 0) return first < args.length && args[first]!.byteLength > valueBytesMax;
  // Pairs from args[first - 1]: an incomplete pair is the store's error to give.
  if (values.step === 2 && (args.length - first + 1) % 2 !== 0) return false;
  for (let i = first; i < args.length; i += values.step) {
    if (args[i]!.byteLength > valueBytesMax) return true;
  }
  return false;
}

/**
 * Whether every command of a request leaves the store as it is, so that a replica may answer it
 * from its own state at a read index instead of through the log. Unknown commands and wrong
 * arities go through the log, which answers them with the usual error.
 */
export function isReadOnlyRequest(commands: readonly (readonly Uint8Array[])[]): boolean {
  if (commands.length === 0) return false;
  for (const args of commands) {
    const spec = args.length > 0 ? findCommand(args[0]!) : undefined;
    if (spec === undefined || spec.kind === "write" || spec.kind === "session") return false;
    // XREAD … BLOCK may wait for a later write: only the log can serve it.
    if (spec.flags?.includes("blocking") === true && xreadBlockMs(args.map(toBuffer)) !== -1)
      return false;
    if (!arityFits(spec, args)) return false;
  }
  return true;
}

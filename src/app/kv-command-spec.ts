/**
 * What the embedded store's command table (kv-command-table.ts) says of each command: arity,
 * kind, flags, key positions, value positions and the handler. Each command module
 * (kv-strings.ts, kv-lists.ts, …) exports its own list of specs; the table joins them. COMMAND,
 * COMMAND INFO and COMMAND GETKEYS answer from these, the client port reads `kind`, `admin` and
 * `values`, the read path reads `kind`.
 */
import { type Handler, parseLong } from "./kv-shared.ts";

/**
 * How the runtime treats a command: "write" changes the data (replicate it; a user needs the
 * write right); "read" only reads (served at a read index, or through the log); "session"
 * changes its connection's state, which every replica keeps (SELECT, MULTI, SUBSCRIBE, PUBLISH),
 * or needs the log's fresh clock (TIME): through the log, the read right is enough;
 * "connection" touches nothing replicated (PING).
 */
export type CommandKind = "write" | "read" | "session" | "connection";

/**
 * Redis's command flags beyond those `kind` implies ("write" gives `write`, "read" gives
 * `readonly`), as COMMAND INFO prints them.
 */
export type CommandFlag =
  | "denyoom"
  | "fast"
  | "blocking"
  | "pubsub"
  | "noscript"
  | "loading"
  | "stale"
  | "admin"
  | "no_auth"
  | "no_multi"
  | "allow_busy"
  | "skip_slowlog"
  | "random"
  | "sort_for_script"
  | "may_replicate"
  | "no_mandatory_keys";

/**
 * Key positions as Redis's legacy (first, last, step) triple: args[first], args[first + step], …
 * up to args[last] (last -1: the last argument, -2 the one before, …). A function instead where
 * the positions depend on the arguments (ZUNIONSTORE's numkeys, XREAD's STREAMS): it returns the
 * indexes of the keys in `args`, and COMMAND INFO prints `legacy` for it.
 */
export type KeySpec =
  | { readonly first: number; readonly last: number; readonly step: number }
  | {
      readonly find: (args: readonly Buffer[]) => number[];
      readonly legacy: { readonly first: number; readonly last: number; readonly step: number };
    };

/**
 * Key positions of a command whose keys are counted by args[numkeysAt] and follow it (Redis's
 * keynum key spec), after the destination at `destinationAt` if it has one (ZUNIONSTORE's), and
 * followed by at least `after` arguments (LMPOP's LEFT|RIGHT, ZMPOP's MIN|MAX). A count that is
 * not a positive integer, or runs past the arguments, names no counted keys: the command refuses
 * those.
 */
export function numkeysKeySpec(numkeysAt: number, destinationAt?: number, after = 0): KeySpec {
  return {
    find: (args) => {
      const found = destinationAt === undefined ? [] : [destinationAt];
      const count = args[numkeysAt] === undefined ? null : parseLong(args[numkeysAt]);
      if (count === null || count < 1 || numkeysAt + count + after >= args.length) return found;
      for (let i = numkeysAt + 1; i <= numkeysAt + count; i++) found.push(i);
      return found;
    },
    legacy:
      destinationAt === undefined
        ? { first: 0, last: 0, step: 0 }
        : { first: destinationAt, last: destinationAt, step: 1 },
  };
}

/**
 * Value positions: args[first], args[first + step], … to the last argument; step 0: args[first]
 * alone. Step 2: values paired with the argument before each (MSET's key, HSET's field, ZADD's
 * score), pairs from args[first - 1] to the end.
 */
export interface ValueArgs {
  /** A function where options come before the values (ZADD). */
  readonly first: number | ((args: readonly Buffer[]) => number);
  readonly step: 0 | 1 | 2;
}

export interface CommandSpec {
  /** Lowercase, as Redis prints it in errors. */
  readonly name: string;
  /** Redis's arity: n > 0 exactly n args (name included); n < 0 at least -n. */
  readonly arity: number;
  readonly kind: CommandKind;
  readonly handler: Handler;
  /** Flags COMMAND INFO prints besides write/readonly; absent: none. */
  readonly flags?: readonly CommandFlag[];
  /** Where its keys are; absent: it takes no keys. */
  readonly keys?: KeySpec;
  /**
   * Whether this call administers the whole store (FLUSHALL, CONFIG SET) rather than reading or
   * writing keys; absent: never. Client roles (src/workers/client-rights.ts) read it.
   */
  readonly admin?: (args: readonly Buffer[]) => boolean;
  /**
   * Which arguments are values: those the handler refuses with `value too large` when longer
   * than `valueBytesMax`; absent: none (keys, fields, patterns, options are not values). The
   * client port refuses an oversized one before proposing the command (hasValueOver).
   */
  readonly values?: ValueArgs;
}

export const VALUE_AT_2: ValueArgs = { first: 2, step: 0 };
export const VALUE_AT_3: ValueArgs = { first: 3, step: 0 };
export const VALUES_FROM_2: ValueArgs = { first: 2, step: 1 };
export const VALUES_FROM_3: ValueArgs = { first: 3, step: 1 };
export const PAIRED_FROM_2: ValueArgs = { first: 2, step: 2 };
export const PAIRED_FROM_3: ValueArgs = { first: 3, step: 2 };

/** The usual key positions. */
export const KEY_1: KeySpec = { first: 1, last: 1, step: 1 };
export const KEYS_1_2: KeySpec = { first: 1, last: 2, step: 1 };
export const KEYS_FROM_1: KeySpec = { first: 1, last: -1, step: 1 };
/** Every other argument from 1 (MSET's keys). */
export const KEYS_PAIRED_FROM_1: KeySpec = { first: 1, last: -1, step: 2 };
/** All but the last (BLPOP k1 k2 timeout). */
export const KEYS_BEFORE_LAST: KeySpec = { first: 1, last: -2, step: 1 };

export const ALWAYS = (): boolean => true;

/** The indexes of `spec`'s keys in `args` (a well-formed call: arity checked). */
export function keyIndexes(spec: CommandSpec, args: readonly Buffer[]): number[] {
  const keys = spec.keys;
  if (keys === undefined) return [];
  if ("find" in keys) return keys.find(args);
  const last = keys.last < 0 ? args.length + keys.last : keys.last;
  const found: number[] = [];
  for (let i = keys.first; i <= last && i < args.length; i += keys.step) found.push(i);
  return found;
}

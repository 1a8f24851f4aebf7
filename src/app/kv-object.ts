/**
 * OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP: what redis-server 7.0 would say of a key's
 * internal representation, as far as this store can tell (its spec is in kv-keys.ts's list).
 *
 * The store keeps one representation per type and no history, so ENCODING derives Redis 7.0's
 * answer from the value as it is now, with redis.conf's defaults: a string is "int" when it reads
 * as an int64 in Redis's canonical form (at most 20 bytes), "embstr" up to 44 bytes, else "raw";
 * a list is "quicklist"; a hash "listpack" while it has at most 512 fields
 * (hash-max-listpack-entries) and no field or value longer than 64 bytes
 * (hash-max-listpack-value), else "hashtable"; a set "intset" while it has at most 512 members
 * (set-max-intset-entries), all integers, else "hashtable"; a sorted set "listpack" while it has
 * at most 128 members (zset-max-listpack-entries) none longer than 64 bytes
 * (zset-max-listpack-value), else "skiplist"; a stream "stream". Where this differs from Redis:
 * Redis never converts a value back to the small encoding, so a hash, set or sorted set that was
 * once large (or held one long or non-integer element) and shrank stays "hashtable"/"skiplist"
 * there but reads small here; and a string built by APPEND, SETRANGE or INCRBYFLOAT is "raw" or
 * "embstr" in Redis whatever its text, where we answer from the text alone.
 */
import type { KvValue } from "./kv-keyspace.ts";
import { isStringValue, KvHash, KvList, KvSet, KvZset } from "./kv-keyspace.ts";
import { type Handler, latin1, parseInt64, upper, wrongArity } from "./kv-shared.ts";
import { array, bulk, errorReply, integer, NULL_BULK, simpleString, ZERO } from "./resp.ts";

/** redis.conf's defaults that decide Redis 7.0's encodings. */
const EMBSTR_BYTES_MAX = 44;
const INT_STRING_BYTES_MAX = 20;
const HASH_LISTPACK_ENTRIES_MAX = 512;
const HASH_LISTPACK_VALUE_BYTES_MAX = 64;
const SET_INTSET_ENTRIES_MAX = 512;
const ZSET_LISTPACK_ENTRIES_MAX = 128;
const ZSET_LISTPACK_VALUE_BYTES_MAX = 64;
/** Redis shares one object for each integer string 0..9999 (OBJ_SHARED_INTEGERS). */
const SHARED_INTEGERS = 10_000;
/** OBJECT REFCOUNT of a shared object: INT_MAX (OBJ_SHARED_REFCOUNT). */
const SHARED_REFCOUNT = 2 ** 31 - 1;

function isIntegerString(value: Buffer): boolean {
  return value.length <= INT_STRING_BYTES_MAX && parseInt64(value) !== null;
}

function hashEncoding(hash: KvHash): string {
  if (hash.fields.size > HASH_LISTPACK_ENTRIES_MAX) return "hashtable";
  for (const [field, value] of hash.fields) {
    if (field.length > HASH_LISTPACK_VALUE_BYTES_MAX) return "hashtable";
    if (value.length > HASH_LISTPACK_VALUE_BYTES_MAX) return "hashtable";
  }
  return "listpack";
}

function setEncoding(set: KvSet): string {
  if (set.members.size > SET_INTSET_ENTRIES_MAX) return "hashtable";
  for (const member of set.members) {
    if (member.length > INT_STRING_BYTES_MAX) return "hashtable";
    if (parseInt64(Buffer.from(member, "latin1")) === null) return "hashtable";
  }
  return "intset";
}

function zsetEncoding(zset: KvZset): string {
  if (zset.size > ZSET_LISTPACK_ENTRIES_MAX) return "skiplist";
  for (const item of zset.items) {
    if (item.member.length > ZSET_LISTPACK_VALUE_BYTES_MAX) return "skiplist";
  }
  return "listpack";
}

/** Redis 7.0's encoding name for `value` (see the top of this file for where we differ). */
export function encodingOf(value: KvValue): string {
  if (isStringValue(value)) {
    if (isIntegerString(value)) return "int";
    return value.length <= EMBSTR_BYTES_MAX ? "embstr" : "raw";
  }
  if (value instanceof KvList) return "quicklist"; // 7.0: every list (listpack lists are 7.2's)
  if (value instanceof KvHash) return hashEncoding(value);
  if (value instanceof KvSet) return setEncoding(value);
  if (value instanceof KvZset) return zsetEncoding(value);
  return "stream";
}

/** Redis's refcount: the shared object of an integer string 0..9999, else one reference. */
function refcountOf(value: KvValue): number {
  if (!isStringValue(value) || !isIntegerString(value)) return 1;
  const n = parseInt64(value)!;
  return typeof n === "number" && n >= 0 && n < SHARED_INTEGERS ? SHARED_REFCOUNT : 1;
}

const HELP = array(
  [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
  ].map(simpleString),
);

/** The store's maxmemory-policy is always noeviction (kv-config.ts): LFU is never tracked. */
const ERR_NO_LFU = errorReply(
  "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
);

const KEY_SUBCOMMANDS = new Set(["ENCODING", "REFCOUNT", "IDLETIME", "FREQ"]);

/**
 * OBJECT's subcommands, with Redis 7.0's container-command errors (the subcommand's own arity,
 * "unknown subcommand"). IDLETIME is always 0: the store keeps no access clock (it would have to
 * be the log's, and a read served outside the log could not update it on every replica).
 */
export const object: Handler = (keyspace, args, now) => {
  const sub = upper(args[1]!);
  if (sub === "HELP") return args.length === 2 ? HELP : wrongArity("object|help");
  if (!KEY_SUBCOMMANDS.has(sub)) {
    const name = latin1(args[1]!).slice(0, 128);
    return errorReply(`ERR unknown subcommand '${name}'. Try OBJECT HELP.`);
  }
  if (args.length !== 3) return wrongArity(`object|${sub.toLowerCase()}`);
  const entry = keyspace.lookup(latin1(args[2]!), now);
  if (entry === undefined) return NULL_BULK;
  switch (sub) {
    case "ENCODING":
      return bulk(encodingOf(entry.value));
    case "REFCOUNT":
      return integer(refcountOf(entry.value));
    case "IDLETIME":
      return ZERO;
    default:
      return ERR_NO_LFU;
  }
};

/** OBJECT's key: args[2] for the subcommands that take one (none for HELP). */
export function objectKeys(args: readonly Buffer[]): number[] {
  return args.length >= 3 && KEY_SUBCOMMANDS.has(upper(args[1]!)) ? [2] : [];
}

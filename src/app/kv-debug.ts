/**
 * DEBUG: the subcommands that make sense in a replicated store, and a refusal that says why for
 * the rest. DEBUG OBJECT, DEBUG SLEEP 0, DEBUG DIGEST, DEBUG DIGEST-VALUE, DEBUG CHANGE-REPL-ID
 * (a no-op: there is no Redis replication id to change), DEBUG HELP.
 *
 * DEBUG DIGEST and DIGEST-VALUE compute Redis 7.0's own digest (debug.c computeDatasetDigest and
 * xorObjectDigest: SHA-1s xored for unordered elements, chained for ordered ones), so the same
 * data gives the same 40 hex digits here and in a redis-server, and every replica at the same log
 * position gives the same digest: a way to compare replicas, or a replica with a redis-server
 * loaded with the same data. Keys whose TTL has run out are left out (Redis counts those it has
 * not collected yet, which depends on its own timers).
 */
import { createHash } from "node:crypto";
import {
  type Keyspace,
  KvHash,
  KvList,
  KvSet,
  type KvValue,
  KvZset,
  NO_EXPIRY,
} from "./kv-keyspace.ts";
import { formatScore } from "./kv-scores.ts";
import { checkReplySize, type Handler, latin1, parseInt64, upper } from "./kv-shared.ts";
import { idMs, idSeq, KvStream } from "./kv-stream.ts";
import { array, arrayHeaderSize, errorReply, OK, simpleString } from "./resp.ts";

const DIGEST_BYTES = 20;

function sha1(bytes: Uint8Array): Buffer {
  return createHash("sha1").update(bytes).digest();
}

/** digest ^= SHA1(bytes): order does not matter (Redis's xorDigest). */
function xorDigest(digest: Buffer, bytes: Uint8Array): void {
  const hash = sha1(bytes);
  for (let i = 0; i < DIGEST_BYTES; i++) digest[i]! ^= hash[i]!;
}

/** digest = SHA1(digest ^ SHA1(bytes)): order matters (Redis's mixDigest). */
function mixDigest(digest: Buffer, bytes: Uint8Array): void {
  xorDigest(digest, bytes);
  sha1(digest).copy(digest);
}

function text(value: string): Buffer {
  return Buffer.from(value, "latin1");
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** Redis's object type codes (OBJ_STRING …), which its digest mixes in. */
function typeCode(value: KvValue): number {
  if (value instanceof Buffer) return 0;
  if (value instanceof KvList) return 1;
  if (value instanceof KvSet) return 2;
  if (value instanceof KvZset) return 3;
  if (value instanceof KvHash) return 4;
  return 6;
}

/** Redis's xorObjectDigest: mixes the value (and whether it has a TTL) into `digest`. */
function xorValueDigest(digest: Buffer, value: KvValue, hasTtl: boolean): void {
  mixDigest(digest, u32(typeCode(value)));
  if (value instanceof Buffer) mixDigest(digest, value);
  else if (value instanceof KvList) {
    for (let i = 0; i < value.length; i++) mixDigest(digest, value.at(i));
  } else if (value instanceof KvSet) {
    for (const member of value.members) xorDigest(digest, text(member));
  } else if (value instanceof KvZset) {
    for (const [member, score] of value.scores) {
      const element = Buffer.alloc(DIGEST_BYTES);
      mixDigest(element, text(member));
      mixDigest(element, text(formatScore(score)));
      xorDigest(digest, element);
    }
  } else if (value instanceof KvHash) {
    for (const [field, fieldValue] of value.fields) {
      const element = Buffer.alloc(DIGEST_BYTES);
      mixDigest(element, text(field));
      mixDigest(element, fieldValue);
      xorDigest(digest, element);
    }
  } else if (value instanceof KvStream) {
    // Entries in order: "ms.seq", then each field and value (consumer groups are not digested).
    for (const entry of value) {
      mixDigest(digest, text(`${idMs(entry.id)}.${idSeq(entry.id)}`));
      for (const part of entry.fields) mixDigest(digest, part);
    }
  }
  if (hasTtl) xorDigest(digest, text("!!expire!!"));
}

/** One key's digest, as DEBUG DIGEST-VALUE prints it (all zeros for a missing key). */
function keyDigest(keyspace: Keyspace, key: string, now: number): Buffer {
  const digest = Buffer.alloc(DIGEST_BYTES);
  const entry = keyspace.entries.get(key);
  if (entry !== undefined && !(now > entry.expiresAtMs))
    xorValueDigest(digest, entry.value, entry.expiresAtMs !== NO_EXPIRY);
  return digest;
}

/** Redis's computeDatasetDigest over the store's databases (only `keyspace` when alone). */
export function datasetDigest(databases: readonly Keyspace[], now: number): Buffer {
  const final = Buffer.alloc(DIGEST_BYTES);
  for (let db = 0; db < databases.length; db++) {
    const keyspace = databases[db]!;
    if (keyspace.liveCount(now) === 0) continue;
    mixDigest(final, u32(db));
    for (const [key, entry] of keyspace.entries) {
      if (now > entry.expiresAtMs) continue;
      const digest = Buffer.alloc(DIGEST_BYTES);
      mixDigest(digest, text(key));
      xorValueDigest(digest, entry.value, entry.expiresAtMs !== NO_EXPIRY);
      xorDigest(final, digest);
    }
  }
  return final;
}

const INTSET_ENTRIES_MAX = 512;
const LISTPACK_ENTRIES_MAX = 128;
const LISTPACK_VALUE_MAX = 64;
const EMBSTR_BYTES_MAX = 44;

/**
 * The encoding redis-server 7.0 (default settings) gives a value of this content when it is built
 * afresh. Redis also remembers history (a hash grown past the listpack limits stays a hashtable
 * after it shrinks; APPEND makes a string raw): those cases read differently here.
 */
export function redisEncoding(value: KvValue): string {
  if (value instanceof Buffer) {
    if (value.length <= 20 && parseInt64(value) !== null) return "int";
    return value.length <= EMBSTR_BYTES_MAX ? "embstr" : "raw";
  }
  if (value instanceof KvList) return "quicklist";
  if (value instanceof KvSet) {
    if (value.members.size > INTSET_ENTRIES_MAX) return "hashtable";
    for (const member of value.members) if (parseInt64(text(member)) === null) return "hashtable";
    return "intset";
  }
  if (value instanceof KvHash) {
    if (value.fields.size > LISTPACK_ENTRIES_MAX) return "hashtable";
    for (const [field, fieldValue] of value.fields)
      if (field.length > LISTPACK_VALUE_MAX || fieldValue.length > LISTPACK_VALUE_MAX)
        return "hashtable";
    return "listpack";
  }
  if (value instanceof KvZset) {
    if (value.size > LISTPACK_ENTRIES_MAX) return "skiplist";
    for (const member of value.scores.keys())
      if (member.length > LISTPACK_VALUE_MAX) return "skiplist";
    return "listpack";
  }
  return "stream";
}

/** The value's payload bytes (the store's accounting without the per-key overhead). */
function payloadBytes(value: KvValue): number {
  return value instanceof Buffer ? value.length : (value as { bytes: number }).bytes;
}

function hex(digest: Buffer): Buffer {
  return simpleString(digest.toString("hex"));
}

function syntaxError(subcommand: Buffer): Buffer {
  return errorReply(
    `ERR unknown subcommand or wrong number of arguments for '${latin1(subcommand)}'. Try DEBUG HELP.`,
  );
}

const INTERNALS = "inspect or tune redis-server's internals, which apus-smr does not have";

/** Why each of Redis 7.0's other DEBUG subcommands would be wrong here. */
const REFUSED: ReadonlyMap<string, string> = new Map([
  ["RELOAD", "reload one replica's data outside the log"],
  ["LOADAOF", "reload one replica's data outside the log"],
  ["POPULATE", "write keys outside the log"],
  ["REPLICATE", "replicate a command outside the log"],
  ["SET-ACTIVE-EXPIRE", "change how one replica expires keys; expiry follows the log"],
  ["SLEEP", "stop every replica applying the log for that long"],
  ["RESTART", "restart a replica"],
  ["CRASH-AND-RECOVER", "restart a replica"],
  ["SEGFAULT", "crash a replica"],
  ["PANIC", "crash a replica"],
  ["ASSERT", "crash a replica"],
  ["OOM", "crash a replica"],
  ["AOF-FLUSH-SLEEP", "delay an AOF, which apus-smr does not have"],
  ["CONFIG-REWRITE-FORCE-ALL", "rewrite a config file, which apus-smr does not have"],
  ["LOG", "write to redis-server's log, which apus-smr does not have"],
  ["PROTOCOL", "send RESP test replies, which the store does not make"],
  ...[
    "CLIENT-EVICTION",
    "DICT-RESIZING",
    "HTSTATS",
    "HTSTATS-KEY",
    "JMAP",
    "LEAK",
    "LISTPACK",
    "MALLCTL",
    "MALLCTL-STR",
    "PAUSE-CRON",
    "QUICKLIST-PACKED-THRESHOLD",
    "REPLYBUFFER",
    "SCRIPT",
    "SDSLEN",
    "SET-DISABLE-DENY-SCRIPTS",
    "SET-SKIP-CHECKSUM-VALIDATION",
    "STRINGMATCH-LEN",
    "ZIPLIST",
  ].map((sub) => [sub, INTERNALS] as const),
]);

function refuse(subcommand: Buffer, why: string): Buffer {
  return errorReply(
    `ERR DEBUG ${upper(subcommand)} is not supported by apus-smr (it would ${why})`,
  );
}

const DEBUG_HELP = array(
  [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID",
    "    Does nothing: apus-smr has no Redis replication id.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "OBJECT <key>",
    "    Show low level info about the value of <key>.",
    "SLEEP 0",
    "    Does nothing (a longer sleep would stop every replica).",
    "HELP",
    "    Prints this help.",
  ].map((line) => simpleString(line)),
);

/** strtod's reading of DEBUG SLEEP's argument: a leading number, else 0. */
function sleepSeconds(arg: Buffer): number {
  const match = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?/i.exec(latin1(arg));
  return match === null ? 0 : Number(match[0]);
}

export const debug: Handler = (keyspace, args, now, context) => {
  const sub = upper(args[1]!);
  switch (sub) {
    case "HELP":
      return args.length === 2 ? DEBUG_HELP : syntaxError(args[1]!);
    case "OBJECT": {
      if (args.length !== 3) return syntaxError(args[1]!);
      const entry = keyspace.entries.get(latin1(args[2]!));
      if (entry === undefined || now > entry.expiresAtMs) return errorReply("ERR no such key");
      // Only what is true here (no refcount, no LRU clock); "Value at" leads, as parsers
      // (redis-py's) expect, with no address. serializedlength: the payload bytes, not an RDB's.
      return simpleString(
        `Value at:0x0 encoding:${redisEncoding(entry.value)} serializedlength:${payloadBytes(entry.value)}`,
      );
    }
    case "SLEEP":
      if (args.length !== 3) return syntaxError(args[1]!);
      return sleepSeconds(args[2]!) > 0 ? refuse(args[1]!, REFUSED.get("SLEEP")!) : OK;
    case "DIGEST": {
      if (args.length !== 2) return syntaxError(args[1]!);
      const databases = context.databases;
      const all = databases === undefined ? [keyspace] : [];
      for (let i = 0; databases !== undefined && i < databases.count; i++)
        all.push(databases.get(i));
      return hex(datasetDigest(all, now));
    }
    case "DIGEST-VALUE": {
      // Each key costs "+<40 hex>\r\n" of reply: many short keys must not make a huge one.
      const size = arrayHeaderSize(args.length - 2) + (args.length - 2) * (DIGEST_BYTES * 2 + 3);
      const tooLarge = checkReplySize(keyspace, size);
      if (tooLarge !== undefined) return tooLarge;
      return array(args.slice(2).map((key) => hex(keyDigest(keyspace, latin1(key), now))));
    }
    case "CHANGE-REPL-ID":
      return args.length === 2 ? OK : syntaxError(args[1]!);
    default: {
      const why = REFUSED.get(sub);
      if (why !== undefined) return refuse(args[1]!, why);
      return syntaxError(args[1]!);
    }
  }
};

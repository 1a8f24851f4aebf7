/**
 * The command table of the redis-server that transparent mode replicates, read from the server
 * itself, and the keys of a command read from it.
 *
 * `loadRedisCommandTable(port)` sends `COMMAND` (RESP2) to 127.0.0.1:port and builds one
 * `RedisCommandSpec` per command and per subcommand, keyed by lower-case name (`get`,
 * `object|encoding`). Each spec keeps what Redis 7 says of the command: arity, flags, the legacy
 * first/last/step key range, ACL categories, tips and key specs. A Redis older than 7 answers
 * without tips, key specs and subcommands; those fields are then empty.
 *
 * `keysOf(table, args)` finds the keys of one command the way Redis does
 * (`getKeysFromCommandWithSpecs` in db.c), or answers "all" when it cannot be sure:
 *
 * | command                                   | keys                                               |
 * | ----------------------------------------- | -------------------------------------------------- |
 * | unknown command or unknown subcommand      | "all"                                              |
 * | wrong number of arguments                  | none: Redis refuses it before touching anything    |
 * | pubsub flag (PUBLISH, SSUBSCRIBE, …)       | "all": channels are not keys, delivery is global   |
 * | keyless, global (SELECT, SWAPDB, FLUSHALL, FLUSHDB, DBSIZE, KEYS, SCAN, RANDOMKEY; any keyless command flagged write/admin or in @keyspace @read @write @admin @dangerous @pubsub @transaction @scripting @blocking) | "all" |
 * | keyless, connection-local (PING, ECHO, TIME, CLIENT ID, AUTH, …) | none                       |
 * | SORT, SORT_RO                              | the sorted key and the STORE key; "all" when a BY or GET pattern contains `*` (it reads other keys) |
 * | movablekeys (EVAL, ZUNIONSTORE, XREAD, BLMPOP, GEORADIUS … STORE, …) | key specs: `index` or `keyword` begin search, then `range` (lastkey, keystep, limit) or `keynum` (keynumidx, firstkey, keystep) |
 * |                                            | "all" when a spec is `unknown` or `incomplete` (MIGRATE) or does not fit the arguments |
 * | every other command                        | the legacy range: first, last (negative: from the end), step |
 *
 * Key names are compared byte for byte and regardless of the database (SELECT), which can only
 * make two commands look related when they are not, never the reverse.
 */
import net from "node:net";
import { ApusError, assert } from "../../core/errors.ts";

/** The codes `loadRedisCommandTable` rejects with. */
export const REDIS_TABLE_ERROR_CODES = [
  /** The connection to redis-server failed, or it closed before answering. */
  "ERR_REDIS_TABLE_CONNECT",
  /** redis-server did not answer COMMAND in time. */
  "ERR_REDIS_TABLE_TIMEOUT",
  /** The answer is not RESP2, not a command table, or an error (NOAUTH, …). */
  "ERR_REDIS_TABLE_REPLY",
] as const;

export type RedisTableErrorCode = (typeof REDIS_TABLE_ERROR_CODES)[number];

export class RedisTableError extends ApusError<RedisTableErrorCode> {}

/** Largest COMMAND reply accepted, bytes (Redis 7.0 sends about 90 KiB). */
export const COMMAND_REPLY_BYTES_MAX = 16 * 1024 * 1024;
/** Deepest nesting of RESP arrays accepted in the COMMAND reply (Redis 7 uses 6). */
export const COMMAND_REPLY_DEPTH_MAX = 16;
/** How long `loadRedisCommandTable` waits for the connection and the reply, ms. */
export const COMMAND_LOAD_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// A tiny RESP2 reader, enough for the COMMAND reply.

export type Resp2Value = string | number | Buffer | null | Resp2Error | readonly Resp2Value[];

/** A RESP2 error reply (`-ERR …`), kept as a value so a caller can tell it from a string. */
export class Resp2Error {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** One RESP2 value read at `offset`, with the offset after it; null when `buf` ends too soon. */
export function readResp2(
  buf: Buffer,
  offset = 0,
  depth = 0,
): { value: Resp2Value; next: number } | null {
  if (depth > COMMAND_REPLY_DEPTH_MAX) throw protocolError(`arrays nested deeper than ${depth}`);
  const lineEnd = buf.indexOf("\r\n", offset, "latin1");
  if (lineEnd === -1) return null;
  const type = buf[offset];
  const line = buf.toString("latin1", offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case 0x2b /* + */:
      return { value: line, next: afterLine };
    case 0x2d /* - */:
      return { value: new Resp2Error(line), next: afterLine };
    case 0x3a /* : */:
      return { value: parseLength(line, -Number.MAX_SAFE_INTEGER), next: afterLine };
    case 0x24 /* $ */:
      {
        const length = parseLength(line, -1);
        if (length === -1) return { value: null, next: afterLine };
        if (buf.length < afterLine + length + 2) return null;
        if (buf[afterLine + length] !== 0x0d || buf[afterLine + length + 1] !== 0x0a) {
          throw protocolError("bulk string not followed by CRLF");
        }
        return { value: buf.subarray(afterLine, afterLine + length), next: afterLine + length + 2 };
      }
    case 0x2a /* * */:
      {
        const count = parseLength(line, -1);
        if (count === -1) return { value: null, next: afterLine };
        const items: Resp2Value[] = [];
        let next = afterLine;
        for (let i = 0; i < count; i++) {
          const item = readResp2(buf, next, depth + 1);
          if (item === null) return null;
          items.push(item.value);
          next = item.next;
        }
        return { value: items, next };
      }
    default:
      throw protocolError(`unexpected type byte 0x${(type ?? 0).toString(16)}`);
  }
}

function parseLength(text: string, min: number): number {
  if (!/^-?\d{1,16}$/.test(text)) throw protocolError(`bad number ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < min || value > COMMAND_REPLY_BYTES_MAX) {
    throw protocolError(`number ${value} out of range`);
  }
  return value;
}

function protocolError(what: string): RedisTableError {
  return new RedisTableError(
    "ERR_REDIS_TABLE_REPLY",
    `redis-server's COMMAND reply is not RESP2: ${what}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The table.

export type BeginSearch =
  | { readonly type: "index"; readonly index: number }
  | { readonly type: "keyword"; readonly keyword: string; readonly startFrom: number }
  | { readonly type: "unknown" };

export type FindKeys =
  | {
      readonly type: "range";
      readonly lastKey: number;
      readonly keyStep: number;
      readonly limit: number;
    }
  | {
      readonly type: "keynum";
      readonly keyNumIndex: number;
      readonly firstKey: number;
      readonly keyStep: number;
    }
  | { readonly type: "unknown" };

export interface KeySpec {
  /** Lower-case: `rw`, `ro`, `ow`, `rm`, `access`, `update`, `insert`, `delete`, `not_key`, `incomplete`, `variable_flags`. */
  readonly flags: ReadonlySet<string>;
  readonly beginSearch: BeginSearch;
  readonly findKeys: FindKeys;
}

export interface RedisCommandSpec {
  /** Lower case; `container|sub` for a subcommand. */
  readonly name: string;
  /** N: exactly N arguments, the name included; -N: at least N. */
  readonly arity: number;
  /** `write`, `readonly`, `denyoom`, `admin`, `pubsub`, `noscript`, `blocking`, `movablekeys`, … */
  readonly flags: ReadonlySet<string>;
  /** The legacy key range: 0 when keyless; `lastKey` < 0 counts from the end. */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly keyStep: number;
  /** `@read`, `@write`, `@keyspace`, … */
  readonly aclCategories: ReadonlySet<string>;
  /** `nondeterministic_output`, `nondeterministic_output_order`, `request_policy:…`, … */
  readonly tips: ReadonlySet<string>;
  readonly keySpecs: readonly KeySpec[];
  /** Lower-case names of the subcommands (`encoding` for `object|encoding`); empty for most. */
  readonly subcommands: readonly string[];
}

export interface RedisCommandTable {
  /** Every command and subcommand by lower-case name (`get`, `object|encoding`). */
  readonly commands: ReadonlyMap<string, RedisCommandSpec>;
}

/** Builds the table from the parsed reply of `COMMAND`. */
export function buildRedisCommandTable(reply: Resp2Value): RedisCommandTable {
  if (reply instanceof Resp2Error) {
    throw new RedisTableError(
      "ERR_REDIS_TABLE_REPLY",
      `redis-server refused COMMAND: ${reply.message}`,
    );
  }
  const commands = new Map<string, RedisCommandSpec>();
  for (const entry of asArray(reply, "COMMAND reply")) addCommand(commands, entry);
  assert(commands.size > 0, "COMMAND returned no command");
  return { commands };
}

function addCommand(commands: Map<string, RedisCommandSpec>, entry: Resp2Value): void {
  const fields = asArray(entry, "command entry");
  if (fields.length < 6) throw protocolError("a command entry has fewer than 6 fields");
  const name = asText(fields[0], "name").toLowerCase();
  const subEntries = fields[9] === undefined ? [] : asArray(fields[9], "subcommands");
  const subcommands: string[] = [];
  for (const sub of subEntries) {
    const subName = asText(asArray(sub, "subcommand")[0], "subcommand name").toLowerCase();
    subcommands.push(subName.slice(subName.indexOf("|") + 1));
    addCommand(commands, sub);
  }
  commands.set(name, {
    name,
    arity: asInteger(fields[1], "arity"),
    flags: textSet(fields[2], "flags"),
    firstKey: asInteger(fields[3], "first key"),
    lastKey: asInteger(fields[4], "last key"),
    keyStep: asInteger(fields[5], "step"),
    aclCategories: fields[6] === undefined ? new Set() : textSet(fields[6], "ACL categories"),
    tips: fields[7] === undefined ? new Set() : textSet(fields[7], "tips"),
    keySpecs: fields[8] === undefined ? [] : asArray(fields[8], "key specs").map(keySpecOf),
    subcommands,
  });
}

function keySpecOf(value: Resp2Value): KeySpec {
  const spec = asMap(value, "key spec");
  const begin = asMap(spec.get("begin_search") ?? [], "begin_search");
  const find = asMap(spec.get("find_keys") ?? [], "find_keys");
  const beginArgs = asMap(begin.get("spec") ?? [], "begin_search spec");
  const findArgs = asMap(find.get("spec") ?? [], "find_keys spec");
  const field = (map: ReadonlyMap<string, Resp2Value>, key: string): number =>
    asInteger(map.get(key) ?? null, key);
  let beginSearch: BeginSearch = { type: "unknown" };
  const beginType = asText(begin.get("type") ?? "unknown", "begin_search type");
  if (beginType === "index") beginSearch = { type: "index", index: field(beginArgs, "index") };
  if (beginType === "keyword") {
    beginSearch = {
      type: "keyword",
      keyword: asText(beginArgs.get("keyword") ?? null, "keyword"),
      startFrom: field(beginArgs, "startfrom"),
    };
  }
  let findKeys: FindKeys = { type: "unknown" };
  const findType = asText(find.get("type") ?? "unknown", "find_keys type");
  if (findType === "range") {
    findKeys = {
      type: "range",
      lastKey: field(findArgs, "lastkey"),
      keyStep: field(findArgs, "keystep"),
      limit: field(findArgs, "limit"),
    };
  }
  if (findType === "keynum") {
    findKeys = {
      type: "keynum",
      keyNumIndex: field(findArgs, "keynumidx"),
      firstKey: field(findArgs, "firstkey"),
      keyStep: field(findArgs, "keystep"),
    };
  }
  const flags = spec.has("flags")
    ? textSet(spec.get("flags") ?? [], "key spec flags")
    : new Set<string>();
  return { flags: new Set([...flags].map((flag) => flag.toLowerCase())), beginSearch, findKeys };
}

function asArray(value: Resp2Value | undefined, what: string): readonly Resp2Value[] {
  if (!Array.isArray(value)) throw protocolError(`${what} is not an array`);
  return value;
}

function asText(value: Resp2Value | undefined, what: string): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("latin1");
  throw protocolError(`${what} is not a string`);
}

function asInteger(value: Resp2Value | undefined, what: string): number {
  if (typeof value !== "number") throw protocolError(`${what} is not an integer`);
  return value;
}

function textSet(value: Resp2Value | undefined, what: string): Set<string> {
  return new Set(asArray(value, what).map((item) => asText(item, what)));
}

/** A RESP2 map: an array of alternating keys and values. */
function asMap(value: Resp2Value, what: string): ReadonlyMap<string, Resp2Value> {
  const items = asArray(value, what);
  if (items.length % 2 !== 0) throw protocolError(`${what} has an odd number of items`);
  const map = new Map<string, Resp2Value>();
  for (let i = 0; i < items.length; i += 2) map.set(asText(items[i], what), items[i + 1] ?? null);
  return map;
}

/**
 * Connects to `host:port`, sends `COMMAND` and builds the table. Rejects with a RedisTableError:
 * `ERR_REDIS_TABLE_TIMEOUT` after `timeoutMs`, `ERR_REDIS_TABLE_CONNECT` when the connection
 * fails or closes early, `ERR_REDIS_TABLE_REPLY` when the reply is not a command table.
 */
export function loadRedisCommandTable(
  port: number,
  options: { readonly host?: string; readonly timeoutMs?: number } = {},
): Promise<RedisCommandTable> {
  assert(Number.isInteger(port) && port > 0 && port < 65536, `bad port ${port}`);
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.timeoutMs ?? COMMAND_LOAD_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: Error | null, table?: RedisCommandTable): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(table!);
    };
    const timer = setTimeout(() => {
      finish(
        new RedisTableError(
          "ERR_REDIS_TABLE_TIMEOUT",
          `redis-server at ${host}:${port} did not answer COMMAND within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    socket.on("connect", () => socket.write("*1\r\n$7\r\nCOMMAND\r\n"));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      try {
        if (received > COMMAND_REPLY_BYTES_MAX) {
          throw protocolError(`reply longer than ${COMMAND_REPLY_BYTES_MAX} bytes`);
        }
        const parsed = readResp2(Buffer.concat(chunks));
        if (parsed !== null) finish(null, buildRedisCommandTable(parsed.value));
      } catch (error) {
        finish(error as Error);
      }
    });
    socket.on("error", (cause) => {
      finish(
        new RedisTableError(
          "ERR_REDIS_TABLE_CONNECT",
          `cannot read COMMAND from redis-server at ${host}:${port}: ${cause.message}`,
          { cause },
        ),
      );
    });
    socket.on("close", () => {
      finish(
        new RedisTableError(
          "ERR_REDIS_TABLE_CONNECT",
          `redis-server at ${host}:${port} closed the connection before answering COMMAND`,
        ),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Keys.

/** ASCII lower case of an argument, as Redis compares names and options (strcasecmp). */
export function lowerName(arg: Buffer): string {
  return arg.toString("latin1").toLowerCase();
}

/**
 * The spec `args` runs: the subcommand's when the command has subcommands and args[1] names one,
 * else the command's; null when the table does not know the command.
 */
export function lookupCommand(
  table: RedisCommandTable,
  args: readonly Buffer[],
): RedisCommandSpec | null {
  assert(args.length > 0, "a command has at least its name");
  const spec = table.commands.get(lowerName(args[0]!));
  if (spec === undefined) return null;
  if (spec.subcommands.length === 0 || args.length < 2) return spec;
  return table.commands.get(`${spec.name}|${lowerName(args[1]!)}`) ?? spec;
}

/** Whether `args` has the number of arguments `arity` asks for. */
export function arityFits(arity: number, argCount: number): boolean {
  return arity >= 0 ? argCount === arity : argCount >= -arity;
}

/** Keyless commands that read or write the whole keyspace or the connection's database. */
const GLOBAL_KEYLESS = new Set([
  "select",
  "swapdb",
  "flushall",
  "flushdb",
  "dbsize",
  "keys",
  "scan",
  "randomkey",
  "multi",
  "exec",
  "discard",
]);
const GLOBAL_FLAGS = ["write", "admin", "pubsub"];
const GLOBAL_CATEGORIES = [
  "@keyspace",
  "@read",
  "@write",
  "@admin",
  "@dangerous",
  "@pubsub",
  "@transaction",
  "@scripting",
  "@blocking",
];

/**
 * The keys `args` touches, in argument order (a key named twice is listed twice), or "all" when
 * the command may touch any key or cannot be read with certainty. See the table at the top.
 */
export function keysOf(table: RedisCommandTable, args: readonly Buffer[]): Buffer[] | "all" {
  const spec = lookupCommand(table, args);
  if (spec === null) return "all";
  if (spec.subcommands.length > 0) return args.length < 2 ? [] : "all"; // unknown subcommand
  if (!arityFits(spec.arity, args.length)) return [];
  if (spec.flags.has("pubsub")) return "all";
  if (spec.firstKey === 0 && spec.keySpecs.length === 0) {
    const global =
      GLOBAL_KEYLESS.has(spec.name) ||
      GLOBAL_FLAGS.some((flag) => spec.flags.has(flag)) ||
      GLOBAL_CATEGORIES.some((category) => spec.aclCategories.has(category));
    return global ? "all" : [];
  }
  if (spec.name === "sort" || spec.name === "sort_ro") return sortKeys(args, spec.name === "sort");
  if (spec.flags.has("movablekeys")) return keysFromSpecs(spec.keySpecs, args);
  return keysFromRange(spec, args);
}

/** Redis's `getKeysUsingLegacyRangeSpec`. */
function keysFromRange(spec: RedisCommandSpec, args: readonly Buffer[]): Buffer[] | "all" {
  const first = spec.firstKey;
  const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
  if (first <= 0 || spec.keyStep <= 0) return "all";
  const keys: Buffer[] = [];
  for (let i = first; i <= last; i += spec.keyStep) {
    if (i >= args.length) return []; // Redis: no keys; the command reports the arity error
    keys.push(args[i]!);
  }
  return keys;
}

/** Redis's `getKeysUsingKeySpecs`, with every failure ("invalid spec") answered "all". */
function keysFromSpecs(specs: readonly KeySpec[], args: readonly Buffer[]): Buffer[] | "all" {
  const keys: Buffer[] = [];
  const argc = args.length;
  for (const spec of specs) {
    if (spec.flags.has("not_key")) continue;
    if (spec.flags.has("incomplete")) return "all";
    const first = beginIndex(spec.beginSearch, args);
    if (first === "invalid") return "all";
    if (first === 0) continue; // keyword absent: this spec names no key
    const range = keyRange(spec.findKeys, first, args);
    if (range === "invalid") return "all";
    if (range.last >= argc || range.last < range.first || range.first >= argc) {
      if (range.last === range.first - 1) continue; // numkeys 0: no key
      return "all";
    }
    for (let i = range.first; i <= range.last; i += range.step) keys.push(args[i]!);
  }
  return keys;
}

function beginIndex(begin: BeginSearch, args: readonly Buffer[]): number | "invalid" {
  if (begin.type === "index") return begin.index;
  if (begin.type === "unknown") return "invalid";
  const argc = args.length;
  const start = begin.startFrom > 0 ? begin.startFrom : argc + begin.startFrom;
  const end = begin.startFrom > 0 ? argc - 1 : 0;
  const keyword = begin.keyword.toLowerCase();
  for (let i = start; i !== end; i = start <= end ? i + 1 : i - 1) {
    if (i >= argc || i < 1) break;
    if (cString(args[i]!) === keyword) return i + 1;
  }
  return 0;
}

function keyRange(
  find: FindKeys,
  first: number,
  args: readonly Buffer[],
): { first: number; last: number; step: number } | "invalid" {
  const argc = args.length;
  if (find.type === "range") {
    let last: number;
    if (find.lastKey >= 0) last = first + find.lastKey;
    else if (find.limit === 0) last = argc + find.lastKey;
    else last = first + (Math.trunc((argc - first) / find.limit) + find.lastKey);
    return find.keyStep > 0 ? { first, last, step: find.keyStep } : "invalid";
  }
  if (find.type === "keynum") {
    if (find.keyNumIndex >= argc - first) return "invalid";
    const count = parseInteger(args[first + find.keyNumIndex]!);
    if (count === null || count < 0n || count > BigInt(argc)) return "invalid";
    const firstKey = first + find.firstKey;
    const step = find.keyStep;
    return step > 0 ? { first: firstKey, last: firstKey + Number(count) - 1, step } : "invalid";
  }
  return "invalid";
}

/**
 * SORT and SORT_RO (Redis's `sortCommand` parse): the sorted key, the last STORE key; "all" when
 * a BY or GET pattern contains `*`, since it then reads keys named by the sorted values.
 */
function sortKeys(args: readonly Buffer[], canStore: boolean): Buffer[] | "all" {
  const parse = parseSort(args, canStore);
  if (parse.patternReadsKeys) return "all";
  return parse.store === null ? [args[1]!] : [args[1]!, parse.store];
}

export interface SortParse {
  /** A BY or GET pattern with `*`: SORT reads other keys. */
  readonly patternReadsKeys: boolean;
  /** BY with a pattern without `*`: no sorting, the reply follows the stored order. */
  readonly dontSort: boolean;
  /** The last STORE destination, or null. */
  readonly store: Buffer | null;
}

/** Redis's option loop of `sortCommandGeneric` (a syntax error ends the parse early). */
export function parseSort(args: readonly Buffer[], canStore: boolean): SortParse {
  let patternReadsKeys = false;
  let dontSort = false;
  let store: Buffer | null = null;
  for (let j = 2; j < args.length; j++) {
    const option = cString(args[j]!);
    const left = args.length - j - 1;
    if (option === "asc" || option === "desc" || option === "alpha") continue;
    if (option === "limit" && left >= 2) {
      j += 2;
    } else if (canStore && option === "store" && left >= 1) {
      store = args[++j]!;
    } else if ((option === "by" || option === "get") && left >= 1) {
      const pattern = args[++j]!;
      const hasStar = pattern.subarray(0, cLength(pattern)).includes(0x2a); // strchr(p, '*')
      if (option === "by" && !hasStar) dontSort = true;
      if (hasStar) patternReadsKeys = true;
    } else {
      break; // syntax error: SORT answers an error and touches nothing
    }
  }
  return { patternReadsKeys, dontSort, store };
}

/** Length of `arg` as a C string: Redis compares options with strcasecmp, which stops at NUL. */
function cLength(arg: Buffer): number {
  const nul = arg.indexOf(0);
  return nul === -1 ? arg.length : nul;
}

/** `arg` as the C string Redis's strcasecmp sees, in lower case. */
export function cString(arg: Buffer): string {
  return arg.toString("latin1", 0, cLength(arg)).toLowerCase();
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * Redis's `string2ll`: an optional `-`, then `0` alone or a digit 1-9 and more digits, within
 * 64 bits; null otherwise ("value is not an integer or out of range").
 */
export function parseInteger(arg: Buffer): bigint | null {
  if (arg.length === 0 || arg.length >= 21) return null;
  const text = arg.toString("latin1");
  if (!/^(?:0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = BigInt(text);
  return value > INT64_MAX || value < INT64_MIN ? null : value;
}

export { INT64_MAX, INT64_MIN };

/**
 * RESP3 replies from the store's RESP2 ones, as redis-server 7.0.15 sends them to a client that
 * said `HELLO 3`. The handlers build RESP2 only; the connection layer, which knows each
 * connection's protocol, passes a RESP3 connection's replies through `toResp3` (EXEC's through
 * `toResp3Exec`) and builds Pub/Sub messages with `pushMessage`.
 *
 * What RESP3 changes (each checked against redis-server 7.0.15, see test/app/resp3.test.ts):
 * - Nulls: `$-1` and `*-1` become `_`, at any depth (MGET, EXEC, XREADGROUP's deleted entries…).
 * - Maps `%n` where RESP2 sends a flat [key, value, …] array: HGETALL, CONFIG GET, HELLO, LCS IDX,
 *   XINFO STREAM, each group of XINFO GROUPS and consumer of XINFO CONSUMERS (and XINFO STREAM
 *   FULL's), CLIENT TRACKINGINFO, COMMAND DOCS (every command, subcommand and argument), COMMAND
 *   INFO's key specs, MEMORY STATS, LATENCY HISTOGRAM, ACL GETUSER and its selectors, ACL LOG's
 *   entries, FUNCTION LIST's libraries and functions, FUNCTION STATS. XREAD and XREADGROUP turn
 *   their array of [stream, entries] pairs into a map of stream → entries.
 * - Sets `~n`: SMEMBERS, SINTER, SUNION, SDIFF, SPOP with a count (even 0 or 1); every flag list
 *   (COMMAND INFO, COMMAND GETKEYSANDFLAGS, COMMAND DOCS, CLIENT TRACKINGINFO, ACL GETUSER,
 *   FUNCTION LIST); COMMAND INFO's ACL categories, tips and key specs, and its subcommands when
 *   there are none (`~0`; a non-empty list stays an array); COMMAND DOCS's history.
 * - Doubles `,x`, written with exactly the text RESP2 puts in the bulk (`,1.5`, `,3`, `,inf`,
 *   `,-inf`, `,0.10000000000000001`): ZSCORE, ZINCRBY, ZADD … INCR, ZMSCORE's items, the scores
 *   of every WITHSCORES reply, of ZPOPMIN/ZPOPMAX, BZPOPMIN/BZPOPMAX, ZMPOP/BZMPOP, GEOPOS's and
 *   WITHCOORD's coordinates, MEMORY STATS's ratios, ACL LOG's age-seconds.
 * - Member/score pairs nest: [m1, s1, m2, s2] becomes [[m1, s1], [m2, s2]] for ZRANGE (and
 *   ZRANGEBYSCORE, ZREVRANGE, ZREVRANGEBYSCORE) WITHSCORES, ZRANDMEMBER WITHSCORES,
 *   ZUNION/ZINTER/ZDIFF WITHSCORES, ZPOPMIN/ZPOPMAX given a count (even 1), and HRANDFIELD
 *   WITHVALUES (field/value pairs). Flat stay: ZPOPMIN/ZPOPMAX without a count ([member, score])
 *   and BZPOPMIN/BZPOPMAX ([key, member, score]); ZMPOP/BZMPOP nest in RESP2 already.
 * - Verbatim strings `=n\r\ntxt:…`: INFO, CLIENT INFO, CLIENT LIST, LATENCY DOCTOR, LATENCY
 *   GRAPH, MEMORY DOCTOR, MEMORY MALLOC-STATS, LOLWUT.
 * - Pushes `>n`: Pub/Sub messages (`pushMessage`) and the replies of SUBSCRIBE, UNSUBSCRIBE,
 *   PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE (one push per channel; `_` for the channel
 *   when unsubscribing from nothing). PING while subscribed answers as outside (`+PONG`, or the
 *   argument's bulk), not with RESP2's [pong, argument]. A RESP3 client may run any command while
 *   subscribed: the connection layer must not refuse them as it does in RESP2.
 * - EXEC's array holds each queued command's reply, converted as that command's: `toResp3Exec`.
 * - HELLO's reply is in the protocol it switches to: convert HELLO 3's (a map), not HELLO 2's;
 *   RESET's `+RESET` is RESP2's and switches back to RESP2.
 *
 * What RESP3 does not change: errors (always `-`, never blob errors `!`), integers, simple
 * strings and non-null bulk strings, so INCRBYFLOAT, HINCRBYFLOAT, GEODIST, WITHDIST's distances
 * and ZSCAN's scores stay bulk; arrays elsewhere stay arrays: HKEYS, HVALS, HMGET, SRANDMEMBER
 * (any count), SMISMEMBER, ZRANGE without scores, XRANGE, XPENDING, XCLAIM, XAUTOCLAIM, LMPOP,
 * LPOS … COUNT, SORT, the SCAN family, PUBSUB NUMSUB, SLOWLOG GET, COMMAND GETKEYS, TIME. No
 * command of 7.0 replies with a boolean `#`, a big number `(` or an attribute `|` but DEBUG
 * PROTOCOL, Lua scripts and modules. Not in the table: DEBUG; EVAL/FCALL (a script's reply follows
 * the protocol the script chose, e.g. a Lua double is `,1.5` in RESP3 but `$3 1.5` in RESP2, so it
 * cannot be rebuilt from RESP2; only the null rule applies); CLUSTER, SENTINEL, MODULE LIST and
 * client-side caching's invalidation pushes, which the store does not have.
 *
 * The table (SHAPES) maps a command, or command|subcommand, to the shape of its reply; a command
 * not in it gets the null rule only. A shape applies only where the reply has the matching type
 * (a map shape to an array, a double shape to a bulk), so an error reply, or an option that changes
 * the reply's type (LCS without IDX, GEOSEARCH without WITHCOORD), passes through with the null rule.
 * A reply that cannot be parsed as RESP2 comes back unchanged: toResp3 never throws for one.
 */

import { assert } from "../core/errors.ts";

/** The RESP3 null, for both of RESP2's null bulk `$-1` and null array `*-1`. */
export const resp3Null: Buffer = Buffer.from("_\r\n", "latin1");

/** How a RESP2 reply (or one element of it) is reshaped; every shape also applies the null rule. */
type Shape =
  /** Nulls become `_`; nothing else changes (nested arrays included). */
  | { readonly kind: "any" }
  /** An array becomes a push `>n`; a bulk becomes a double `,x`, a verbatim `=n`. */
  | { readonly kind: "push" | "double" | "verbatim" }
  /** An array becomes a set `~n` of items of `item`'s shape. */
  | { readonly kind: "set"; readonly item: Shape }
  /** Every item of an array has `item`'s shape; "arrayOrEmptySet": an empty one becomes `~0`. */
  | { readonly kind: "array" | "arrayOrEmptySet"; readonly item: Shape }
  /** Item i of an array has `items[i]`'s shape; items past the list: "any". */
  | { readonly kind: "tuple"; readonly items: readonly Shape[] }
  /** The last item of an array has `item`'s shape (GEO's WITHCOORD position). */
  | { readonly kind: "last"; readonly item: Shape }
  /** A flat [key, value, …] array becomes a map `%n`; each value gets `value(key)`'s shape. */
  | { readonly kind: "map"; readonly value: (key: string) => Shape; readonly keyed: boolean }
  /** A flat [a, b, a, b, …] array becomes [[a, b], [a, b], …]; each b gets `second`'s shape. */
  | { readonly kind: "pairs"; readonly second: Shape }
  /** An array of [key, value] arrays becomes a map of key → value (XREAD). */
  | { readonly kind: "pairMap"; readonly value: Shape }
  /** RESP2's subscribed-mode PING reply [pong, message] becomes `+PONG`, or the message bulk. */
  | { readonly kind: "pong" }
  /** A shape defined in terms of itself (COMMAND INFO's subcommands, COMMAND DOCS's). */
  | { readonly kind: "lazy"; readonly get: () => Shape };

/** A table entry: the reply's shape, or a function of the command's arguments that chooses it. */
type Rule = Shape | ((args: readonly Buffer[]) => Shape);

const ANY: Shape = { kind: "any" };
const SET: Shape = { kind: "set", item: ANY };
const PUSH: Shape = { kind: "push" };
const DOUBLE: Shape = { kind: "double" };
const VERBATIM: Shape = { kind: "verbatim" };
const PONG: Shape = { kind: "pong" };

function arrayOf(item: Shape): Shape {
  return { kind: "array", item };
}
function setOf(item: Shape): Shape {
  return { kind: "set", item };
}
function tuple(...items: Shape[]): Shape {
  return { kind: "tuple", items };
}
function lazy(get: () => Shape): Shape {
  return { kind: "lazy", get };
}
/** A map whose values named in `byKey` have those shapes, the others "any". */
function mapOf(byKey: Readonly<Record<string, Shape>> = {}): Shape {
  const shapes = new Map(Object.entries(byKey));
  return { kind: "map", value: (key) => shapes.get(key) ?? ANY, keyed: shapes.size > 0 };
}
/** A map whose values all have `value`'s shape. */
function mapValues(value: Shape): Shape {
  return { kind: "map", value: () => value, keyed: false };
}

const MAP = mapOf();
/** WITHSCORES replies: [[member, score], …]. */
const SCORE_PAIRS: Shape = { kind: "pairs", second: DOUBLE };
/** ZMPOP, BZMPOP: [key, [[member, score], …]], nested in RESP2 already. */
const POPPED_SCORES = tuple(ANY, arrayOf(tuple(ANY, DOUBLE)));

/** COMMAND INFO's key spec: flags are a set, begin_search and find_keys maps holding a map. */
const KEY_SPEC = mapOf({
  flags: SET,
  begin_search: mapOf({ spec: MAP }),
  find_keys: mapOf({ spec: MAP }),
});
/** One command of COMMAND / COMMAND INFO: [name, arity, flags, first, last, step, ACL
 * categories, tips, key specs, subcommands], where the key specs are a set (of maps) and the
 * subcommands (the same shape) an array, or `~0` when there are none (Redis's own quirk). */
const COMMAND_INFO: Shape = tuple(ANY, ANY, SET, ANY, ANY, ANY, SET, SET, setOf(KEY_SPEC), {
  kind: "arrayOrEmptySet",
  item: lazy(() => COMMAND_INFO),
});
/** One argument of COMMAND DOCS: a map; its flags a set; nested arguments the same shape. */
const DOC_ARGUMENT: Shape = mapOf({ flags: SET, arguments: arrayOf(lazy(() => DOC_ARGUMENT)) });
/** One command of COMMAND DOCS: a map; its history a set (of [version, change] arrays);
 * subcommands a map of name → the same shape. */
const COMMAND_DOC: Shape = mapOf({
  doc_flags: SET,
  history: SET,
  arguments: arrayOf(DOC_ARGUMENT),
  subcommands: mapValues(lazy(() => COMMAND_DOC)),
});

/** MEMORY STATS: ratios and percentages are doubles (integers stay), `db.N` entries maps. */
const MEMORY_STATS: Shape = {
  kind: "map",
  value: (key) => (key.startsWith("db.") ? MAP : DOUBLE),
  keyed: true,
};
/** GEOPOS and GEO*'s WITHCOORD: [longitude, latitude] doubles. */
const COORDINATES = arrayOf(DOUBLE);
/** GEORADIUS*, GEOSEARCH: with WITHCOORD each match is [name, (dist), (hash), [lon, lat]]; without
 * it the last item is a bulk or an integer, which the array shape leaves alone. */
const GEO_MATCHES = arrayOf({ kind: "last", item: COORDINATES });

/** True when `arg` is `token` (upper case ASCII), in any case. */
function isToken(arg: Buffer | undefined, token: string): boolean {
  return (
    arg !== undefined &&
    arg.length === token.length &&
    arg.toString("latin1").toUpperCase() === token
  );
}

/** True when some argument from index `from` on is `token`. */
function hasToken(args: readonly Buffer[], from: number, token: string): boolean {
  for (let i = from; i < args.length; i++) if (isToken(args[i], token)) return true;
  return false;
}

/** ZRANGE-family rule: score pairs when WITHSCORES is among the options from index `from`. */
function withScoresFrom(from: number): Rule {
  return (args) => (hasToken(args, from, "WITHSCORES") ? SCORE_PAIRS : ANY);
}

/** ZUNION/ZINTER/ZDIFF numkeys key… [options]: the options follow the keys (a key may be named
 * WITHSCORES). A bad numkeys is an error reply anyway. */
function withScoresAfterKeys(args: readonly Buffer[]): Shape {
  const keyCount = Number(args[1]?.toString("latin1"));
  if (!Number.isSafeInteger(keyCount) || keyCount < 0) return ANY;
  return hasToken(args, 2 + keyCount, "WITHSCORES") ? SCORE_PAIRS : ANY;
}

/** Reply shapes by lower-case command name, or `command|subcommand` for container commands. */
const SHAPES: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  // Hashes.
  ["hgetall", MAP],
  // HRANDFIELD key count WITHVALUES: [[field, value], …] (any count sign).
  ["hrandfield", (args) => (isToken(args[3], "WITHVALUES") ? { kind: "pairs", second: ANY } : ANY)],
  // Sets. SRANDMEMBER with a count stays an array (it may repeat members); SPOP's is a set.
  ["smembers", SET],
  ["sinter", SET],
  ["sunion", SET],
  ["sdiff", SET],
  ["spop", (args) => (args.length >= 3 ? SET : ANY)],
  // Sorted sets. ZADD's reply is a bulk only with INCR, so the double shape needs no option scan.
  ["zscore", DOUBLE],
  ["zincrby", DOUBLE],
  ["zadd", DOUBLE],
  ["zmscore", arrayOf(DOUBLE)],
  ["zrange", withScoresFrom(4)],
  ["zrangebyscore", withScoresFrom(4)],
  ["zrevrange", withScoresFrom(4)],
  ["zrevrangebyscore", withScoresFrom(4)],
  ["zrandmember", (args) => (isToken(args[3], "WITHSCORES") ? SCORE_PAIRS : ANY)],
  ["zunion", withScoresAfterKeys],
  ["zinter", withScoresAfterKeys],
  ["zdiff", withScoresAfterKeys],
  // With a count (even 1) a list of pairs; without one the flat [member, score].
  ["zpopmin", (args) => (args.length >= 3 ? SCORE_PAIRS : tuple(ANY, DOUBLE))],
  ["zpopmax", (args) => (args.length >= 3 ? SCORE_PAIRS : tuple(ANY, DOUBLE))],
  ["bzpopmin", tuple(ANY, ANY, DOUBLE)],
  ["bzpopmax", tuple(ANY, ANY, DOUBLE)],
  ["zmpop", POPPED_SCORES],
  ["bzmpop", POPPED_SCORES],
  // Strings: LCS … IDX is a map (a bulk or an integer without IDX).
  ["lcs", MAP],
  // Geo.
  ["geopos", arrayOf(COORDINATES)],
  ["georadius", GEO_MATCHES],
  ["georadius_ro", GEO_MATCHES],
  ["georadiusbymember", GEO_MATCHES],
  ["georadiusbymember_ro", GEO_MATCHES],
  ["geosearch", GEO_MATCHES],
  // Streams. XINFO STREAM FULL's groups and their consumers are maps (plain XINFO STREAM's
  // `groups` is an integer, which the array shape leaves alone).
  ["xread", { kind: "pairMap", value: ANY }],
  ["xreadgroup", { kind: "pairMap", value: ANY }],
  ["xinfo|stream", mapOf({ groups: arrayOf(mapOf({ consumers: arrayOf(MAP) })) })],
  ["xinfo|groups", arrayOf(MAP)],
  ["xinfo|consumers", arrayOf(MAP)],
  // Pub/Sub: every confirmation is a push (one per channel in the same reply).
  ["subscribe", PUSH],
  ["unsubscribe", PUSH],
  ["psubscribe", PUSH],
  ["punsubscribe", PUSH],
  ["ssubscribe", PUSH],
  ["sunsubscribe", PUSH],
  ["ping", PONG],
  // Server and connection.
  ["hello", MAP],
  ["info", VERBATIM],
  ["lolwut", VERBATIM],
  ["config|get", MAP],
  ["command", (args) => (args.length === 1 ? arrayOf(COMMAND_INFO) : ANY)],
  ["command|info", arrayOf(COMMAND_INFO)],
  ["command|docs", mapValues(COMMAND_DOC)],
  ["command|getkeysandflags", arrayOf(tuple(ANY, SET))],
  ["client|info", VERBATIM],
  ["client|list", VERBATIM],
  ["client|trackinginfo", mapOf({ flags: SET })],
  ["memory|doctor", VERBATIM],
  ["memory|malloc-stats", VERBATIM],
  ["memory|stats", MEMORY_STATS],
  ["latency|doctor", VERBATIM],
  ["latency|graph", VERBATIM],
  ["latency|histogram", mapValues(mapOf({ histogram_usec: MAP }))],
  ["acl|getuser", mapOf({ flags: SET, selectors: arrayOf(MAP) })],
  ["acl|log", arrayOf(mapOf({ "age-seconds": DOUBLE }))],
  ["function|list", arrayOf(mapOf({ functions: arrayOf(mapOf({ flags: SET })) }))],
  ["function|stats", mapOf({ running_script: MAP, engines: mapValues(MAP) })],
]);

/** The commands (`name` or `name|subcommand`) whose replies change beyond the null rule. */
export const RESP3_SHAPED_COMMANDS: readonly string[] = [...SHAPES.keys()];

/** Commands whose table entries are per subcommand (`name|sub`). */
const CONTAINERS: ReadonlySet<string> = new Set(
  [...SHAPES.keys()].filter((key) => key.includes("|")).map((key) => key.split("|")[0]!),
);

/** The shape of the reply to `args`. */
function replyShape(args: readonly Buffer[]): Shape {
  const first = args[0];
  if (first === undefined) return ANY;
  const name = first.toString("latin1").toLowerCase();
  let rule = SHAPES.get(name);
  const sub = args[1];
  if (sub !== undefined && CONTAINERS.has(name)) {
    rule = SHAPES.get(`${name}|${sub.toString("latin1").toLowerCase()}`) ?? rule;
  }
  if (rule === undefined) return ANY;
  return typeof rule === "function" ? rule(args) : rule;
}

/**
 * The RESP3 reply redis-server 7.0.15 sends for `args` (args[0] is the command name, any case)
 * where RESP2's is `reply`. Returns `reply` itself when nothing changes, and unchanged when it is
 * not well-formed RESP2. `reply` may hold several replies back to back (SUBSCRIBE a b): each is
 * converted.
 */
export function toResp3(args: readonly Buffer[], reply: Buffer): Buffer {
  return convert(reply, replyShape(args));
}

/**
 * EXEC's RESP3 reply: each element of RESP2's array converted as the reply to the queued command
 * at its position. A null (aborted by WATCH) or an error (EXECABORT) converts as usual.
 */
export function toResp3Exec(queued: readonly (readonly Buffer[])[], reply: Buffer): Buffer {
  return convert(reply, tuple(...queued.map(replyShape)));
}

function convert(reply: Buffer, shape: Shape): Buffer {
  try {
    const converter = new Converter(reply);
    do converter.element(shape, 0);
    while (converter.pos < reply.length);
    return converter.finish();
  } catch (error) {
    if (error === MALFORMED) return reply;
    throw error;
  }
}

/** A RESP3 push `>n` of bulk strings, integers and nulls: Pub/Sub's message, pmessage,
 * smessage, and (un)subscribe confirmations (`null` where RESP2 sends `$-1`: UNSUBSCRIBE with
 * no subscription). */
export function pushMessage(parts: readonly (Buffer | number | null)[]): Buffer {
  const pieces: Buffer[] = [Buffer.from(`>${parts.length}\r\n`, "latin1")];
  for (const part of parts) {
    if (part === null) pieces.push(resp3Null);
    else if (typeof part === "number") pieces.push(Buffer.from(`:${part}\r\n`, "latin1"));
    else pieces.push(Buffer.from(`$${part.length}\r\n`, "latin1"), part, CRLF);
  }
  return Buffer.concat(pieces);
}

const CR = 13;
const LF = 10;
const CRLF = Buffer.from("\r\n", "latin1");
const EMPTY = Buffer.alloc(0);
/** Runs of unchanged bytes up to this long are copied by a loop, longer ones by Buffer#copy. */
const SMALL_COPY_BYTES = 64;
/** Nesting deeper than this is no reply of ours (COMMAND DOCS, the deepest, nests about 10). */
const DEPTH_MAX = 64;
/** A RESP length has at most 15 digits (every reply is far below 2^53 bytes). */
const LENGTH_DIGITS_MAX = 15;

/** A point a conversion can go back to: parse position and output so far. */
interface Mark {
  readonly pos: number;
  readonly copyFrom: number;
  readonly outLength: number;
}

/** Thrown inside a conversion when the reply is not well-formed RESP2; never escapes. */
const MALFORMED = new Error("malformed RESP2 reply");

/**
 * One pass over a RESP2 reply that parses and rewrites at once. `out[0, outLength)` is the
 * rewritten output up to input byte `copyFrom`; every input byte from `copyFrom` to the parse
 * position is still to be copied as it is. With no rewrite the input itself is returned, uncopied.
 */
class Converter {
  /** Parse position. Invariant: copyFrom <= pos <= input.length. */
  pos = 0;
  private copyFrom = 0;
  private out: Buffer = EMPTY;
  private outLength = 0;
  private readonly input: Buffer;

  constructor(input: Buffer) {
    this.input = input;
  }

  finish(): Buffer {
    if (this.outLength === 0 && this.copyFrom === 0) return this.input;
    this.copyTo(this.input.length);
    return this.out.subarray(0, this.outLength);
  }

  /** Output `text` (latin1) instead of input[start, end). Calls come in input order. */
  private replace(start: number, end: number, text: string): void {
    assert(this.copyFrom <= start && start <= end && end <= this.input.length);
    this.copyTo(start);
    this.reserve(text.length);
    // Byte by byte: these are a few ASCII bytes, where Buffer#write's call costs more.
    const out = this.out;
    let at = this.outLength;
    for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
    this.outLength = at;
    this.copyFrom = end;
  }

  /** Copies the input from `copyFrom` to `end` as it is. */
  private copyTo(end: number): void {
    const size = end - this.copyFrom;
    if (size <= 0) return;
    this.reserve(size);
    if (size <= SMALL_COPY_BYTES) {
      const input = this.input;
      const out = this.out;
      let at = this.outLength;
      for (let i = this.copyFrom; i < end; i++) out[at++] = input[i]!;
      this.outLength = at;
    } else {
      this.outLength += this.input.copy(this.out, this.outLength, this.copyFrom, end);
    }
    this.copyFrom = end;
  }

  /** Makes room for `size` more output bytes. The output is about the input's size: it starts
   * there (plus room for a few headers) and doubles when pairs or verbatim prefixes outgrow it. */
  private reserve(size: number): void {
    const needed = this.outLength + size;
    if (needed <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.input.length + 64, this.out.length * 2));
    this.out.copy(grown, 0, 0, this.outLength);
    this.out = grown;
  }

  /** Parses (and rewrites) the element at `pos` with `shape`, leaving `pos` after it. */
  element(shape: Shape, depth: number): void {
    if (depth > DEPTH_MAX) throw MALFORMED;
    while (shape.kind === "lazy") shape = shape.get();
    const start = this.pos;
    const type = this.input[start];
    if (type === 0x2b || type === 0x2d || type === 0x3a) {
      // `+simple`, `-error`, `:integer`: unchanged.
      this.pos = this.lineEnd(start + 1);
    } else if (type === 0x24) {
      this.bulk(start, shape);
    } else if (type === 0x2a) {
      this.pos = start + 1;
      const count = this.readLength();
      if (count === -1) this.replace(start, this.pos, "_\r\n");
      else if (count < 0) throw MALFORMED;
      else this.array(start, count, shape, depth);
    } else {
      throw MALFORMED;
    }
  }

  /** `$n\r\n…\r\n` or `$-1\r\n` at `start`. */
  private bulk(start: number, shape: Shape): void {
    this.pos = start + 1;
    const size = this.readLength();
    const dataStart = this.pos;
    if (size === -1) {
      this.replace(start, dataStart, "_\r\n");
      return;
    }
    if (size < 0) throw MALFORMED;
    const dataEnd = dataStart + size;
    const input = this.input;
    if (dataEnd + 2 > input.length || input[dataEnd] !== CR || input[dataEnd + 1] !== LF) {
      throw MALFORMED;
    }
    this.pos = dataEnd + 2;
    if (shape.kind === "double") {
      // A double is one line: a bulk holding CR or LF is no double, and stays a bulk.
      if (size > 0 && !this.hasLineBreak(dataStart, dataEnd)) {
        this.replace(start, dataStart, ",");
      }
    } else if (shape.kind === "verbatim") {
      this.replace(start, dataStart, `=${size + 4}\r\ntxt:`);
    }
  }

  /** The items of the array whose `*count\r\n` header is input[start, pos). */
  private array(start: number, count: number, shape: Shape, depth: number): void {
    const next = depth + 1;
    switch (shape.kind) {
      case "push":
        this.replace(start, this.pos, `>${count}\r\n`);
        break;
      case "set":
        this.replace(start, this.pos, `~${count}\r\n`);
        for (let i = 0; i < count; i++) this.element(shape.item, next);
        return;
      case "arrayOrEmptySet":
        if (count === 0) this.replace(start, this.pos, "~0\r\n");
        for (let i = 0; i < count; i++) this.element(shape.item, next);
        return;
      case "array":
        for (let i = 0; i < count; i++) this.element(shape.item, next);
        return;
      case "tuple":
        for (let i = 0; i < count; i++) this.element(shape.items[i] ?? ANY, next);
        return;
      case "last":
        for (let i = 0; i < count; i++) this.element(i === count - 1 ? shape.item : ANY, next);
        return;
      case "map":
        if (count % 2 !== 0) break;
        this.replace(start, this.pos, `%${count / 2}\r\n`);
        for (let i = 0; i < count; i += 2) {
          const keyStart = this.pos;
          this.element(ANY, next);
          this.element(shape.value(shape.keyed ? this.bulkText(keyStart) : ""), next);
        }
        return;
      case "pairs":
        if (count % 2 !== 0) break;
        this.replace(start, this.pos, `*${count / 2}\r\n`);
        for (let i = 0; i < count; i += 2) {
          this.replace(this.pos, this.pos, "*2\r\n");
          this.element(ANY, next);
          this.element(shape.second, next);
        }
        return;
      case "pairMap":
        if (this.pairMap(start, count, shape.value, next)) return;
        break;
      case "pong":
        if (this.pong(start, count, next)) return;
        break;
      default:
        break;
    }
    for (let i = 0; i < count; i++) this.element(ANY, next);
  }

  /** [[key, value], …] → `%count` key value …; false (all undone) when an item is not a
   * two-element array. */
  private pairMap(start: number, count: number, value: Shape, depth: number): boolean {
    const input = this.input;
    const mark = this.mark();
    this.replace(start, this.pos, `%${count}\r\n`);
    for (let i = 0; i < count; i++) {
      const at = this.pos;
      if (input[at] !== 0x2a || input[at + 1] !== 0x32 || input[at + 2] !== CR) break;
      if (input[at + 3] !== LF) break;
      this.replace(at, at + 4, "");
      this.pos = at + 4;
      this.element(ANY, depth);
      this.element(value, depth);
      if (i === count - 1) return true;
    }
    if (count === 0) return true;
    this.rollback(mark);
    return false;
  }

  /** RESP2's subscribed-mode [pong, message] → `+PONG` when the message is empty, else the
   * message bulk; false (nothing consumed or written) for any other array. */
  private pong(start: number, count: number, depth: number): boolean {
    if (count !== 2) return false;
    const mark = this.mark();
    const pongStart = this.pos;
    if (this.isNonNullBulk(pongStart)) {
      this.element(ANY, depth);
      const messageStart = this.pos;
      if (this.bulkText(pongStart) === "pong" && this.isNonNullBulk(messageStart)) {
        this.element(ANY, depth);
        if (this.bulkText(messageStart) === "") this.replace(start, this.pos, "+PONG\r\n");
        else this.replace(start, messageStart, "");
        return true;
      }
    }
    this.rollback(mark);
    return false;
  }

  private mark(): Mark {
    return { pos: this.pos, copyFrom: this.copyFrom, outLength: this.outLength };
  }

  /** Undoes everything parsed and written since `mark`. */
  private rollback(mark: Mark): void {
    this.pos = mark.pos;
    this.copyFrom = mark.copyFrom;
    this.outLength = mark.outLength;
  }

  private isNonNullBulk(at: number): boolean {
    return this.input[at] === 0x24 && this.input[at + 1] !== 0x2d;
  }

  /** The text of the bulk element parsed from `start` (to `pos`); "" for anything else. */
  private bulkText(start: number): string {
    const input = this.input;
    if (input[start] !== 0x24 || input[start + 1] === 0x2d) return "";
    const headerEnd = input.indexOf(CR, start);
    return input.toString("latin1", headerEnd + 2, this.pos - 2);
  }

  private hasLineBreak(start: number, end: number): boolean {
    for (let i = start; i < end; i++) {
      const byte = this.input[i];
      if (byte === CR || byte === LF) return true;
    }
    return false;
  }

  /** The position after the CRLF that ends the line from `from`. */
  private lineEnd(from: number): number {
    const cr = this.input.indexOf(CR, from);
    if (cr === -1 || this.input[cr + 1] !== LF) throw MALFORMED;
    return cr + 2;
  }

  /** A decimal length (`-1` allowed) and its CRLF from `pos`, which ends after them. */
  private readLength(): number {
    const input = this.input;
    let at = this.pos;
    const negative = input[at] === 0x2d;
    if (negative) at++;
    const digitsStart = at;
    let value = 0;
    for (;;) {
      const byte = input[at];
      if (byte === undefined) throw MALFORMED;
      if (byte < 0x30 || byte > 0x39) break;
      value = value * 10 + (byte - 0x30);
      at++;
    }
    const digits = at - digitsStart;
    if (digits === 0 || digits > LENGTH_DIGITS_MAX) throw MALFORMED;
    if (input[at] !== CR || input[at + 1] !== LF) throw MALFORMED;
    this.pos = at + 2;
    return negative ? -value : value;
  }
}

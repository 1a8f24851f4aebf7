/**
 * COMMAND and its subcommands, answered from the command table (kv-command-table.ts, which
 * passes itself in): COMMAND, COMMAND INFO, COUNT, LIST [FILTERBY MODULE|ACLCAT|PATTERN], DOCS,
 * GETKEYS, GETKEYSANDFLAGS, HELP.
 *
 * Everything is derived from the specs (kv-command-spec.ts), as Redis 7.0 derives it from its own
 * command table: the flags (`kind` gives write/readonly, then the spec's flags in Redis's order;
 * `random` and `sort_for_script` became the tips nondeterministic_output and
 * nondeterministic_output_order in Redis 7), the ACL categories (Redis's setImplicitACLCategories
 * over the flags, plus the category of the command's group, which is its module's), the legacy
 * (first, last, step) triple and one key spec matching it. Names are only listed where Redis
 * itself is irregular (REDIS_IRREGULAR). What cannot match redis-server byte for byte, by
 * design: the order of COMMAND and COMMAND LIST (Redis's is its hash table's), key-spec flags
 * (Redis's are written per command; ours are derived from the kind), one key spec per command
 * (Redis has one per key role), no subcommand entries, no request/response policy tips, and
 * COMMAND DOCS, which gives only a summary pointing to redis.io and the group (Redis's texts,
 * `since`, `complexity` and `arguments` are not kept here).
 */
import { BIT_COMMANDS } from "./kv-bits.ts";
import { type CommandFlag, type CommandSpec, keyIndexes } from "./kv-command-spec.ts";
import { nocaseGlob } from "./kv-config.ts";
import { HASH_COMMANDS } from "./kv-hashes.ts";
import { HLL_COMMANDS } from "./kv-hll.ts";
import { KEY_COMMANDS } from "./kv-keys.ts";
import type { Keyspace } from "./kv-keyspace.ts";
import { LIST_COMMANDS } from "./kv-lists.ts";
import { SERVER_COMMANDS } from "./kv-server.ts";
import { SET_COMMANDS } from "./kv-sets.ts";
import {
  checkReplySize,
  ERR_SYNTAX,
  type Handler,
  isReply,
  latin1,
  upper,
  wrongArity,
} from "./kv-shared.ts";
import { STRING_COMMANDS } from "./kv-strings.ts";
import { ZSET_COMMANDS } from "./kv-zsets.ts";
import {
  array,
  arrayHeaderSize,
  bulk,
  bulkArray,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_BULK,
  simpleString,
} from "./resp.ts";

/** Redis's command groups (COMMAND DOCS `group`), those this store's commands fall in. */
type Group =
  | "string"
  | "generic"
  | "hash"
  | "list"
  | "set"
  | "sorted-set"
  | "stream"
  | "geo"
  | "bitmap"
  | "hyperloglog"
  | "pubsub"
  | "transactions"
  | "connection"
  | "server";

/** Redis 7.0's ACL categories in its bit order, which is the order COMMAND INFO prints them. */
const ACL_CATEGORIES = [
  "keyspace",
  "read",
  "write",
  "set",
  "sortedset",
  "list",
  "hash",
  "string",
  "bitmap",
  "hyperloglog",
  "geo",
  "stream",
  "pubsub",
  "admin",
  "fast",
  "slow",
  "blocking",
  "dangerous",
  "connection",
  "transaction",
  "scripting",
] as const;
type AclCategory = (typeof ACL_CATEGORIES)[number];

/** The category a group's commands carry (Redis's JSON files give each command its group's). */
const GROUP_CATEGORY: Readonly<Record<Group, AclCategory | null>> = {
  string: "string",
  generic: "keyspace",
  hash: "hash",
  list: "list",
  set: "set",
  "sorted-set": "sortedset",
  stream: "stream",
  geo: "geo",
  bitmap: "bitmap",
  hyperloglog: "hyperloglog",
  pubsub: "pubsub",
  transactions: "transaction",
  connection: "connection",
  server: null,
};

/**
 * Redis 7.0's flags in the order addReplyCommandFlags prints them. `may_replicate` is hidden by
 * Redis; `random` and `sort_for_script` are tips since Redis 7.
 */
const FLAG_ORDER: readonly string[] = [
  "write",
  "readonly",
  "denyoom",
  "admin",
  "pubsub",
  "noscript",
  "blocking",
  "loading",
  "stale",
  "skip_slowlog",
  "fast",
  "no_auth",
  "no_mandatory_keys",
  "no_multi",
  "movablekeys",
  "allow_busy",
];

interface Irregular {
  readonly group?: Group;
  /** The categories Redis's JSON file gives, instead of the group's. */
  readonly categories?: readonly AclCategory[];
}

/** Where Redis is irregular: a group other than the module's, or categories of its own. */
const REDIS_IRREGULAR: ReadonlyMap<string, Irregular> = new Map<string, Irregular>([
  // Keyspace commands of the server group, some @dangerous (they reach the whole keyspace).
  ["dbsize", { group: "server", categories: ["keyspace"] }],
  ["flushall", { group: "server", categories: ["keyspace", "dangerous"] }],
  ["flushdb", { group: "server", categories: ["keyspace", "dangerous"] }],
  ["swapdb", { group: "server", categories: ["keyspace", "dangerous"] }],
  ["keys", { categories: ["keyspace", "dangerous"] }],
  ["sort", { categories: ["set", "sortedset", "list", "dangerous"] }],
  ["sort_ro", { categories: ["set", "sortedset", "list", "dangerous"] }],
  ["info", { categories: ["dangerous"] }],
  // A server command in @connection.
  ["command", { group: "server", categories: ["connection"] }],
  // A container: its own entry is only @slow (its subcommands carry @connection).
  ["client", { categories: [] }],
]);

/** Redis 7.0's connection and transactions groups: commands modules outside kv-server share. */
const CONNECTION_GROUP = new Set([
  "auth",
  "client",
  "echo",
  "hello",
  "ping",
  "quit",
  "reset",
  "select",
]);
const TRANSACTION_GROUP = new Set(["multi", "exec", "discard", "watch", "unwatch"]);

/** The module lists whose commands are all of one group (kv-command-table.ts joins them). */
function moduleGroups(): Map<CommandSpec, Group> {
  const groups = new Map<CommandSpec, Group>();
  const modules: readonly (readonly [readonly CommandSpec[], Group])[] = [
    [STRING_COMMANDS, "string"],
    [KEY_COMMANDS, "generic"],
    [HASH_COMMANDS, "hash"],
    [LIST_COMMANDS, "list"],
    [SET_COMMANDS, "set"],
    [ZSET_COMMANDS, "sorted-set"],
    [SERVER_COMMANDS, "server"],
    [BIT_COMMANDS, "bitmap"],
    [HLL_COMMANDS, "hyperloglog"],
  ];
  for (const [specs, group] of modules) for (const spec of specs) groups.set(spec, group);
  return groups;
}

/** What COMMAND says of one spec, worked out once. */
interface Described {
  readonly spec: CommandSpec;
  readonly group: Group;
  readonly categories: readonly AclCategory[];
  /** The key spec's flags, as COMMAND INFO and GETKEYSANDFLAGS print them. */
  readonly keyFlags: readonly string[];
  /** Its COMMAND INFO entry and its COMMAND DOCS name and map, encoded. */
  readonly info: Buffer;
  readonly docs: Buffer;
}

function groupOf(spec: CommandSpec, byModule: ReadonlyMap<CommandSpec, Group>): Group {
  const irregular = REDIS_IRREGULAR.get(spec.name)?.group;
  if (irregular !== undefined) return irregular;
  const flags = spec.flags ?? [];
  if (CONNECTION_GROUP.has(spec.name)) return "connection";
  if (TRANSACTION_GROUP.has(spec.name)) return "transactions";
  const module = byModule.get(spec);
  if (module !== undefined) return module;
  // Modules of mixed groups (blocking pops, sessions, Pub/Sub, streams): Redis's own naming.
  if (flags.includes("pubsub")) return "pubsub";
  if (spec.name.startsWith("x")) return "stream";
  if (spec.name.startsWith("geo")) return "geo";
  if (spec.name.startsWith("bz")) return "sorted-set";
  if (flags.includes("blocking")) return "list";
  return "generic";
}

/** Redis's setImplicitACLCategories, after the group's and the irregular categories. */
function categoriesOf(spec: CommandSpec, group: Group): AclCategory[] {
  const flags = spec.flags ?? [];
  const own = GROUP_CATEGORY[group];
  const found = new Set<AclCategory>(
    REDIS_IRREGULAR.get(spec.name)?.categories ?? (own === null ? [] : [own]),
  );
  if (spec.kind === "write") found.add("write");
  if (spec.kind === "read") found.add("read");
  if (flags.includes("admin")) {
    found.add("admin");
    found.add("dangerous");
  }
  if (flags.includes("pubsub")) found.add("pubsub");
  if (flags.includes("fast")) found.add("fast");
  else found.add("slow");
  if (flags.includes("blocking")) found.add("blocking");
  return ACL_CATEGORIES.filter((category) => found.has(category));
}

function flagsOf(spec: CommandSpec): string[] {
  const present = new Set<string>(spec.flags ?? []);
  if (spec.kind === "write") present.add("write");
  if (spec.kind === "read") present.add("readonly");
  if (spec.keys !== undefined && "find" in spec.keys) present.add("movablekeys");
  return FLAG_ORDER.filter((flag) => present.has(flag));
}

function tipsOf(spec: CommandSpec): string[] {
  const flags: readonly CommandFlag[] = spec.flags ?? [];
  const tips: string[] = [];
  if (flags.includes("random")) tips.push("nondeterministic_output");
  if (flags.includes("sort_for_script")) tips.push("nondeterministic_output_order");
  return tips;
}

/**
 * The key spec's flags, derived from the kind: a read reads and returns (RO ACCESS); a write that
 * may add data (denyoom) reads and writes (RW UPDATE); any other write may change or remove (RW
 * UPDATE DELETE). Redis writes these per command; ours are a safe superset of what each does.
 */
function keyFlagsOf(spec: CommandSpec): string[] {
  if (spec.kind !== "write") return spec.kind === "read" ? ["RO", "access"] : ["RO"];
  if (spec.flags?.includes("denyoom")) return ["RW", "update"];
  return ["RW", "update", "delete"];
}

function legacyOf(spec: CommandSpec): { first: number; last: number; step: number } {
  const keys = spec.keys;
  if (keys === undefined) return { first: 0, last: 0, step: 0 };
  return "find" in keys ? keys.legacy : keys;
}

const UNKNOWN_SEARCH = array([bulk("type"), bulk("unknown"), bulk("spec"), EMPTY_ARRAY]);

/**
 * One Redis 7 key spec from the legacy triple: begin at index `first`, a range to `last` (from
 * the end when negative) in steps of `step`. Positions that depend on the arguments (`find`)
 * are marked INCOMPLETE: a client asks COMMAND GETKEYS (the command is also `movablekeys`).
 */
function keySpecOf(spec: CommandSpec, flags: readonly string[]): Buffer {
  const legacy = legacyOf(spec);
  const movable = spec.keys !== undefined && "find" in spec.keys;
  const specFlags = movable ? [...flags, "incomplete"] : flags;
  const begin =
    legacy.first > 0
      ? array([
          bulk("type"),
          bulk("index"),
          bulk("spec"),
          array([bulk("index"), integer(legacy.first)]),
        ])
      : UNKNOWN_SEARCH;
  const find =
    legacy.first > 0
      ? array([
          bulk("type"),
          bulk("range"),
          bulk("spec"),
          array([
            bulk("lastkey"),
            integer(legacy.last < 0 ? legacy.last : legacy.last - legacy.first),
            bulk("keystep"),
            integer(legacy.step),
            bulk("limit"),
            integer(0),
          ]),
        ])
      : UNKNOWN_SEARCH;
  return array([
    bulk("flags"),
    array(specFlags.map((flag) => simpleString(flag))),
    bulk("begin_search"),
    begin,
    bulk("find_keys"),
    find,
  ]);
}

function describe(spec: CommandSpec, byModule: ReadonlyMap<CommandSpec, Group>): Described {
  const group = groupOf(spec, byModule);
  const categories = categoriesOf(spec, group);
  const keyFlags = keyFlagsOf(spec);
  const legacy = legacyOf(spec);
  const info = array([
    bulk(spec.name),
    integer(spec.arity),
    array(flagsOf(spec).map((flag) => simpleString(flag))),
    integer(legacy.first),
    integer(legacy.last),
    integer(legacy.step),
    array(categories.map((category) => simpleString(`@${category}`))),
    bulkArray(tipsOf(spec)),
    spec.keys === undefined ? EMPTY_ARRAY : array([keySpecOf(spec, keyFlags)]),
    EMPTY_ARRAY,
  ]);
  // redis-cli 7 builds its help from these: it needs `summary` and `group` (else it reads
  // uninitialized memory); `since` it may go without.
  const docs = Buffer.concat([
    bulk(spec.name),
    bulkArray([
      "summary",
      `See https://redis.io/commands/${spec.name}/ (apus-smr keeps no command documentation)`,
      "group",
      group,
    ]),
  ]);
  return { spec, group, categories, keyFlags, info, docs };
}

const COMMAND_HELP = [
  "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "(no subcommand)",
  "    Return details about all Redis commands.",
  "COUNT",
  "    Return the total number of commands in this Redis server.",
  "LIST",
  "    Return a list of all commands in this Redis server.",
  "INFO [<command-name> ...]",
  "    Return details about multiple Redis commands.",
  "    If no command names are given, documentation details for all",
  "    commands are returned.",
  "DOCS [<command-name> ...]",
  "    Return documentation details about multiple Redis commands.",
  "    If no command names are given, documentation details for all",
  "    commands are returned.",
  "GETKEYS <full-command>",
  "    Return the keys from a full Redis command.",
  "GETKEYSANDFLAGS <full-command>",
  "    Return the keys and the access flags from a full Redis command.",
  "HELP",
  "    Prints this help.",
];
const HELP_REPLY = array(COMMAND_HELP.map((line) => simpleString(line)));

/** The table, described once on first use (every module has loaded by then). */
class Descriptions {
  readonly all: readonly Described[];
  readonly byName = new Map<string, Described>();

  constructor(table: readonly CommandSpec[]) {
    const byModule = moduleGroups();
    this.all = table.map((spec) => describe(spec, byModule));
    for (const each of this.all) this.byName.set(each.spec.name, each);
  }

  find(name: Buffer): Described | undefined {
    return this.byName.get(latin1(name).toLowerCase());
  }
}

/** COMMAND INFO's or DOCS's reply for `names` (all when none), size checked first. */
function entriesReply(
  keyspace: Keyspace,
  items: readonly (Described | undefined)[],
  pick: (each: Described) => Buffer,
  perItem: 1 | 2,
): Buffer {
  let size = arrayHeaderSize(items.length * perItem);
  let found = 0;
  for (const item of items) {
    size += item === undefined ? NULL_BULK.length : pick(item).length;
    if (item !== undefined) found++;
  }
  const tooLarge = checkReplySize(keyspace, size);
  if (tooLarge !== undefined) return tooLarge;
  const count = perItem === 1 ? items.length : found * 2;
  const parts: Buffer[] = [Buffer.from(`*${count}\r\n`, "latin1")];
  for (const item of items) {
    if (item !== undefined) parts.push(pick(item));
    else if (perItem === 1) parts.push(NULL_BULK);
  }
  return Buffer.concat(parts);
}

function listReply(keyspace: Keyspace, all: readonly Described[], args: readonly Buffer[]): Buffer {
  if (args.length === 2) return bulkArray(all.map((each) => each.spec.name));
  if (args.length !== 5 || upper(args[2]!) !== "FILTERBY") return ERR_SYNTAX;
  const filter = upper(args[3]!);
  const value = latin1(args[4]!);
  let accept: (each: Described) => boolean;
  if (filter === "MODULE")
    accept = () => false; // no modules here
  else if (filter === "ACLCAT") {
    const category = value.toLowerCase();
    accept = (each) => (each.categories as readonly string[]).includes(category);
  } else if (filter === "PATTERN") {
    const matcher = nocaseGlob(value, keyspace.limits.patternBytesMax);
    if (isReply(matcher)) return matcher;
    accept = (each) => matcher(each.spec.name);
  } else return ERR_SYNTAX;
  return bulkArray(all.filter(accept).map((each) => each.spec.name));
}

/** COMMAND GETKEYS / GETKEYSANDFLAGS: Redis's checks in its order, then the spec's positions. */
function getKeys(described: Descriptions, args: readonly Buffer[], withFlags: boolean): Buffer {
  const command = args.slice(2);
  const target = described.find(command[0]!);
  if (target === undefined) return errorReply("ERR Invalid command specified");
  const spec = target.spec;
  if (spec.keys === undefined) return errorReply("ERR The command has no key arguments");
  const fits = spec.arity > 0 ? command.length === spec.arity : command.length >= -spec.arity;
  if (!fits) return errorReply("ERR Invalid number of arguments specified for command");
  const indexes = keyIndexes(spec, command).filter((i) => i > 0 && i < command.length);
  if (indexes.length === 0) {
    return spec.flags?.includes("no_mandatory_keys")
      ? EMPTY_ARRAY
      : errorReply("ERR Invalid arguments specified for command");
  }
  if (!withFlags) return bulkArray(indexes.map((i) => command[i]!));
  const flags = array(target.keyFlags.map((flag) => simpleString(flag)));
  return array(indexes.map((i) => array([bulk(command[i]!), flags])));
}

function unknownSubcommand(subcommand: Buffer, command: string): Buffer {
  return errorReply(`ERR unknown subcommand '${latin1(subcommand)}'. Try ${command} HELP.`);
}

/** The arity of each subcommand, as Redis 7.0 declares it (COMMAND INFO command). */
const SUBCOMMAND_ARITY: ReadonlyMap<string, number> = new Map([
  ["INFO", -2],
  ["HELP", 2],
  ["LIST", -2],
  ["COUNT", 2],
  ["DOCS", -2],
  ["GETKEYS", -4],
  ["GETKEYSANDFLAGS", -4],
]);

function commandHandler(table: () => readonly CommandSpec[]): Handler {
  let described: Descriptions | null = null;
  return (keyspace, args) => {
    described ??= new Descriptions(table());
    const all = described.all;
    if (args.length === 1) return entriesReply(keyspace, all, (each) => each.info, 1);
    const sub = upper(args[1]!);
    const arity = SUBCOMMAND_ARITY.get(sub);
    if (arity === undefined) return unknownSubcommand(args[1]!, "COMMAND");
    if (arity > 0 ? args.length !== arity : args.length < -arity)
      return wrongArity(`command|${sub.toLowerCase()}`);
    switch (sub) {
      case "COUNT":
        return integer(all.length);
      case "HELP":
        return HELP_REPLY;
      case "LIST":
        return listReply(keyspace, all, args);
      case "INFO":
      case "DOCS": {
        const found = described;
        const items = args.length === 2 ? all : args.slice(2).map((name) => found.find(name));
        return sub === "INFO"
          ? entriesReply(keyspace, items, (each) => each.info, 1)
          : entriesReply(keyspace, items, (each) => each.docs, 2);
      }
      default:
        return getKeys(described, args, sub === "GETKEYSANDFLAGS");
    }
  };
}

/** COMMAND's own spec; `table` is the whole table, COMMAND included. */
export function commandCommand(table: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: "command",
    arity: -1,
    kind: "connection",
    // sort_for_script: Redis's tip nondeterministic_output_order (the table's order is its own).
    flags: ["loading", "stale", "sort_for_script"],
    handler: commandHandler(table),
  };
}

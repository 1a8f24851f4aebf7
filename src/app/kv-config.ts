/**
 * CONFIG GET / SET / RESETSTAT / REWRITE / HELP over the settings that exist at run time, with
 * their real values: the store's limits (maxmemory = --max-memory, proto-max-bulk-len =
 * --max-value-bytes), what apus-smr fixes (databases 16, maxmemory-policy noeviction, save "",
 * appendonly no, timeout 0, no keyspace notifications) and what the runtime reports
 * (ServerSettings: port, bind, maxclients, appendfsync from --durability). A parameter not listed
 * is unknown, as in Redis (CONFIG GET omits it, CONFIG SET refuses it).
 *
 * CONFIG SET cannot change anything: a setting changed on one replica would make the replicas
 * answer the same commands differently. It checks the values as Redis does (same errors), then
 * accepts one equal to the current value as a no-op (clients send such settings when they start)
 * and refuses any other change, naming the flag to restart every replica with.
 */
import { GlobPattern } from "./glob.ts";
import type { Keyspace } from "./kv-keyspace.ts";
import type { ServerSettings } from "./kv-server.ts";
import {
  ERR_SYNTAX,
  type ExecContext,
  type Handler,
  isReply,
  latin1,
  parseInt64,
  upper,
  wrongArity,
} from "./kv-shared.ts";
import { array, bulkArray, errorReply, OK, simpleString } from "./resp.ts";

/** How a parameter's value is read and compared (Redis's config types). */
type ParamKind = "memory" | "bool" | "int" | "enum" | "string";

interface Param {
  readonly name: string;
  readonly kind: ParamKind;
  /** The value CONFIG GET prints; undefined: not known here (the parameter is then unknown). */
  readonly value: (keyspace: Keyspace, context: ExecContext) => string | undefined;
  /** How to change it: restart every replica with this flag; or why apus-smr fixes it. */
  readonly change: { readonly flag: string } | { readonly fixed: string };
  /** Redis's accepted values (enum), or its range (int, memory). */
  readonly choices?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Redis cannot change it at run time either: its own error. */
  readonly immutable?: boolean;
}

const INT_MAX = 2 ** 31 - 1;
const settings = (context: ExecContext): ServerSettings => context.server ?? {};
const known = (value: number | string | undefined): string | undefined =>
  value === undefined ? undefined : String(value);

/** The parameters, in the order CONFIG GET with a pattern lists them. */
const PARAMS: readonly Param[] = [
  {
    name: "maxmemory",
    kind: "memory",
    value: (_k, context) => String(settings(context).memoryBytesMax ?? 0),
    change: { flag: "--max-memory" },
  },
  {
    name: "maxmemory-policy",
    kind: "enum",
    choices: [
      "volatile-lru",
      "volatile-lfu",
      "volatile-random",
      "volatile-ttl",
      "allkeys-lru",
      "allkeys-lfu",
      "allkeys-random",
      "noeviction",
    ],
    value: () => "noeviction",
    change: { fixed: "it never evicts keys (a write past --max-memory gets -OOM)" },
  },
  {
    name: "proto-max-bulk-len",
    kind: "memory",
    min: 1024 * 1024,
    value: (keyspace) => String(keyspace.limits.valueBytesMax),
    change: { flag: "--max-value-bytes" },
  },
  {
    name: "databases",
    kind: "int",
    immutable: true,
    value: (_k, context) => String(context.databases?.count ?? 16),
    change: { fixed: "it has 16 databases" },
  },
  {
    name: "save",
    kind: "string",
    value: () => "",
    change: { fixed: "the replicas snapshot by --snapshot-every-bytes, never to an RDB file" },
  },
  {
    name: "appendonly",
    kind: "bool",
    value: () => "no",
    change: { fixed: "the replicas' write-ahead log (--durability) takes the place of an AOF" },
  },
  {
    name: "appendfsync",
    kind: "enum",
    choices: ["everysec", "always", "no"],
    value: (_k, context) => settings(context).appendfsync,
    change: { flag: "--durability" },
  },
  {
    name: "timeout",
    kind: "int",
    min: 0,
    max: INT_MAX,
    value: () => "0",
    change: { fixed: "it does not close idle clients" },
  },
  {
    name: "maxclients",
    kind: "int",
    min: 1,
    max: INT_MAX,
    value: (_k, context) => known(settings(context).maxclients),
    change: { flag: "--max-clients" },
  },
  {
    name: "port",
    kind: "int",
    min: 0,
    max: 65535,
    value: (_k, context) => known(settings(context).port),
    change: { flag: "--client-port" },
  },
  {
    name: "bind",
    kind: "string",
    value: (_k, context) => settings(context).bind,
    change: { flag: "--client-host" },
  },
  {
    name: "notify-keyspace-events",
    kind: "string",
    value: () => "",
    change: { fixed: "it sends no keyspace notifications" },
  },
  {
    name: "cluster-enabled",
    kind: "bool",
    immutable: true,
    value: () => "no",
    change: { fixed: "it is not a Redis Cluster" },
  },
];

const BY_NAME = new Map(PARAMS.map((param) => [param.name, param]));

/** ASCII lowercase, as C's tolower (latin1 strings: one char per byte). */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

/**
 * A case-insensitive Redis glob (stringmatchlen with nocase), or the refusal of a pattern longer
 * than `patternBytesMax` (the same as KEYS's).
 */
export function nocaseGlob(
  pattern: string,
  patternBytesMax: number,
): ((text: string) => boolean) | Buffer {
  if (pattern.length > patternBytesMax)
    return errorReply(`ERR pattern too long (${pattern.length} bytes, limit ${patternBytesMax})`);
  const glob = new GlobPattern(asciiLower(pattern));
  return (text) => glob.matches(asciiLower(text));
}

function configGet(keyspace: Keyspace, args: readonly Buffer[], context: ExecContext): Buffer {
  const pairs: string[] = [];
  const seen = new Set<Param>();
  const add = (param: Param, shown: string): void => {
    const value = param.value(keyspace, context);
    if (value === undefined || seen.has(param)) return;
    seen.add(param);
    pairs.push(shown, value);
  };
  for (let i = 2; i < args.length; i++) {
    const pattern = latin1(args[i]!);
    if (!/[[*?]/.test(pattern)) {
      // An exact name is answered with the spelling it was asked by, as Redis does.
      const param = BY_NAME.get(asciiLower(pattern));
      if (param !== undefined) add(param, pattern);
      continue;
    }
    const matches = nocaseGlob(pattern, keyspace.limits.patternBytesMax);
    if (isReply(matches)) return matches;
    for (const param of PARAMS) if (matches(param.name)) add(param, param.name);
  }
  return bulkArray(pairs);
}

/**
 * Redis's memtoull: digits and an optional unit (k = 1000, kb = 1024, …), no digits reading as 0
 * (strtoull of ""); null if invalid.
 */
function parseMemory(text: string): number | null {
  const match = /^(\d*)(b|k|kb|m|mb|g|gb)?$/i.exec(text);
  if (match === null) return null;
  const unit: Readonly<Record<string, number>> = {
    b: 1,
    k: 1000,
    kb: 1024,
    m: 1000 ** 2,
    mb: 1024 ** 2,
    g: 1000 ** 3,
    gb: 1024 ** 3,
  };
  const value = Number(match[1]) * (unit[(match[2] ?? "b").toLowerCase()] ?? 1);
  return Number.isSafeInteger(value) ? value : null;
}

/** The value in a canonical form for comparison, or Redis's complaint about it. */
function normalize(param: Param, text: string): { value: string } | { error: string } {
  switch (param.kind) {
    case "memory": {
      const bytes = parseMemory(text);
      if (bytes === null) return { error: "argument must be a memory value" };
      const min = param.min ?? 0;
      if (bytes < min)
        return { error: `argument must be between ${min} and 9223372036854775807 inclusive` };
      return { value: String(bytes) };
    }
    case "bool": {
      const lower = asciiLower(text);
      if (lower !== "yes" && lower !== "no") return { error: "argument must be 'yes' or 'no'" };
      return { value: lower };
    }
    case "int": {
      const number = parseInt64(Buffer.from(text, "latin1"));
      if (number === null) return { error: "argument couldn't be parsed into an integer" };
      const min = param.min ?? -INT_MAX - 1;
      const max = param.max ?? INT_MAX;
      if (number < min || number > max)
        return { error: `argument must be between ${min} and ${max} inclusive` };
      return { value: String(number) };
    }
    case "enum": {
      const lower = asciiLower(text);
      if (!param.choices!.includes(lower))
        return {
          error: `argument(s) must be one of the following: ${param.choices!.join(", ")}`,
        };
      return { value: lower };
    }
    case "string":
      return { value: text };
  }
}

function setFailed(name: string, why: string): Buffer {
  return errorReply(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${why}`);
}

/** CONFIG SET, checked in Redis's order (configSetCommand), then refused unless a no-op. */
function configSet(keyspace: Keyspace, args: readonly Buffer[], context: ExecContext): Buffer {
  if (args.length % 2 !== 0) return ERR_SYNTAX;
  const chosen: { param: Param; value: string }[] = [];
  let failure: Buffer | null = null;
  for (let i = 2; i < args.length; i += 2) {
    const asked = latin1(args[i]!);
    const param = BY_NAME.get(asciiLower(asked));
    if (param === undefined || param.value(keyspace, context) === undefined) {
      if (failure !== null) continue;
      return errorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${asked}'`);
    }
    if (failure !== null) continue;
    if (param.immutable) failure = setFailed(asked, "can't set immutable config");
    else if (chosen.some((each) => each.param === param))
      failure = setFailed(asked, "duplicate parameter");
    else chosen.push({ param, value: latin1(args[i + 1]!) });
  }
  if (failure !== null) return failure;
  for (const { param, value } of chosen) {
    const normal = normalize(param, value);
    if ("error" in normal) return setFailed(param.name, normal.error);
    const current = normalize(param, param.value(keyspace, context)!);
    if ("value" in current && current.value === normal.value) continue;
    const how =
      "flag" in param.change
        ? `restart every replica with ${param.change.flag}`
        : param.change.fixed;
    return errorReply(`ERR CONFIG SET ${param.name} is not supported by apus-smr: ${how}`);
  }
  return OK;
}

const CONFIG_HELP = array(
  [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
  ].map((line) => simpleString(line)),
);

/** Each subcommand's arity, as Redis 7.0 declares it. */
const SUBCOMMAND_ARITY: ReadonlyMap<string, number> = new Map([
  ["GET", -3],
  ["SET", -4],
  ["RESETSTAT", 2],
  ["REWRITE", 2],
  ["HELP", 2],
]);

/**
 * Whether a CONFIG command changes or resets the server's settings (SET, RESETSTAT, REWRITE, …)
 * rather than reading them: a client role that may write keys may not do this.
 */
export function configIsAdmin(args: readonly Buffer[]): boolean {
  if (args.length < 2) return true;
  const sub = upper(args[1]!);
  return sub !== "GET" && sub !== "HELP";
}

export const config: Handler = (keyspace, args, _now, context) => {
  const sub = upper(args[1]!);
  const arity = SUBCOMMAND_ARITY.get(sub);
  if (arity === undefined)
    return errorReply(`ERR unknown subcommand '${latin1(args[1]!)}'. Try CONFIG HELP.`);
  if (arity > 0 ? args.length !== arity : args.length < -arity)
    return wrongArity(`config|${sub.toLowerCase()}`);
  switch (sub) {
    case "GET":
      return configGet(keyspace, args, context);
    case "SET":
      return configSet(keyspace, args, context);
    case "RESETSTAT":
      return OK; // the statistics INFO shows are the runtime's or derived from the data
    case "REWRITE":
      return errorReply(
        "ERR CONFIG REWRITE is not supported by apus-smr: its settings are its command line (or --config FILE)",
      );
    default:
      return CONFIG_HELP;
  }
};

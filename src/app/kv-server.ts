/**
 * Server and connection commands: PING ECHO INFO TIME CONFIG (kv-config.ts) DEBUG (kv-debug.ts)
 * QUIT, and the handlers of SELECT CLIENT HELLO, which kv-sessions.ts answers for a connection.
 * COMMAND is kv-command-info.ts's.
 *
 * INFO gives Redis's sections in Redis's order with the fields clients read. The store's own
 * (memory: its accounting of keys and values, not the process's heap; keyspace) are the same on
 * every replica at the same log position; the runtime's (ServerSettings, the replication and
 * clients sections) are this machine's: only the replica a client is connected to answers it.
 */

import { VERSION } from "../version.ts";
import { ALWAYS, type CommandSpec } from "./kv-command-spec.ts";
import { config, configIsAdmin } from "./kv-config.ts";
import { debug } from "./kv-debug.ts";
import type { Keyspace } from "./kv-keyspace.ts";
import {
  ERR_NOT_INTEGER,
  type ExecContext,
  type Handler,
  isReply,
  latin1,
  parseLong,
  upper,
  wrongArity,
} from "./kv-shared.ts";
import {
  array,
  bulk,
  bulkArray,
  EMPTY_ARRAY,
  errorReply,
  integer,
  NULL_BULK,
  OK,
  PONG,
} from "./resp.ts";

/**
 * What the runtime tells the store about the replica, for CONFIG GET and INFO (KvStoreOptions
 * `server`); every field optional (tests and tools run a bare store). Machine-local: only the
 * reply of the replica a client talks to reaches it, and none of it changes the data.
 */
export interface ServerSettings {
  /** --max-memory, bytes; 0: no limit. KvStore fills it in from its own option. */
  readonly memoryBytesMax?: number;
  /** The client port and address (CONFIG GET port/bind, INFO tcp_port). */
  readonly port?: number;
  readonly bind?: string;
  /** --max-clients. */
  readonly maxclients?: number;
  /** Redis's name for the --durability in force: "always" (fsync) or "no" (memory). */
  readonly appendfsync?: "always" | "everysec" | "no";
  readonly processId?: number;
  /** The operating system, as INFO's `os` (uname: "Linux 6.1.0 x86_64"). */
  readonly os?: string;
  /** Seconds since the replica started, by its own clock. */
  readonly uptimeSeconds?: () => number;
  /** CPU time the replica's process used, microseconds (process.cpuUsage()). */
  readonly cpuUsage?: () => { readonly user: number; readonly system: number };
}

/** The Redis version we claim: clients gate features on it. */
export const REDIS_VERSION_CLAIMED = "7.0.0";

export const ping: Handler = (_keyspace, args) => {
  if (args.length > 2) return wrongArity("ping");
  return args.length === 2 ? bulk(args[1]!) : PONG;
};

export const echo: Handler = (_keyspace, args) => bulk(args[1]!);

export const select: Handler = (_keyspace, args) => {
  const index = parseLong(args[1]!);
  if (index === null || index > 2 ** 31 - 1 || index < -(2 ** 31)) return ERR_NOT_INTEGER;
  return index === 0 ? OK : errorReply("ERR DB index is out of range");
};

export const quit: Handler = () => OK;

/** HELLO 3: the embedded store speaks RESP2 only; clients fall back to it (and to AUTH). */
export const HELLO_NOPROTO_RESP3 = errorReply("NOPROTO this server does not support RESP3");
/** Redis's answer to a wrong user name or password, the same for both so neither leaks. */
export const ERR_WRONGPASS = errorReply(
  "WRONGPASS invalid username-password pair or user is disabled.",
);

/** HELLO's arguments as Redis 7 reads them (helloCommand, networking.c). */
export interface HelloRequest {
  /** The protocol version asked for; null when HELLO has no argument (keep the current one). */
  readonly protover: number | null;
  readonly auth: { readonly username: Buffer; readonly password: Buffer } | null;
  readonly setname: Buffer | null;
}

/**
 * `HELLO [protover [AUTH username password] [SETNAME clientname]]`, or Redis's error reply: the
 * version is checked first, then each option, before any authentication.
 */
export function parseHello(args: readonly Buffer[]): HelloRequest | Buffer {
  if (args.length < 2) return { protover: null, auth: null, setname: null };
  const protover = parseLong(args[1]!);
  if (protover === null)
    return errorReply("ERR Protocol version is not an integer or out of range");
  if (protover < 2 || protover > 3) return errorReply("NOPROTO unsupported protocol version");
  let auth: HelloRequest["auth"] = null;
  let setname: Buffer | null = null;
  for (let i = 2; i < args.length; i++) {
    const option = upper(args[i]!);
    const more = args.length - 1 - i;
    if (option === "AUTH" && more >= 2) {
      auth = { username: args[i + 1]!, password: args[i + 2]! };
      i += 2;
    } else if (option === "SETNAME" && more >= 1) {
      setname = args[i + 1]!;
      if (!isValidClientName(setname))
        return errorReply(
          "ERR Client names cannot contain spaces, newlines or special characters.",
        );
      i += 1;
    } else {
      return errorReply(`ERR Syntax error in HELLO option '${latin1(args[i]!)}'`);
    }
  }
  return { protover, auth, setname };
}

/** Redis's rule for client names: printable ASCII, no space. */
function isValidClientName(name: Buffer): boolean {
  for (const c of name) if (c < 0x21 || c > 0x7e) return false;
  return true;
}

/** HELLO's RESP2 answer, as redis-server 7 gives it: a flat list of field, value. */
const HELLO_REPLY = array([
  bulk("server"),
  bulk("redis"),
  bulk("version"),
  bulk(REDIS_VERSION_CLAIMED),
  bulk("proto"),
  integer(2),
  bulk("id"),
  integer(1), // as CLIENT ID: connection ids belong to the runtime, not the store
  bulk("mode"),
  bulk("standalone"),
  bulk("role"),
  bulk("master"),
  bulk("modules"),
  EMPTY_ARRAY,
]);

/**
 * HELLO: RESP2 only. With --requirepass-file or --users-file the replica itself checks HELLO's
 * AUTH and passes HELLO on without it; here (no authentication set up) only the default user
 * exists and takes any password, as in a redis-server without one.
 */
export const hello: Handler = (_keyspace, args) => {
  const request = parseHello(args);
  if (isReply(request)) return request;
  if (request.protover === 3) return HELLO_NOPROTO_RESP3;
  if (request.auth !== null && latin1(request.auth.username) !== "default") return ERR_WRONGPASS;
  return HELLO_REPLY;
};

function unknownSubcommand(subcommand: Buffer, command: string): Buffer {
  return errorReply(`ERR unknown subcommand '${latin1(subcommand)}'. Try ${command} HELP.`);
}

export { config, configIsAdmin };

export const client: Handler = (_keyspace, args) => {
  const sub = upper(args[1]!);
  switch (sub) {
    case "SETNAME":
      return args.length === 3 ? OK : wrongArity("client|setname");
    case "SETINFO":
      return args.length === 4 ? OK : wrongArity("client|setinfo");
    case "GETNAME":
      return NULL_BULK;
    case "ID":
      return integer(1);
    case "INFO":
    case "LIST":
      return bulk("id=1 addr=127.0.0.1:0 name= db=0 resp=2\n");
    default:
      return unknownSubcommand(args[1]!, "CLIENT");
  }
};

/** Every section INFO knows, in the order Redis prints them. */
const INFO_SECTIONS = [
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "modules",
  "cluster",
  "keyspace",
] as const;
type InfoSection = (typeof INFO_SECTIONS)[number];

/** Section titles. (Redis's commandstats, errorstats and latencystats are not kept.) */
const SECTION_TITLES: Readonly<Record<InfoSection, string>> = {
  server: "Server",
  clients: "Clients",
  memory: "Memory",
  persistence: "Persistence",
  stats: "Stats",
  replication: "Replication",
  cpu: "CPU",
  modules: "Modules",
  cluster: "Cluster",
  keyspace: "Keyspace",
};

/** `n / 2^shift` with two decimals, rounded as printf's "%.2f" (half to even on the exact value). */
function fixed2(n: number, shift: number): string {
  const scaled = BigInt(n) * 100n;
  const unit = 1n << BigInt(shift);
  let hundredths = scaled / unit;
  const twice = (scaled % unit) * 2n;
  if (twice > unit || (twice === unit && hundredths % 2n === 1n)) hundredths++;
  const text = hundredths.toString().padStart(3, "0");
  return `${text.slice(0, -2)}.${text.slice(-2)}`;
}

/** Redis's bytesToHuman: "512B", "1.16M", "2.00G". */
export function bytesToHuman(bytes: number): string {
  const units = ["K", "M", "G", "T", "P"];
  if (bytes < 1024) return `${bytes}B`;
  for (let i = 0; i < units.length; i++) {
    if (bytes < 1024 ** (i + 2)) return `${fixed2(bytes, 10 * (i + 1))}${units[i]}`;
  }
  return `${bytes}B`;
}

/** "name:value" lines of a runtime section, in order. */
function fieldsOf(text: string): [string, string][] {
  const fields: [string, string][] = [];
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return fields;
}

function lines(fields: readonly (readonly [string, string | number])[]): string {
  return fields.map(([name, value]) => `${name}:${value}\r\n`).join("");
}

/** The store's databases, or only the command's own where the context names none (tests). */
function databasesOf(keyspace: Keyspace, context: ExecContext): Keyspace[] {
  const databases = context.databases;
  if (databases === undefined) return [keyspace];
  const all: Keyspace[] = [];
  for (let i = 0; i < databases.count; i++) all.push(databases.get(i));
  return all;
}

function serverSection(settings: ServerSettings): string {
  const fields: [string, string | number][] = [
    ["redis_version", REDIS_VERSION_CLAIMED],
    ["redis_git_sha1", "00000000"],
    ["redis_git_dirty", 0],
    ["redis_mode", "standalone"],
    ["os", settings.os ?? "apus-smr"],
    ["arch_bits", 64],
  ];
  if (settings.processId !== undefined) fields.push(["process_id", settings.processId]);
  if (settings.port !== undefined) fields.push(["tcp_port", settings.port]);
  if (settings.uptimeSeconds !== undefined) {
    const uptime = Math.floor(settings.uptimeSeconds());
    fields.push(["uptime_in_seconds", uptime], ["uptime_in_days", Math.floor(uptime / 86_400)]);
  }
  fields.push(["apus_smr_version", VERSION]);
  return lines(fields);
}

/** The runtime's clients section, with maxclients and blocked_clients where it lacks them. */
function clientsSection(settings: ServerSettings, context: ExecContext): string {
  const fields = fieldsOf(context.info("clients"));
  const has = (name: string) => fields.some(([each]) => each === name);
  // connected_clients only where the runtime counts them: a made-up number would mislead.
  if (settings.maxclients !== undefined && !has("maxclients")) {
    const at = fields.findIndex(([name]) => name === "connected_clients");
    fields.splice(at + 1, 0, ["maxclients", String(settings.maxclients)]);
  }
  if (!has("blocked_clients")) fields.push(["blocked_clients", "0"]);
  return lines(fields);
}

function memorySection(databases: readonly Keyspace[], settings: ServerSettings): string {
  let used = 0;
  for (const keyspace of databases) used += keyspace.usedBytes;
  const max = settings.memoryBytesMax ?? 0;
  return lines([
    ["used_memory", used],
    ["used_memory_human", bytesToHuman(used)],
    ["maxmemory", max],
    ["maxmemory_human", bytesToHuman(max)],
    ["maxmemory_policy", "noeviction"],
  ]);
}

/** CPU seconds as Redis prints them ("%ld.%06ld"). */
function cpuSeconds(microseconds: number): string {
  const whole = Math.floor(microseconds / 1e6);
  return `${whole}.${String(Math.floor(microseconds - whole * 1e6)).padStart(6, "0")}`;
}

function keyspaceSection(databases: readonly Keyspace[], now: number): string {
  let text = "";
  for (let db = 0; db < databases.length; db++) {
    const keyspace = databases[db]!;
    const keys = keyspace.liveCount(now);
    if (keys === 0) continue;
    let expires = 0;
    for (const key of keyspace.volatile)
      if (!(now > keyspace.entries.get(key)!.expiresAtMs)) expires++;
    text += `db${db}:keys=${keys},expires=${expires},avg_ttl=0\r\n`;
  }
  return text;
}

function infoSection(
  name: InfoSection,
  keyspace: Keyspace,
  now: number,
  context: ExecContext,
): string {
  const settings = context.server ?? {};
  switch (name) {
    case "server":
      return serverSection(settings);
    case "clients":
      return clientsSection(settings, context);
    case "memory":
      return memorySection(databasesOf(keyspace, context), settings);
    case "persistence":
      // No RDB and no AOF: the replicas' write-ahead log and snapshots take their place.
      return lines([
        ["loading", 0],
        ["async_loading", 0],
        ["rdb_bgsave_in_progress", 0],
        ["aof_enabled", 0],
        ["aof_rewrite_in_progress", 0],
      ]);
    case "stats": {
      const fields = fieldsOf(context.info("stats"));
      if (!fields.some(([field]) => field === "evicted_keys")) fields.push(["evicted_keys", "0"]);
      return lines(fields);
    }
    case "replication":
      return context.info("replication") || "role:master\r\n";
    case "cpu": {
      const usage = settings.cpuUsage?.();
      if (usage === undefined) return "";
      return lines([
        ["used_cpu_sys", cpuSeconds(usage.system)],
        ["used_cpu_user", cpuSeconds(usage.user)],
        ["used_cpu_sys_children", "0.000000"],
        ["used_cpu_user_children", "0.000000"],
      ]);
    }
    case "modules":
      return "";
    case "cluster":
      return "cluster_enabled:0\r\n";
    case "keyspace":
      return keyspaceSection(databasesOf(keyspace, context), now);
  }
}

/**
 * INFO [section …]: the sections asked for (any case; default, all and everything: every one),
 * in Redis's order, each "# Title" and its fields, separated by an empty line; unknown names are
 * ignored, as in Redis.
 */
export const info: Handler = (keyspace, args, now, context) => {
  const asked = new Set<string>();
  for (let i = 1; i < args.length; i++) asked.add(latin1(args[i]!).toLowerCase());
  const every =
    asked.size === 0 || asked.has("default") || asked.has("all") || asked.has("everything");
  const parts: string[] = [];
  for (const name of INFO_SECTIONS) {
    if (!every && !asked.has(name)) continue;
    const body = infoSection(name, keyspace, now, context);
    const ended = body === "" || body.endsWith("\r\n") ? body : `${body}\r\n`;
    parts.push(`# ${SECTION_TITLES[name]}\r\n${ended}`);
  }
  return bulk(parts.join("\r\n"));
};

/** TIME: the log's clock (`now`, ms) as [seconds, microseconds], the same on every replica. */
export const time: Handler = (_keyspace, _args, now) => {
  const seconds = Math.floor(now / 1000);
  return bulkArray([String(seconds), String(Math.round((now - seconds * 1000) * 1000))]);
};

/**
 * This module's commands in the store's command table (kv-command-table.ts). SELECT, CLIENT and
 * HELLO act on the connection: kv-sessions.ts answers them (the handlers above serve tests and
 * the client port's gate).
 */
export const SERVER_COMMANDS: readonly CommandSpec[] = [
  { name: "ping", arity: -1, kind: "connection", handler: ping, flags: ["fast"] },
  {
    name: "echo",
    arity: 2,
    kind: "connection",
    handler: echo,
    flags: ["loading", "stale", "fast"],
  },
  // random: Redis 7's tip nondeterministic_output (machine-local fields).
  {
    name: "info",
    arity: -1,
    kind: "connection",
    handler: info,
    flags: ["loading", "stale", "random"],
  },
  // "session": through the log, so that `now` is a fresh stamp (a read at a read index sees the
  // last batch's, which an idle cluster does not move); the read right is enough.
  {
    name: "time",
    arity: 1,
    kind: "session",
    handler: time,
    flags: ["loading", "stale", "fast", "random"],
  },
  { name: "config", arity: -2, kind: "connection", handler: config, admin: configIsAdmin },
  {
    name: "debug",
    arity: -2,
    kind: "connection",
    handler: debug,
    flags: ["admin", "noscript", "loading", "stale"],
    admin: ALWAYS,
  },
  {
    name: "quit",
    arity: -1,
    kind: "connection",
    handler: quit,
    flags: ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
  },
];

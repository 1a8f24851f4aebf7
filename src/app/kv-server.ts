/**
 * Server and connection commands: PING ECHO SELECT INFO COMMAND CONFIG CLIENT HELLO QUIT. Enough
 * for redis-cli 7 and redis-benchmark; per-connection state (client names, ids) belongs to the
 * runtime, which may answer CLIENT itself before a command reaches the store.
 */

import { VERSION } from "../version.ts";
import type { CommandSpec } from "./kv-command-spec.ts";
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

/** CONFIG GET answers for these parameters only (what redis-benchmark and tools ask). */
const CONFIG_VALUES: ReadonlyMap<string, string> = new Map([
  ["save", ""],
  ["appendonly", "no"],
  ["databases", "1"],
  ["maxmemory", "0"],
  ["maxmemory-policy", "noeviction"],
]);

/**
 * Whether a CONFIG command changes or resets the server's settings (SET, RESETSTAT, REWRITE, …)
 * rather than reading them: a client role that may write keys may not do this.
 */
export function configIsAdmin(args: readonly Buffer[]): boolean {
  return args.length < 2 || upper(args[1]!) !== "GET";
}

export const config: Handler = (_keyspace, args) => {
  const sub = upper(args[1]!);
  if (sub === "GET") {
    if (args.length < 3) return wrongArity("config|get");
    const pairs: string[] = [];
    for (let i = 2; i < args.length; i++) {
      const name = latin1(args[i]!).toLowerCase();
      const value = CONFIG_VALUES.get(name);
      if (value !== undefined && !pairs.includes(name)) pairs.push(name, value);
    }
    return bulkArray(pairs);
  }
  if (sub === "SET") return errorReply("ERR CONFIG SET is not supported by apus-smr");
  if (sub === "RESETSTAT") return OK;
  return unknownSubcommand(args[1]!, "CONFIG");
};

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

/** The sections INFO prints by default and for "all"/"everything", in Redis's order. */
const INFO_SECTIONS = ["server", "clients", "replication", "keyspace"] as const;

function section(title: string, lines: string): string {
  const body = lines === "" || lines.endsWith("\r\n") ? lines : `${lines}\r\n`;
  return `# ${title}\r\n${body}`;
}

function infoSection(
  name: string,
  keyspace: Keyspace,
  now: number,
  context: ExecContext,
): string | undefined {
  switch (name) {
    case "server":
      return section(
        "Server",
        `redis_version:${REDIS_VERSION_CLAIMED}\r\nredis_mode:standalone\r\nos:apus-smr\r\n` +
          `arch_bits:64\r\napus_smr_version:${VERSION}\r\n`,
      );
    case "clients":
      return section("Clients", context.info("clients") || "connected_clients:1\r\n");
    case "replication":
      return section("Replication", context.info("replication") || "role:master\r\n");
    case "keyspace": {
      const keys = keyspace.liveCount(now);
      let expires = 0;
      for (const key of keyspace.volatile)
        if (!(now > keyspace.entries.get(key)!.expiresAtMs)) expires++;
      return section(
        "Keyspace",
        keys === 0 ? "" : `db0:keys=${keys},expires=${expires},avg_ttl=0\r\n`,
      );
    }
    default:
      return undefined;
  }
}

export const info: Handler = (keyspace, args, now, context) => {
  let names: string[] = [];
  for (let i = 1; i < args.length; i++) names.push(latin1(args[i]!).toLowerCase());
  if (
    names.length === 0 ||
    names.some((n) => n === "all" || n === "everything" || n === "default")
  ) {
    names = [...INFO_SECTIONS];
  }
  const parts: string[] = [];
  for (const name of INFO_SECTIONS) {
    if (!names.includes(name)) continue;
    const text = infoSection(name, keyspace, now, context);
    if (text !== undefined) parts.push(text);
  }
  return bulk(parts.join("\r\n"));
};

/** This module's commands in the store's command table (kv-command-table.ts). */
export const SERVER_COMMANDS: readonly CommandSpec[] = [
  { name: "ping", arity: -1, kind: "connection", handler: ping, flags: ["fast"] },
  { name: "echo", arity: 2, kind: "connection", handler: echo, flags: ["fast"] },
  {
    name: "select",
    arity: 2,
    kind: "connection",
    handler: select,
    flags: ["loading", "stale", "fast"],
  },
  { name: "info", arity: -1, kind: "read", handler: info, flags: ["loading", "stale"] },
  { name: "config", arity: -2, kind: "connection", handler: config, admin: configIsAdmin },
  { name: "client", arity: -2, kind: "connection", handler: client },
  {
    name: "hello",
    arity: -1,
    kind: "connection",
    handler: hello,
    flags: ["noscript", "loading", "stale", "fast", "no_auth"],
  },
  {
    name: "quit",
    arity: -1,
    kind: "connection",
    handler: quit,
    flags: ["noscript", "loading", "stale", "fast", "no_auth"],
  },
];

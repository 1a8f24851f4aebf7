/**
 * What a command needs of a client's role, read from the command tables that already exist: the
 * embedded store's (kv-store.ts: `kind`, `admin`) or, in transparent mode over RESP, the table
 * the program's own redis-server gives (redis-command-table.ts: flags and ACL categories).
 *
 * | role       | may run                                                                   |
 * | ---------- | ------------------------------------------------------------------------- |
 * | read-only  | commands that change no key: reads, connection commands (PING, CLIENT…)   |
 * | read-write | those and writes; not admin commands                                      |
 * | admin      | everything                                                                |
 *
 * Admin: FLUSHALL, FLUSHDB, CONFIG but CONFIG GET; in transparent mode also every command
 * redis-server flags `admin` (DEBUG, SHUTDOWN, MONITOR, CLIENT KILL, ACL SETUSER, …) and the
 * @dangerous writes to the whole keyspace (SWAPDB, RESTORE, MIGRATE).
 *
 * A name the table does not know:
 * - embedded store: a read. Its table is the store: a name it lacks runs nothing there (unknown
 *   command error).
 * - transparent mode: admin (fail closed). The program may run what its COMMAND table does not
 *   list: a command renamed with redis-server's `rename-command` (FLUSHALL → WIPEALL) or a module
 *   command loaded later. A non-admin user gets -NOPERM for it, even for a mere typo.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { commandKind, isAdminCommand } from "../app/kv-store.ts";
import { PROGRAM_HOST } from "../app/program/program-process.ts";
import {
  loadRedisCommandTable,
  lookupCommand,
  lowerName,
  type RedisCommandTable,
} from "../app/program/redis-command-table.ts";
import { errorReply } from "../app/resp.ts";
import { ApusError } from "../core/errors.ts";
import type { ClientRole } from "../runtime/client-auth.ts";
import type { ReplicaConfig } from "../runtime/config.ts";

export type CommandRight = "read" | "write" | "admin";

export interface CommandNeed {
  readonly right: CommandRight;
  /** Redis's name of the command in errors: lower case, `config|set` for a subcommand. */
  readonly name: string;
}

/** What running `args` (a command, its name first) needs of the client's role. */
export type CommandRights = (args: readonly Buffer[]) => CommandNeed;

/** Whether `role` may run a command that needs `right`. */
export function roleAllows(role: ClientRole, right: CommandRight): boolean {
  switch (role) {
    case "admin":
      return true;
    case "read-write":
      return right !== "admin";
    case "read-only":
      return right === "read";
  }
}

/** Redis 7's refusal of a command the user's ACL does not allow. */
export function noPermission(name: string): Buffer {
  return errorReply(`NOPERM this user has no permissions to run the '${name}' command`);
}

/** The embedded store's command table. */
export const embeddedRights: CommandRights = (args) => {
  let name = lowerName(args[0]!);
  // CONFIG is the store's one command whose subcommand decides its right.
  if (name === "config" && args.length >= 2) name = `config|${lowerName(args[1]!)}`;
  if (isAdminCommand(args)) return { right: "admin", name };
  return { right: commandKind(args[0]!) === "write" ? "write" : "read", name };
};

/** Transparent mode over RESP: the table of the program's redis-server (COMMAND). */
export function redisTableRights(table: RedisCommandTable): CommandRights {
  return (args) => {
    const spec = lookupCommand(table, args);
    // Not in the table is not harmless: WIPEALL may be FLUSHALL renamed (file comment).
    if (spec === null) return { right: "admin", name: lowerName(args[0]!) };
    const { name, flags, aclCategories: categories } = spec;
    // Tools read settings (redis-benchmark asks CONFIG GET save); reading them changes nothing.
    if (name === "config|get") return { right: "read", name };
    const wholeKeyspaceWrite =
      flags.has("write") && categories.has("@dangerous") && categories.has("@keyspace");
    if (flags.has("admin") || wholeKeyspaceWrite) return { right: "admin", name };
    // A script may write whatever its flags say (EVAL has neither write nor readonly).
    const mayWrite = flags.has("write") || (categories.has("@scripting") && !flags.has("readonly"));
    return { right: mayWrite ? "write" : "read", name };
  };
}

/**
 * Transparent mode: the file in --data-dir where the consensus worker writes the loopback port of
 * this replica's copy of the program once it runs (before any connection worker starts).
 */
export const PROGRAM_PORT_FILE = "app.port";

/**
 * Transparent mode over RESP: the rights of the commands of this replica's redis-server, read
 * from its COMMAND table. Throws ERR_INVALID_CONFIG when the program does not answer COMMAND:
 * the roles of --users-file could not be enforced.
 */
export async function loadProgramRights(config: ReplicaConfig): Promise<CommandRights> {
  const portFile = join(config.dataDir, PROGRAM_PORT_FILE);
  try {
    const port = Number(readFileSync(portFile, "utf8").trim());
    return redisTableRights(await loadRedisCommandTable(port, { host: PROGRAM_HOST }));
  } catch (error) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `--users-file ${config.usersFile} has read-only or read-write users, whose rights come from the program's command table (redis-server's COMMAND), which could not be read (${(error as Error).message}); with a program that is not redis-server make every user admin`,
      { cause: error },
    );
  }
}

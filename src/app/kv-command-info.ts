/**
 * COMMAND and its subcommands, answered from the command table (kv-command-table.ts), which
 * passes itself in: COMMAND COUNT, and (for now) empty answers to DOCS, INFO and LIST.
 */
import type { CommandSpec } from "./kv-command-spec.ts";
import { type Handler, latin1, upper, wrongArity } from "./kv-shared.ts";
import { EMPTY_ARRAY, errorReply, integer } from "./resp.ts";

function unknownSubcommand(subcommand: Buffer, command: string): Buffer {
  return errorReply(`ERR unknown subcommand '${latin1(subcommand)}'. Try ${command} HELP.`);
}

function commandHandler(table: () => readonly CommandSpec[]): Handler {
  return (_keyspace, args) => {
    if (args.length === 1) return EMPTY_ARRAY;
    const sub = upper(args[1]!);
    if (sub === "COUNT")
      return args.length === 2 ? integer(table().length) : wrongArity("command|count");
    if (sub === "DOCS" || sub === "INFO" || sub === "LIST") return EMPTY_ARRAY;
    return unknownSubcommand(args[1]!, "COMMAND");
  };
}

/** COMMAND's own spec; `table` is the whole table, COMMAND included. */
export function commandCommand(table: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: "command",
    arity: -1,
    kind: "connection",
    flags: ["loading", "stale"],
    handler: commandHandler(table),
  };
}

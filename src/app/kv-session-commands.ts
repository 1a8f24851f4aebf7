/**
 * The commands that act on a connection's session (kv-sessions.ts answers them): their specs in
 * the store's command table. KvStore.execute alone (no connection) answers SELECT, HELLO and
 * CLIENT as a fresh connection would (kv-server.ts), and the others with an error.
 */
import { type CommandSpec, KEYS_FROM_1 } from "./kv-command-spec.ts";
import { client, hello, select } from "./kv-server.ts";
import { type Handler, latin1, upper } from "./kv-shared.ts";
import { errorReply } from "./resp.ts";

const CLIENT_ADMIN = new Set(["LIST", "UNBLOCK", "KILL", "PAUSE", "UNPAUSE"]);

/** Run only through a session (KvSessions.execute); KvStore.execute alone answers this. */
const needsSession: Handler = (_keyspace, args) =>
  errorReply(`ERR ${latin1(args[0]!)} needs a client connection`);

function sessionCommand(
  name: string,
  arity: number,
  flags: CommandSpec["flags"] = ["noscript", "loading", "stale", "fast"],
  handler: Handler = needsSession,
): CommandSpec {
  return { name, arity, kind: "session", handler, flags };
}

/** The session commands in the store's command table (kv-command-table.ts). */
export const SESSION_COMMANDS: readonly CommandSpec[] = [
  sessionCommand("multi", 1),
  sessionCommand("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"]),
  sessionCommand("discard", 1),
  { ...sessionCommand("watch", -2), keys: KEYS_FROM_1 },
  sessionCommand("unwatch", 1),
  sessionCommand("select", 2, ["loading", "stale", "fast"], select),
  sessionCommand("subscribe", -2, ["pubsub", "noscript", "loading", "stale"]),
  sessionCommand("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"]),
  sessionCommand("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"]),
  sessionCommand("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"]),
  sessionCommand("publish", 3, ["pubsub", "loading", "stale", "fast", "may_replicate"]),
  sessionCommand("pubsub", -2, ["pubsub", "loading", "stale"]),
  sessionCommand("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth"], hello),
  {
    ...sessionCommand("client", -2, ["noscript", "loading", "stale"], client),
    // Those that reach other clients (of every replica) are an admin's, as in Redis.
    admin: (args) => args.length > 1 && CLIENT_ADMIN.has(upper(args[1]!)),
  },
  sessionCommand("reset", 1, ["noscript", "loading", "stale", "fast", "no_auth"]),
];

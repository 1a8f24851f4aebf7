import { parseArgs } from "node:util";
import { ApusError } from "../core/errors.ts";
import type { AdminAddress } from "./admin-client.ts";
import { type MemberCommand, parseMemberCommand } from "./member-report.ts";
import { parseAdminList } from "./status-table.ts";

/**
 * Who the admin requests authenticate as (--user), and the file holding the password
 * (--password-file; null: the environment variable APUS_ADMIN_PASSWORD). A password is never
 * taken from argv, where every user of the host can read it.
 */
export interface CliLogin {
  readonly user: string | null;
  readonly passwordFile: string | null;
}

/** The `apus` CLI's commands and flags (dist/cli.js), parsed and checked here, pure. */
export type CliArgs =
  | { readonly command: "help" }
  | { readonly command: "version" }
  | ({
      readonly command: "status";
      readonly admin: readonly AdminAddress[];
      readonly json: boolean;
    } & CliLogin)
  | ({
      readonly command: "latency";
      readonly admin: readonly AdminAddress[];
      readonly reset: boolean;
    } & CliLogin)
  | ({
      readonly command: "leader-transfer";
      readonly admin: readonly AdminAddress[];
      /** The replica to hand to; null: the leader picks the most caught-up follower. */
      readonly target: number | null;
      readonly json: boolean;
    } & CliLogin)
  | ({
      readonly command: "member";
      readonly admin: readonly AdminAddress[];
      readonly member: MemberCommand;
      readonly json: boolean;
    } & CliLogin);

/** The admin ports `npm start` gives a three-replica cluster. */
export const DEFAULT_ADMIN = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003";

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let values: {
    admin?: string;
    json?: boolean;
    reset?: boolean;
    "wait-ms"?: string;
    user?: string;
    "password-file"?: string;
    help?: boolean;
    version?: boolean;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        admin: { type: "string" },
        json: { type: "boolean" },
        reset: { type: "boolean" },
        "wait-ms": { type: "string" },
        user: { type: "string" },
        "password-file": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (values.help === true || positionals[0] === "help") return { command: "help" };
  if (values.version === true) return { command: "version" };
  const [command, ...rest] = positionals;
  if (command === undefined)
    throw invalid("missing command: status, latency, leader transfer or member");
  const login = parseLogin(values);
  if (command === "leader") return { ...parseLeaderCommand(rest, values), ...login };
  if (command === "member") return { ...parseMember(rest, values), ...login };
  if (values["wait-ms"] !== undefined) throw invalid(`--wait-ms belongs to member, not ${command}`);
  if (rest.length > 0) throw invalid(`unexpected argument "${rest[0]}" after ${command}`);
  if (command !== "status" && command !== "latency")
    throw invalid(`unknown command "${command}": use status or latency`);
  const adminText =
    values.admin ?? (command === "status" ? DEFAULT_ADMIN : DEFAULT_ADMIN.split(",")[0]!);
  const admin = parseAdminList(adminText);
  if (admin === null)
    throw invalid(`--admin: expected host:port,host:port,..., got "${adminText}"`);
  if (command === "status") {
    if (values.reset === true) throw invalid("--reset belongs to latency, not status");
    return { command, admin, json: values.json === true, ...login };
  }
  if (values.json === true) throw invalid("latency always prints JSON; drop --json");
  return { command, admin, reset: values.reset === true, ...login };
}

function parseLogin(values: { user?: string; "password-file"?: string }): CliLogin {
  const user = values.user ?? null;
  const passwordFile = values["password-file"] ?? null;
  if (user === "" || user?.includes(":") === true)
    throw invalid("--user: expected a user name (not empty, no colon)");
  if (passwordFile !== null && user === null)
    throw invalid("--password-file needs --user NAME (whose password the file holds)");
  return { user, passwordFile };
}

function parseMember(
  rest: readonly string[],
  values: { admin?: string; json?: boolean; reset?: boolean; "wait-ms"?: string },
): Omit<Extract<CliArgs, { command: "member" }>, keyof CliLogin> {
  const waitText = values["wait-ms"];
  let waitMs: number | null = null;
  if (waitText !== undefined) {
    waitMs = Number(waitText);
    if (!/^[0-9]+$/.test(waitText) || !Number.isSafeInteger(waitMs))
      throw invalid(`--wait-ms: expected milliseconds, got "${waitText}"`);
  }
  if (values.reset === true) throw invalid("--reset belongs to latency, not member");
  const member = parseMemberCommand(rest, waitMs);
  const adminText = values.admin ?? DEFAULT_ADMIN;
  const admin = parseAdminList(adminText);
  if (admin === null)
    throw invalid(`--admin: expected host:port,host:port,..., got "${adminText}"`);
  return { command: "member", admin, member, json: values.json === true };
}

function parseLeaderCommand(
  rest: readonly string[],
  values: { admin?: string; json?: boolean; reset?: boolean },
): Omit<Extract<CliArgs, { command: "leader-transfer" }>, keyof CliLogin> {
  const [sub, id, ...extra] = rest;
  if (sub !== "transfer")
    throw invalid(`unknown command "leader ${sub ?? ""}": use leader transfer [ID]`);
  if (extra.length > 0) throw invalid(`unexpected argument "${extra[0]}" after leader transfer`);
  let target: number | null = null;
  if (id !== undefined) {
    target = Number(id);
    if (!/^[0-9]+$/.test(id) || !Number.isSafeInteger(target) || target < 1)
      throw invalid(`leader transfer: the target must be a replica id (1, 2, ...), got "${id}"`);
  }
  if (values.reset === true) throw invalid("--reset belongs to latency, not leader transfer");
  const adminText = values.admin ?? DEFAULT_ADMIN;
  const admin = parseAdminList(adminText);
  if (admin === null)
    throw invalid(`--admin: expected host:port,host:port,..., got "${adminText}"`);
  return { command: "leader-transfer", admin, target, json: values.json === true };
}

export function cliHelpText(version: string): string {
  return `apus ${version}: look at a running apus-smr cluster through its admin HTTP ports

Usage:
  apus status  [--admin H:P,H:P,...] [--json] [--user NAME]
      GET /status of every replica and print a table: id, role, leader, ballot, commit index,
      applied index, lag (slots the applied index trails the highest commit index), pending
      requests, keys, uptime. A replica that does not answer is a row "down (reason)".
      Below it: whether exactly one replica leads and whether a majority answers.
      Exit status 0 when some replica leads and a majority answers, else 1.
      --json prints the answers as one JSON array instead ({"admin","down"} for a silent one).
  apus latency [--admin H:P,...] [--reset] [--user NAME]
      GET /latency (consensus-latency quantiles, µs) and print it as one JSON line per replica;
      --reset starts a new measuring window after reading.
  apus leader transfer [ID] [--admin H:P,H:P,...] [--json] [--user NAME]
      Hand leadership to replica ID (default: the follower the leader finds most caught up)
      without an election timeout: finds the leader through GET /status, POSTs
      /leader/transfer?to=ID to it, then prints who leads. Exit status 0 only when the target
      (ID, or the one the leader picked) leads after; --json prints one JSON line in every case.

  apus member list [--admin H:P,...] [--json]
      The cluster's configuration (GET /members of the first replica that answers, the
      leader's when --admin lists it): each member's id, role (voter or learner), peer address,
      and on the leader its chosen slot and lag; then the slot of the last change and whether it
      governs yet.
  apus member add ID HOST:PORT [--wait-ms MS]
      Add replica ID, a new id, as a learner at peer address HOST:PORT (start it first with
      --join, the cluster's --secret-file, and --peers naming the members and itself). A learner
      receives the log and votes uncounted.
  apus member promote ID
      Make learner ID a voter; refused (exit 1, "lagging") while it trails the leader by more
      than the leader's --promote-lag-slots.
  apus member remove ID
      Remove replica ID (a voter or learner). Then stop it; it logs that it was removed.
  apus member replace OLD_ID NEW_ID HOST:PORT [--wait-ms MS]
      Replace replica OLD_ID (failed, or on a machine to retire) by NEW_ID at HOST:PORT: add NEW_ID
      as a learner, wait until it caught up, promote it, remove OLD_ID; prints each step.
      Each member command finds the leader among --admin (GET /status), POSTs /members to it,
      and waits until the change is chosen and governs (--wait-ms per step, default 30000).
      Exit status 0 when every step is done, 1 when the leader refused or a step did not
      finish (the output says which and why), 2 for bad arguments. One change at a time.
      --json prints the leader's answer as one JSON line.

  --admin   admin addresses (each replica's --admin-host:--admin-port)
            default: ${DEFAULT_ADMIN} (npm start's cluster; latency: the first)
  --user NAME
            authenticate to the admin ports (HTTP Basic) as NAME, a user of the replicas'
            --users-file (or default, the --requirepass-file user). Replicas with client users
            require an admin-role user for leader transfer, member changes and latency --reset, and any user for
            status under --admin-auth all. Without client users the admin port has no
            authentication: keep it on 127.0.0.1 (the default --admin-host) or a private network.
  --password-file FILE
            the password of --user: the file's first line. Otherwise the environment variable
            APUS_ADMIN_PASSWORD. Never on the command line.
  --help    show this text
  --version print the version
`;
}

/**
 * `apus member …`: the arguments of each subcommand, and what it prints. Pure: the CLI does the
 * I/O (src/cli.ts), the replicas the change (POST /members, membership-admin.ts).
 */
import { ApusError } from "../core/errors.ts";
import { parsePeerAddress } from "../runtime/peer-list.ts";
import type {
  ConfigurationView,
  MemberChangeOutcome,
  MembersView,
} from "../runtime/thread-contracts.ts";

export type MemberOp = "list" | "add" | "promote" | "remove" | "replace";

/** What `apus member OP …` asks for, less the flags every command shares. */
export interface MemberCommand {
  readonly op: MemberOp;
  /** The member the op is about (replace: the one replaced); 0 for list. */
  readonly id: number;
  /** add, replace: the new replica's peer address (host:port, its --peers entry). */
  readonly address: string | null;
  /** replace: the new replica's id. */
  readonly newId: number | null;
  /** --wait-ms: how long each step may take; null: the replica's default (30 s). */
  readonly waitMs: number | null;
}

const USAGE: Readonly<Record<MemberOp, string>> = {
  list: "member list",
  add: "member add ID HOST:PORT",
  promote: "member promote ID",
  remove: "member remove ID",
  replace: "member replace OLD_ID NEW_ID HOST:PORT",
};

function invalid(message: string): ApusError {
  return new ApusError("ERR_INVALID_CONFIG", message);
}

function replicaId(text: string | undefined, what: string, op: MemberOp): number {
  const id = Number(text);
  if (text === undefined || !/^[0-9]+$/.test(text) || id < 1 || id > 31)
    throw invalid(`${USAGE[op]}: ${what} must be a replica id, 1..31, got "${text ?? ""}"`);
  return id;
}

function address(text: string | undefined, op: MemberOp): string {
  if (text === undefined || parsePeerAddress(text) === null)
    throw invalid(
      `${USAGE[op]}: HOST:PORT is the new replica's peer address (its --peers entry), got "${text ?? ""}"`,
    );
  return text;
}

/** `apus member OP ARGS…` (after "member"). */
export function parseMemberCommand(rest: readonly string[], waitMs: number | null): MemberCommand {
  const [opText, ...args] = rest;
  const ops = Object.keys(USAGE) as MemberOp[];
  if (opText === undefined || !ops.includes(opText as MemberOp))
    throw invalid(
      `unknown command "member ${opText ?? ""}": use ${ops.map((op) => `member ${op}`).join(", ")}`,
    );
  const op = opText as MemberOp;
  const counts: Readonly<Record<MemberOp, number>> = {
    list: 0,
    add: 2,
    promote: 1,
    remove: 1,
    replace: 3,
  };
  if (args.length !== counts[op])
    throw invalid(
      `${USAGE[op]}: expected ${counts[op]} argument${counts[op] === 1 ? "" : "s"}, got ${args.length}`,
    );
  switch (op) {
    case "list":
      return { op, id: 0, address: null, newId: null, waitMs };
    case "add":
      return {
        op,
        id: replicaId(args[0], "ID", op),
        address: address(args[1], op),
        newId: null,
        waitMs,
      };
    case "promote":
    case "remove":
      return { op, id: replicaId(args[0], "ID", op), address: null, newId: null, waitMs };
    case "replace": {
      const id = replicaId(args[0], "OLD_ID", op);
      const newId = replicaId(args[1], "NEW_ID", op);
      if (newId === id)
        throw invalid(
          `${USAGE[op]}: NEW_ID must differ from OLD_ID (ids are never reused for another machine)`,
        );
      return { op, id, address: address(args[2], op), newId, waitMs };
    }
  }
}

/** The JSON body of POST /members for `command`. */
export function memberRequestBody(command: MemberCommand): Record<string, unknown> {
  return {
    op: command.op,
    id: command.id,
    ...(command.address === null ? {} : { address: command.address }),
    ...(command.newId === null ? {} : { new_id: command.newId }),
    ...(command.waitMs === null ? {} : { wait_ms: command.waitMs }),
  };
}

/** A configuration as lines: one per member, with the leader's view of its progress. */
export function formatConfiguration(view: MembersView): string {
  const config: ConfigurationView | null = view.latest;
  if (config === null)
    return `replica ${view.id} knows no configuration yet (it joined and has not heard a leader)`;
  const header = ["id", "role", "address", "chosen", "lag"];
  const rows = config.members.map((m) => [
    String(m.id) + (m.id === view.leader ? "*" : ""),
    m.role,
    m.address,
    m.chosenSlot === undefined ? "-" : String(m.chosenSlot),
    m.lagSlots === undefined ? "-" : String(m.lagSlots),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const governs =
    view.current !== null && view.current.slot === config.slot
      ? `governing since slot ${config.effectiveFrom}`
      : `chosen, governing from slot ${config.effectiveFrom} (commit index ${view.commitIndex})`;
  const voters = config.members.filter((m) => m.role === "voter").length;
  return [
    line(header),
    ...rows.map(line),
    `${voters} voter${voters === 1 ? "" : "s"}, ${config.members.length - voters} learner${config.members.length - voters === 1 ? "" : "s"}; configuration of slot ${config.slot} (${config.slot === 0 ? "the bootstrap one" : "a change"}), ${governs}; * leads`,
  ].join("\n");
}

/** One line per step of a change's answer, then the outcome. */
export function formatChange(outcome: MemberChangeOutcome): string {
  const lines = outcome.steps.map((step) => {
    const what =
      step.step === "catch-up"
        ? `replica ${step.id} caught up${step.lagSlots === undefined ? "" : ` (lag ${step.lagSlots} slots)`}`
        : `${step.step} replica ${step.id}${step.slot === undefined ? "" : `: chosen in slot ${step.slot}, governing from slot ${step.effectiveFrom}`}`;
    return `${step.ok ? "ok  " : "FAIL"} ${what} (${step.elapsedMs} ms)`;
  });
  const end =
    outcome.outcome === "done"
      ? `done in ${outcome.elapsedMs} ms`
      : `${outcome.outcome}: ${outcome.detail}`;
  return [...lines, end].join("\n");
}

import { parsePeers } from "../runtime/config.ts";
import type { ReplicaStatus } from "../runtime/thread-contracts.ts";
import type { AdminAddress } from "./admin-client.ts";

/**
 * Pure formatting of replicas' /status answers: the `apus status` table, its summary line, and
 * the leader the cluster launcher reports. No I/O here, so tests call it with plain objects.
 */

/** One replica as the CLI saw it: its /status answer, or why there was none. */
export type StatusRow =
  | { readonly admin: string; readonly status: ReplicaStatus }
  | { readonly admin: string; readonly down: string };

export interface ClusterSummary {
  /** Replicas in the cluster: the addresses asked, or more if an answer names a higher id. */
  readonly clusterSize: number;
  readonly answered: number;
  /** Replicas that must be up for the cluster to make progress: floor(size / 2) + 1. */
  readonly majority: number;
  /** Ids of the replicas that say they lead, highest ballot first. */
  readonly leaders: readonly number[];
  /** Highest commit index among the answers; 0 when none answered. */
  readonly highestCommit: number;
}

/** "host:port,host:port"; null when any part is not host:port. */
export function parseAdminList(text: string): AdminAddress[] | null {
  return parsePeers(text);
}

/**
 * Checks the fields the CLI and launcher read, so that a foreign server on the admin port is
 * reported as such rather than printed as `undefined`.
 */
export function asReplicaStatus(value: unknown): ReplicaStatus | null {
  if (value === null || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  const numbers = ["id", "commitIndex", "appliedIndex", "pendingRequests", "keys", "uptimeMs"];
  for (const key of numbers) if (typeof v[key] !== "number") return null;
  if (!["leader", "follower", "candidate", "recovering"].includes(v.role as string)) return null;
  if (typeof v.ballot !== "string") return null;
  if (v.leader !== null && typeof v.leader !== "number") return null;
  return value as ReplicaStatus;
}

/** Ballots print as "round.replica" ("-" for none); compares them as the core orders them. */
export function compareBallotText(a: string, b: string): number {
  const parse = (text: string): [number, number] => {
    const match = /^(\d+)\.(\d+)$/.exec(text);
    return match === null ? [-1, -1] : [Number(match[1]), Number(match[2])];
  };
  const [roundA, idA] = parse(a);
  const [roundB, idB] = parse(b);
  return roundA !== roundB ? roundA - roundB : idA - idB;
}

/**
 * Replicas that say they lead, highest ballot first. Two can say so for a moment: a deposed
 * leader that has not yet heard of the higher ballot. The first is the real one.
 */
export function findLeaders(statuses: readonly ReplicaStatus[]): ReplicaStatus[] {
  return statuses
    .filter((s) => s.role === "leader")
    .sort((a, b) => compareBallotText(b.ballot, a.ballot));
}

export function summarizeCluster(rows: readonly StatusRow[]): ClusterSummary {
  const statuses = rows.flatMap((row) => ("status" in row ? [row.status] : []));
  let clusterSize = rows.length;
  for (const status of statuses) {
    clusterSize = Math.max(clusterSize, status.id);
    for (const peer of status.peers ?? []) clusterSize = Math.max(clusterSize, peer.id);
  }
  let answered = statuses.length;
  // The voters of the configuration that governs (as the most advanced replica knows it): ids are
  // stable and need not run 1..N, and learners or removed replicas count toward no majority.
  const governing = statuses
    .filter((s) => s.members?.current != null)
    .sort((a, b) => b.commitIndex - a.commitIndex)[0]?.members?.current;
  if (governing != null) {
    const voters = new Set(governing.members.filter((m) => m.role === "voter").map((m) => m.id));
    clusterSize = voters.size;
    answered = statuses.filter((s) => voters.has(s.id)).length;
  }
  return {
    clusterSize,
    answered,
    majority: Math.floor(clusterSize / 2) + 1,
    leaders: findLeaders(statuses).map((s) => s.id),
    highestCommit: statuses.reduce((max, s) => Math.max(max, s.commitIndex), 0),
  };
}

/** Healthy: some replica leads and a majority answers. `apus status` exits 0 exactly then. */
export function isHealthy(summary: ClusterSummary): boolean {
  return summary.leaders.length > 0 && summary.answered >= summary.majority;
}

export function formatSummary(summary: ClusterSummary): string {
  const { leaders, answered, clusterSize, majority } = summary;
  const leaderText =
    leaders.length === 1
      ? `one leader: replica ${leaders[0]}`
      : leaders.length === 0
        ? "no leader (an election may be in progress, or too few replicas are up)"
        : `${leaders.length} replicas say they lead (${leaders.join(", ")}): replica ${leaders[0]} has the highest ballot; the others have not heard of it yet`;
  const majorityText =
    answered >= majority
      ? `majority up: ${answered} of ${clusterSize} answer (${majority} needed)`
      : `NO majority: ${answered} of ${clusterSize} answer, ${majority} needed to commit anything`;
  return `${leaderText} · ${majorityText}`;
}

/** "45s", "12m 03s", "3h 02m", "2d 04h". */
export function formatUptime(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, "0");
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${pad(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${pad(minutes % 60)}m`;
  return `${Math.floor(hours / 24)}d ${pad(hours % 24)}h`;
}

const HEADERS = [
  "admin",
  "id",
  "role",
  "leader",
  "ballot",
  "commit",
  "applied",
  "lag",
  "pending",
  "keys",
  "uptime",
] as const;
/** Columns printed right-aligned (numbers). */
const RIGHT_ALIGNED = new Set(["id", "leader", "commit", "applied", "lag", "pending", "keys"]);

function rowCells(status: ReplicaStatus, admin: string, highestCommit: number): string[] {
  return [
    admin,
    String(status.id),
    status.role,
    status.leader === null ? "-" : String(status.leader),
    status.ballot,
    String(status.commitIndex),
    String(status.appliedIndex),
    String(Math.max(0, highestCommit - status.appliedIndex)),
    String(status.pendingRequests),
    String(status.keys),
    formatUptime(status.uptimeMs),
  ];
}

/**
 * The `apus status` table, one row per admin address in the order given. `lag` is how many
 * slots this replica's applied index trails the highest commit index of any answer. A replica
 * without an answer is a row "down (reason)".
 */
export function formatStatusTable(rows: readonly StatusRow[]): string {
  const { highestCommit } = summarizeCluster(rows);
  const table: string[][] = rows.map((row) =>
    "status" in row ? rowCells(row.status, row.admin, highestCommit) : [row.admin, "-"],
  );
  const widths = HEADERS.map((header, column) =>
    Math.max(
      header.length,
      ...table.filter((cells) => cells.length === HEADERS.length).map((c) => c[column]!.length),
    ),
  );
  widths[0] = Math.max(widths[0]!, ...table.map((cells) => cells[0]!.length));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        RIGHT_ALIGNED.has(HEADERS[column]!)
          ? cell.padStart(widths[column]!)
          : cell.padEnd(widths[column]!),
      )
      .join("  ")
      .trimEnd();
  const lines = [line(HEADERS)];
  rows.forEach((row, index) => {
    const cells = table[index]!;
    lines.push("status" in row ? line(cells) : `${line(cells)}  down (${row.down})`);
  });
  return lines.join("\n");
}

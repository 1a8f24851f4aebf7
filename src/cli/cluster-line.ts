import type { ReplicaStatus } from "../runtime/thread-contracts.ts";
import { findLeaders } from "./status-table.ts";

/**
 * The cluster launcher's live status line, pure:
 *   leader 2 · commit 1532 · r1 follower ✓ r2 leader ✓ r3 down (restarting)
 * and the sentences it prints when a replica exits.
 */

/** What the launcher knows of one replica. */
export type ReplicaState =
  /** Spawned; /status has not answered yet (recovering its WAL, or electing). */
  | { readonly kind: "starting" }
  | { readonly kind: "up"; readonly status: ReplicaStatus }
  /** Running, answered /status before, does not now. */
  | { readonly kind: "unreachable"; readonly reason: string }
  /** Exited; will be started again in a moment. */
  | { readonly kind: "restarting" }
  /** Exited and left down: it failed to start too often, or --no-restart. */
  | { readonly kind: "down"; readonly why: "failed" | "no-restart" };

export interface ReplicaView {
  readonly id: number;
  readonly state: ReplicaState;
}

/** A follower whose applied index trails the highest commit by more than this is "catching up". */
export const CATCHING_UP_SLOTS_MIN = 100;

export function highestCommit(views: readonly ReplicaView[]): number {
  let max = 0;
  for (const view of views)
    if (view.state.kind === "up") max = Math.max(max, view.state.status.commitIndex);
  return max;
}

/** The replica that leads (highest ballot among those that say so), or null. */
export function leaderOf(views: readonly ReplicaView[]): ReplicaStatus | null {
  const statuses = views.flatMap((v) => (v.state.kind === "up" ? [v.state.status] : []));
  return findLeaders(statuses)[0] ?? null;
}

function replicaCell(view: ReplicaView, commit: number, counters: boolean): string {
  const state = view.state;
  switch (state.kind) {
    case "starting":
      return `r${view.id} starting…`;
    case "unreachable":
      return `r${view.id} not answering`;
    case "restarting":
      return `r${view.id} down (restarting)`;
    case "down":
      return `r${view.id} down${state.why === "failed" ? " (failed to start)" : ""}`;
    case "up": {
      const behind = commit - state.status.appliedIndex;
      if (behind <= CATCHING_UP_SLOTS_MIN) return `r${view.id} ${state.status.role} ✓`;
      return counters
        ? `r${view.id} ${state.status.role} catching up (${behind} behind)`
        : `r${view.id} ${state.status.role} catching up`;
    }
  }
}

/**
 * The live line. With `counters` false the commit index and lag are left out: what remains
 * changes only when a role or a replica's state does, which is when a non-TTY prints it.
 */
export function formatClusterLine(views: readonly ReplicaView[], counters = true): string {
  const leader = leaderOf(views);
  const commit = highestCommit(views);
  const head = leader === null ? "no leader" : `leader ${leader.id}`;
  const parts = counters ? [head, `commit ${commit}`] : [head];
  parts.push(views.map((view) => replicaCell(view, commit, counters)).join(" "));
  return parts.join(" · ");
}

/** "replica 2 (pid 4242) was killed by SIGKILL" / "… exited with code 1". */
export function describeExit(
  id: number,
  pid: number | null,
  code: number | null,
  signal: string | null,
): string {
  const who = pid === null ? `replica ${id}` : `replica ${id} (pid ${pid})`;
  if (signal !== null) return `${who} was killed by ${signal}`;
  if (code === null) return `${who} could not be started`;
  return code === 0 ? `${who} exited (code 0)` : `${who} exited with code ${code}`;
}

/** Cut a line to the terminal's width so that rewriting it in place with \r never wraps. */
export function fitToWidth(line: string, columns: number | undefined): string {
  if (columns === undefined || columns <= 1 || line.length < columns) return line;
  return `${line.slice(0, columns - 2)}…`;
}

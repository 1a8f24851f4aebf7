/**
 * Planted bugs for the chaos run (`--plant …`): operator mistakes that no consensus protocol
 * survives, to show the checkers catch lost acknowledged writes end to end. All three make one
 * replica V forget votes it cast:
 *
 * - stale-store: V is killed and its data directory copied aside; later it is restarted on that
 *   OLD copy.
 * - wiped-new: V's data directory is wiped and V restarted with --initial-cluster-state new (as if
 *   the cluster were being created: it votes at once with nothing remembered).
 * - wiped-existing: the same wipe, restarted with --initial-cluster-state existing, the right way:
 *   V must recover from every other replica before it votes. NOT a bug: the run must report no
 *   anomaly (the control for the other two).
 *
 * The schedule is targeted, not random: while the replicas outside a bare majority
 * {leader, V, …} are down, writes are acknowledged by that majority; then V forgets, the rest of
 * that majority is killed, and V with the replicas that missed those writes is a majority that
 * knows nothing of them: acknowledged writes vanish, and reads go back in time. Each step waits
 * for the state it needs, so the checkers see an anomaly on essentially every run.
 */
import { cpSync, renameSync, rmSync } from "node:fs";
import { type ChaosCluster, sleep } from "./chaos-cluster.ts";
import type { History } from "./history.ts";

export const PLANTED_BUGS = ["stale-store", "wiped-new", "wiped-existing"] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

/** The plants that are not bugs: a run with them must find no anomaly. */
export const SAFE_PLANTS: ReadonlySet<PlantedBug> = new Set(["wiped-existing"]);

const LEADER_WAIT_MS = 20_000;
/** How long the bare majority acknowledges writes that V will forget. */
const FORGOTTEN_WINDOW_MS = 3000;
/** How long the majority that forgot them serves clients before the others return. */
const AMNESIA_WINDOW_MS = 5000;

export async function plantAmnesia(
  plant: PlantedBug,
  cluster: ChaosCluster,
  history: History,
): Promise<void> {
  const leader = await cluster.waitForLeader(LEADER_WAIT_MS);
  if (leader === null) throw new Error(`planted ${plant}: no leader to start from`);
  const others = cluster.ids.filter((id) => id !== leader);
  const victim = others[0]!;
  const acking = [leader, ...others.slice(1, cluster.majority - 1), victim];
  const absent = cluster.ids.filter((id) => !acking.includes(id));
  const dir = cluster.dataDir(victim);
  const old = `${dir}.old`;

  if (plant === "stale-store") {
    await cluster.kill(victim);
    cpSync(dir, old, { recursive: true });
    cluster.start(victim);
    history.note(`plant ${plant}: copied replica ${victim}'s data directory aside, restarted it`);
    if ((await cluster.waitForConvergence(LEADER_WAIT_MS)).includes(victim))
      throw new Error(`planted ${plant}: replica ${victim} did not catch up`);
  }

  await Promise.all(absent.map((id) => cluster.kill(id)));
  history.note(`plant ${plant}: kill -9 {${absent}}: writes now need {${acking}}`);
  await sleep(FORGOTTEN_WINDOW_MS);

  await Promise.all(acking.map((id) => cluster.kill(id)));
  rmSync(dir, { recursive: true, force: true });
  if (plant === "stale-store") {
    renameSync(old, dir);
    cluster.start(victim);
  } else {
    cluster.start(victim, plant === "wiped-new" ? "new" : "existing");
  }
  for (const id of absent) cluster.start(id);
  const how =
    plant === "stale-store"
      ? "on its OLD data directory"
      : `with its data directory wiped and --initial-cluster-state ${plant === "wiped-new" ? "new" : "existing"}`;
  history.note(
    `plant ${plant}: kill -9 {${acking}}, replica ${victim} restarted ${how}, ` +
      `{${absent}} restarted: {${[victim, ...absent]}} is a majority`,
  );
  await sleep(AMNESIA_WINDOW_MS);
  for (const id of acking) if (cluster.state(id) === "dead") cluster.start(id);
  history.note(`plant ${plant}: {${acking.filter((id) => id !== victim)}} restarted`);
}

/**
 * A planted bug for the chaos run (`--plant stale-store`): an operator's mistake that no
 * consensus protocol survives, to show the checkers catch lost acknowledged writes end to end.
 * A replica V is killed and its data directory copied aside; V rejoins, and while the replicas
 * outside a bare majority {leader, V, …} are down, writes are acknowledged by that majority. Then
 * V's directory is swapped back for the OLD copy (it forgets promises and accepts it made), the
 * rest of that majority is killed, and V with the replicas that missed those writes forms a new
 * majority that knows nothing of them: acknowledged writes vanish, and reads go back in time.
 *
 * Targeted, not random: each step waits for the state it needs, so the checkers see an anomaly
 * on essentially every run.
 */
import { cpSync, renameSync, rmSync } from "node:fs";
import { type ChaosCluster, sleep } from "./chaos-cluster.ts";
import type { History } from "./history.ts";

export const PLANTED_BUGS = ["stale-store"] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

const LEADER_WAIT_MS = 20_000;
/** How long the bare majority acknowledges writes that V will forget. */
const FORGOTTEN_WINDOW_MS = 3000;
/** How long the majority that forgot them serves clients before the others return. */
const AMNESIA_WINDOW_MS = 5000;

export async function plantStaleStore(cluster: ChaosCluster, history: History): Promise<void> {
  const leader = await cluster.waitForLeader(LEADER_WAIT_MS);
  if (leader === null) throw new Error("planted stale-store: no leader to start from");
  const others = cluster.ids.filter((id) => id !== leader);
  const victim = others[0]!;
  const acking = [leader, ...others.slice(1, cluster.majority - 1), victim];
  const absent = cluster.ids.filter((id) => !acking.includes(id));
  const dir = cluster.dataDir(victim);
  const old = `${dir}.old`;

  await cluster.kill(victim);
  cpSync(dir, old, { recursive: true });
  cluster.start(victim);
  history.note(`plant stale-store: copied replica ${victim}'s data directory aside, restarted it`);
  if ((await cluster.waitForConvergence(LEADER_WAIT_MS)).includes(victim))
    throw new Error(`planted stale-store: replica ${victim} did not catch up`);

  await Promise.all(absent.map((id) => cluster.kill(id)));
  history.note(`plant stale-store: kill -9 {${absent}}: writes now need {${acking}}`);
  await sleep(FORGOTTEN_WINDOW_MS);

  await Promise.all(acking.map((id) => cluster.kill(id)));
  rmSync(dir, { recursive: true, force: true });
  renameSync(old, dir);
  cluster.start(victim);
  for (const id of absent) cluster.start(id);
  history.note(
    `plant stale-store: kill -9 {${acking}}, replica ${victim} restarted on its OLD data ` +
      `directory, {${absent}} restarted: {${[victim, ...absent]}} is a majority`,
  );
  await sleep(AMNESIA_WINDOW_MS);
  for (const id of acking) if (cluster.state(id) === "dead") cluster.start(id);
  history.note(`plant stale-store: {${acking.filter((id) => id !== victim)}} restarted`);
}

/**
 * A checker is trusted only once it has been seen failing. The planted bugs make one replica
 * forget votes it cast after it helped acknowledge writes that the replicas it then forms a
 * majority with never saw: restarted on an OLD copy of its data directory (stale-store), or
 * wiped and restarted with --initial-cluster-state new (wiped-new). Acknowledged writes vanish and
 * reads go back in time; the chaos run must say so. The control, the same wipe restarted with
 * --initial-cluster-state existing (recover from every other replica before voting), must not.
 */
import { describe, expect, it } from "vitest";
import type { PlantedBug } from "../../src/chaos/planted-amnesia.ts";
import { formatFailure, formatSummary } from "../../src/chaos/report.ts";
import { runChaos } from "../../src/chaos/run.ts";

function plantedRun(plant: PlantedBug, seed: number) {
  return runChaos({
    seconds: 15,
    replicas: 3,
    seed,
    durability: "fsync",
    plant,
    clients: 8,
    subnet: 2, // another test file may run at the same time
    progress: null,
  });
}

describe("the chaos checkers catch a planted bug", () => {
  for (const plant of ["stale-store", "wiped-new"] as const) {
    it(`reports lost writes and non-linearizable reads (${plant})`, {
      timeout: 180_000,
    }, async () => {
      const result = await plantedRun(plant, 7);
      const report = formatFailure(result);
      console.log(report.slice(0, 4000));
      const kinds = new Set(result.anomalies.map((a) => a.kind));
      expect(kinds.has("lost-write") || kinds.has("linearizability"), report).toBe(true);
      expect(report).toContain("npm run chaos -- --check");
      expect(report).toContain("seed:     7");
    });
  }

  it("reports nothing when the wiped replica recovers before it votes (wiped-existing)", {
    timeout: 180_000,
  }, async () => {
    const result = await plantedRun("wiped-existing", 7);
    const report = result.anomalies.length === 0 ? formatSummary(result) : formatFailure(result);
    console.log(report);
    expect(result.anomalies, report).toEqual([]);
  });
});

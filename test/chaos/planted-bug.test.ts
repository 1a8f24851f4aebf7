/**
 * A checker is trusted only once it has been seen failing. The planted bug: a replica restarted
 * on an OLD copy of its data directory, after it helped acknowledge writes that the replicas it
 * then forms a majority with never saw. Acknowledged writes vanish and reads go back in time; the
 * chaos run must say so.
 */
import { describe, expect, it } from "vitest";
import { formatFailure } from "../../src/chaos/report.ts";
import { runChaos } from "../../src/chaos/run.ts";

describe("the chaos checkers catch a planted bug", () => {
  it("reports lost writes and non-linearizable reads after a replica restarts on a stale data directory", {
    timeout: 180_000,
  }, async () => {
    const result = await runChaos({
      seconds: 15,
      replicas: 3,
      seed: 7,
      durability: "fsync",
      plant: "stale-store",
      clients: 8,
      progress: null,
    });
    const report = formatFailure(result);
    console.log(report.slice(0, 4000));
    const kinds = new Set(result.anomalies.map((a) => a.kind));
    expect(kinds.has("lost-write") || kinds.has("linearizability"), report).toBe(true);
    expect(report).toContain("npm run chaos -- --check");
    expect(report).toContain(`seed:     7`);
  });
});

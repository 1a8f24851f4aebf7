/**
 * The fault-injection test, short (CI) form: 3 real replicas in fsync mode, 10 clients, 45 s of
 * partitions, packet loss, kills, pauses and restarts on a seeded schedule (network faults need
 * root and nft; without them only process faults run), then the checkers. The seed is printed;
 * `npm run chaos -- --seed N --seconds 45` runs the same schedule again.
 */
import { describe, expect, it } from "vitest";
import { formatFailure, formatSummary } from "../../src/chaos/report.ts";
import { runChaos } from "../../src/chaos/run.ts";

const SECONDS = 45;

describe("fault injection with a linearizability checker", () => {
  it(`finds no anomaly in ${SECONDS} s of faults (fsync, 3 replicas)`, {
    timeout: 240_000,
  }, async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32));
    console.log(`chaos seed ${seed}`);
    const result = await runChaos({
      seconds: SECONDS,
      replicas: 3,
      seed,
      durability: "fsync",
      plant: null,
      clients: 10,
      subnet: 1, // another test file may run at the same time
      progress: null,
    });
    const report = result.anomalies.length === 0 ? formatSummary(result) : formatFailure(result);
    console.log(report);
    expect(result.anomalies, report).toEqual([]);
    expect(result.opCounts.ok).toBeGreaterThan(1000);
    expect([...result.faults.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(3);
  });
});

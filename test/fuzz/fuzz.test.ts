/**
 * The bounded fuzz run of CI: every target (test/fuzz/targets) for APUS_FUZZ_RUNS inputs (times
 * its ciShare) from a fixed seed, so a CI run is deterministic and any failure replays. The long
 * run is `npm run fuzz -- --runs 1000000` (test/fuzz/main.ts); both run the same targets.
 *
 *   APUS_FUZZ_RUNS=5000 npx vitest run test/fuzz/          more inputs
 *   APUS_FUZZ_SEED=123 npx vitest run test/fuzz/           other inputs
 */
import { afterAll, describe, it } from "vitest";
import { replayCommand } from "./replay.ts";
import { FUZZ_TARGETS } from "./targets/index.ts";

const RUNS = Number(process.env.APUS_FUZZ_RUNS ?? 3000);
const SEED = Number(process.env.APUS_FUZZ_SEED ?? 20261129);
const PATH = process.env.APUS_FUZZ_PATH;

describe(`fuzz targets (APUS_FUZZ_RUNS=${RUNS}, APUS_FUZZ_SEED=${SEED})`, () => {
  afterAll(async () => {
    for (const target of FUZZ_TARGETS) await target.cleanup();
  });

  for (const target of FUZZ_TARGETS) {
    it(`${target.name}: ${target.summary[0]}`, async () => {
      const numRuns = Math.max(1, Math.round(RUNS * target.ciShare));
      const outcome = await target.run({
        numRuns,
        seed: SEED,
        ...(PATH === undefined ? {} : { path: PATH }),
      });
      if (outcome.failed) {
        throw new Error(`${outcome.report}\n\nReplay:\n  ${replayCommand(outcome).join("\n  ")}\n`);
      }
    });
  }
});

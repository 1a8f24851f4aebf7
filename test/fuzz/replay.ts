/** How to run one failing fuzz input again, printed with every failure. */
import type { FuzzOutcome } from "./target.ts";

/** Commands that replay `outcome`'s counterexample (and its shrinks) from its seed and path. */
export function replayCommand(outcome: FuzzOutcome): string[] {
  const path = outcome.path === null ? "" : ` --path '${outcome.path}'`;
  const env = outcome.path === null ? "" : ` APUS_FUZZ_PATH='${outcome.path}'`;
  return [
    `npm run fuzz -- --target ${outcome.name} --seed ${outcome.seed}${path}`,
    `APUS_FUZZ_SEED=${outcome.seed}${env} npx vitest run test/fuzz/fuzz.test.ts -t '${outcome.name}'`,
  ];
}

import { parseArgs } from "node:util";
import { REPLICA_COUNT_MAX } from "../limits.ts";
import { PLANTED_BUGS, type PlantedBug } from "./planted-bugs.ts";
import { describeScenario, scenarioFromSeed } from "./scenario.ts";
import { formatFailure, runScenario } from "./simulator.ts";

const USAGE = `Usage: npm run sim -- [options]

Runs the deterministic Multi-Paxos simulator. Each seed fixes the whole run: cluster size,
faults (loss, duplication, reordering, partitions, crashes), clients and timing.

  --seed S         run one seed (replay a failure)
  --seeds K        run K seeds starting at --from (default 1000)
  --from S         first seed of a range (default 1)
  --replicas N     force the cluster size (1..9 are the tested sizes)
  --bug NAME       plant a bug to see the checker catch it: ${PLANTED_BUGS.join(", ")}
  --trace          print every delivered message and event (use with --seed)
  --help           show this text
`;

function main(): number {
  const { values } = parseArgs({
    options: {
      seed: { type: "string" },
      seeds: { type: "string" },
      from: { type: "string" },
      replicas: { type: "string" },
      bug: { type: "string" },
      trace: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const integer = (name: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0)
      throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
    return value;
  };
  if (values.bug !== undefined && !(PLANTED_BUGS as readonly string[]).includes(values.bug)) {
    throw new Error(`--bug must be one of ${PLANTED_BUGS.join(", ")}, got "${values.bug}"`);
  }
  const bug = values.bug as PlantedBug | undefined;
  const replicas =
    values.replicas === undefined ? undefined : integer("replicas", values.replicas, 3);
  if (replicas !== undefined && (replicas < 1 || replicas > REPLICA_COUNT_MAX))
    throw new Error(`--replicas must be 1..${REPLICA_COUNT_MAX}`);

  if (values.seed !== undefined) {
    const scenario = scenarioFromSeed(integer("seed", values.seed, 1), bug, replicas);
    process.stdout.write(`${describeScenario(scenario)}\n`);
    const trace = values.trace ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
    const result = runScenario(scenario, trace);
    if (!result.ok) {
      process.stdout.write(`FAIL ${formatFailure(result)}\n`);
      return 1;
    }
    process.stdout.write(
      `ok: ${result.ticks} ticks, ${result.chosenSlots} slots chosen, ${result.acked} requests acknowledged, ` +
        `${result.elections} elections, ${result.crashes} crashes, ${result.partitions} partitions, ${result.packetsSent} packets\n` +
        `transfers: ${result.transfers.started} started, ${result.transfers.completed} completed, ${result.transfers.timedOut} timed out; ` +
        `${result.transfers.campaigns} TimeoutNow campaigns, ${result.transfers.campaigns - result.transfers.campaignsWon} failed their first Phase 1\n` +
        `membership: ${result.membershipChanges} changes queued\n` +
        `requests: ${result.notExecuted} not executed (CLUSTERDOWN), ${result.timedOut} timed out, ${result.busy} busy, ` +
        `${result.lost} lost with their origin; ${result.forwarded} forwarded, ${result.refused} refused, ` +
        `${result.resent} sent again, ${result.duplicates} copies skipped by the sessions; ` +
        `${result.expiredParked} expired parked behind a refusal from the replica still taken for leader\n`,
    );
    return 0;
  }

  const count = integer("seeds", values.seeds, 1000);
  const from = integer("from", values.from, 1);
  const started = Date.now();
  let ticks = 0;
  let slots = 0;
  let changes = 0;
  const transfers = { started: 0, completed: 0, timedOut: 0, campaigns: 0, campaignsWon: 0 };
  for (let seed = from; seed < from + count; seed++) {
    const result = runScenario(scenarioFromSeed(seed, bug, replicas));
    ticks += result.ticks;
    slots += result.chosenSlots;
    changes += result.membershipChanges;
    transfers.started += result.transfers.started;
    transfers.completed += result.transfers.completed;
    transfers.timedOut += result.transfers.timedOut;
    transfers.campaigns += result.transfers.campaigns;
    transfers.campaignsWon += result.transfers.campaignsWon;
    if (!result.ok) {
      process.stdout.write(`FAIL ${formatFailure(result)}\n`);
      return 1;
    }
    const done = seed - from + 1;
    if (done % 500 === 0 || done === count) {
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(
        `${done}/${count} seeds ok (${ticks} ticks, ${slots} slots, ${changes} membership changes; transfers ${transfers.started} started, ` +
          `${transfers.completed} completed, ${transfers.timedOut} timed out; ${transfers.campaigns} TimeoutNow ` +
          `campaigns, ${transfers.campaigns - transfers.campaignsWon} failed their first Phase 1) in ${seconds.toFixed(1)} s, ` +
          `~${((seconds / done) * (count - done)).toFixed(0)} s left\n`,
      );
    }
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (error) {
  process.stderr.write(`sim: ${(error as Error).message}\n`);
  process.exitCode = 2;
}

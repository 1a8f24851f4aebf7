/**
 * `npm run chaos -- [options]`: the fault-injection test with a linearizability checker (see the
 * README, "Fault-injection test"). Exit status 0: no anomaly (or, with a planted bug, anomalies:
 * it was caught); 1: anomalies (printed, with the seed, the history file and the commands that
 * re-check and re-run it), or a planted bug not caught; 2: bad arguments or the run could not be
 * carried out.
 */
import { parseArgs } from "node:util";
import { REPLICAS_MAX, SUBNET_MAX } from "./chaos-cluster.ts";
import { checkHistory } from "./check.ts";
import { readHistory } from "./history.ts";
import { PLANTED_BUGS, type PlantedBug, SAFE_PLANTS } from "./planted-amnesia.ts";
import { checkCommand, formatAnomalies, formatFailure, formatSummary } from "./report.ts";
import { CHAOS_DEFAULTS, type ChaosOptions, FINAL_READS_PHASE, runChaos } from "./run.ts";

const HELP = `npm run chaos -- [options]

Starts real replicas (node dist/replica.js) on 127.0.0.11, .12, …, runs concurrent clients
(SET/GET on registers, RPUSH/LRANGE on lists) while a seeded nemesis partitions the network
(nftables; needs root), drops packets, kills (-9), pauses and restarts replicas; then heals,
reads everything and checks linearizability (registers), list consistency, lost writes and
availability after the heal.

  --seconds N             run time (default ${CHAOS_DEFAULTS.seconds})
  --minutes N             run time in minutes (for long offline runs)
  --replicas 3|5          replicas (default ${CHAOS_DEFAULTS.replicas})
  --seed N                nemesis and client seed (default: random, printed)
  --durability fsync|memory  (default ${CHAOS_DEFAULTS.durability})
  --clients N             concurrent clients (default ${CHAOS_DEFAULTS.clients})
  --subnet N              replicas listen on 127.0.N.11, .12, … (default ${CHAOS_DEFAULTS.subnet}); runs at
                          the same time need different ones (faults are rules on addresses)
  --plant stale-store     planted bug: restart a replica on an OLD copy of its data directory
  --plant wiped-new       planted bug: wipe a replica's data directory, restart it with
                          --initial-cluster-state new (both: the checkers must report anomalies)
  --plant wiped-existing  the same wipe done right (--initial-cluster-state existing): must
                          report no anomaly
  --check FILE            only check a history file of an earlier run
  --help
`;

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n`);
  process.exit(2);
}

function intOption(
  text: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    fail(`--${name} must be an integer from ${min} to ${max}, not ${text}`);
  return n;
}

function parseOptions(): { options: ChaosOptions; check: string | null } {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      minutes: { type: "string" },
      replicas: { type: "string" },
      seed: { type: "string" },
      durability: { type: "string" },
      clients: { type: "string" },
      subnet: { type: "string" },
      plant: { type: "string" },
      check: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const seconds = intOption(values.seconds, "seconds", 1, 86_400);
  const minutes = intOption(values.minutes, "minutes", 1, 1440);
  if (seconds !== undefined && minutes !== undefined) fail("give --seconds or --minutes, not both");
  const durability = values.durability ?? CHAOS_DEFAULTS.durability;
  if (durability !== "fsync" && durability !== "memory")
    fail(`--durability must be fsync or memory, not ${durability}`);
  const plant = values.plant ?? null;
  if (plant !== null && !(PLANTED_BUGS as readonly string[]).includes(plant))
    fail(`--plant must be one of ${PLANTED_BUGS.join(", ")}, not ${plant}`);
  if (plant !== null && durability !== "fsync") fail("--plant needs --durability fsync");
  return {
    check: values.check ?? null,
    options: {
      seconds: minutes !== undefined ? minutes * 60 : (seconds ?? CHAOS_DEFAULTS.seconds),
      replicas: intOption(values.replicas, "replicas", 3, REPLICAS_MAX) ?? CHAOS_DEFAULTS.replicas,
      seed: intOption(values.seed, "seed", 0, 2 ** 32 - 1) ?? Math.floor(Math.random() * 2 ** 32),
      durability,
      plant: plant as PlantedBug | null,
      clients: intOption(values.clients, "clients", 1, 200) ?? CHAOS_DEFAULTS.clients,
      subnet: intOption(values.subnet, "subnet", 0, SUBNET_MAX) ?? CHAOS_DEFAULTS.subnet,
      progress: (line) => process.stderr.write(`${line}\n`),
    },
  };
}

async function main(): Promise<void> {
  const { options, check } = parseOptions();
  if (check !== null) {
    const { operations, events } = readHistory(check);
    const result = checkHistory(operations);
    if (!events.some((e) => e.type === "meta" && e.data.phase === FINAL_READS_PHASE))
      process.stdout.write(
        "warning: this run stopped before its final reads: a list's last read stands in for its " +
          "final state, so appends after that read are reported lost\n",
      );
    process.stdout.write(
      `${operations.length} operations, checked in ${result.checkMs.toFixed(0)} ms\n`,
    );
    if (result.anomalies.length === 0) {
      process.stdout.write("no anomaly\n");
      return;
    }
    process.stdout.write(
      `ANOMALIES: ${result.anomalies.length}\n\n${formatAnomalies(result.anomalies, null)}\n`,
    );
    process.stdout.write(`\n${checkCommand(check)}\n`);
    process.exit(1);
  }
  process.stderr.write(`chaos: seed ${options.seed}\n`);
  const result = await runChaos(options);
  if (result.anomalies.length === 0)
    process.stdout.write(`no anomaly\n\n${formatSummary(result)}\n`);
  else process.stdout.write(`${formatFailure(result)}\n`);
  // A planted bug must be caught: then the anomalies are the expected outcome.
  const expectAnomalies = options.plant !== null && !SAFE_PLANTS.has(options.plant);
  if (expectAnomalies)
    process.stdout.write(
      result.anomalies.length > 0
        ? `\nplanted bug ${options.plant}: CAUGHT (${result.anomalies.length} anomalies)\n`
        : `\nplanted bug ${options.plant}: NOT caught\n`,
    );
  if (result.anomalies.length > 0 !== expectAnomalies) process.exit(1);
}

// Ctrl-C or a kill: exit through process.exit, so the run's exit hook removes its nftables table
// and kills its replicas.
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));

main().catch((error: unknown) => {
  process.stderr.write(
    `chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(2);
});

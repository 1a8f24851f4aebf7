#!/usr/bin/env node
/**
 * A local cluster on 127.0.0.1, what `npm start` runs: checks the flags and the ports, then hands
 * over to the supervisor (src/cli/cluster-supervisor.ts), which starts N replicas as child
 * processes, shows who leads, restarts a replica that dies, and stops them all on Ctrl-C.
 */
import { availableParallelism } from "node:os";
import {
  clusterHelpText,
  describeTakenPort,
  parseClusterArgs,
  plannedPorts,
  planReplicas,
  secretFilePath,
} from "./cli/cluster-plan.ts";
import { Cluster, checkPort, ensureSecret } from "./cli/cluster-supervisor.ts";
import { nodeVersionProblem } from "./cli/node-version.ts";
import { Screen } from "./cli/screen.ts";
import { VERSION } from "./version.ts";

async function main(argv: readonly string[]): Promise<void> {
  const tooOld = nodeVersionProblem();
  if (tooOld !== null) {
    process.stderr.write(`${tooOld}\n`);
    process.exitCode = 2;
    return;
  }
  const cores = availableParallelism();
  let parsed: ReturnType<typeof parseClusterArgs>;
  try {
    parsed = parseClusterArgs(argv, cores);
  } catch (error) {
    process.stderr.write(
      `apus-cluster: ${(error as Error).message}\nRun with --help to see the options.\n`,
    );
    process.exitCode = 2;
    return;
  }
  if (parsed.action === "help") {
    process.stdout.write(clusterHelpText(VERSION, cores));
    return;
  }
  const { options } = parsed;
  const plans = planReplicas(options);
  const ports = plannedPorts(options, plans);
  const taken = (
    await Promise.all(ports.map(async (port) => ({ port, reason: await checkPort(port) })))
  ).filter((check) => check.reason !== null);
  if (taken.length > 0) {
    for (const { port, reason } of taken)
      process.stderr.write(`apus-cluster: ${describeTakenPort(port, reason!)}\n`);
    process.stderr.write(
      "(a cluster still running from before? stop it with Ctrl-C, or kill its replicas)\n",
    );
    process.exitCode = 1;
    return;
  }
  const screen = new Screen();
  if (ensureSecret(options))
    screen.print(`created ${secretFilePath(options)} (the peers' shared key, mode 0600)`);
  new Cluster(options, plans, screen).start();
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`apus-cluster: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});

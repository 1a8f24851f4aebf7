#!/usr/bin/env node
import { helpText, parseReplicaArgs } from "./runtime/config.ts";
/**
 * One replica: the main thread. It reads the settings, starts the replica's threads
 * (runtime/replica-runner.ts: the consensus worker, the connection workers, the admin HTTP port),
 * and stops everything in order on SIGTERM/SIGINT. No data-path work happens here.
 */
import { nodeVersionProblem } from "./runtime/node-version.ts";
import { describeStartError, type RunningReplica, startReplica } from "./runtime/replica-runner.ts";
import { VERSION } from "./version.ts";

function main(argv: string[]): void {
  const tooOld = nodeVersionProblem();
  if (tooOld !== null) {
    process.stderr.write(`${tooOld}\n`);
    process.exitCode = 2;
    return;
  }
  let parsed: ReturnType<typeof parseReplicaArgs>;
  try {
    parsed = parseReplicaArgs(argv);
  } catch (error) {
    process.stderr.write(
      `apus-smr: ${(error as Error).message}\nRun with --help to see the options.\n`,
    );
    process.exitCode = 2;
    return;
  }
  if (parsed.action === "version") {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (parsed.action === "help") {
    process.stdout.write(helpText(VERSION));
    return;
  }
  const { config } = parsed;
  startReplica(config).then(
    (replica: RunningReplica) => {
      const stop = (signal: string) => void replica.stop(signal).then(() => process.exit(0));
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    },
    (error: unknown) => {
      process.stderr.write(
        `apus-smr: replica ${config.id} cannot start: ${describeStartError(error, config)}\n`,
      );
      process.exit(1);
    },
  );
}

main(process.argv.slice(2));

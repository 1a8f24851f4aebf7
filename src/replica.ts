#!/usr/bin/env node
/**
 * One replica: the main thread. It reads the settings, starts the replica's threads
 * (runtime/replica-runner.ts: the consensus worker, the connection workers, the admin HTTP port),
 * and stops everything in order on SIGTERM/SIGINT. No data-path work happens here.
 */
import { commandLine } from "./cli/command-line.ts";
import { helpText, parseReplicaArgs } from "./runtime/config.ts";
import { describeStartError, type RunningReplica, startReplica } from "./runtime/replica-runner.ts";

function main(argv: string[]): void {
  const parsed = commandLine(argv, parseReplicaArgs, helpText);
  if (parsed === null) return;
  const { config } = parsed;
  // Signals are taken from the start: one that arrives while the replica is still starting
  // stops it as soon as it is up, rather than killing it halfway through opening its log.
  let running: RunningReplica | null = null;
  let signalled: string | null = null;
  const stop = (replica: RunningReplica, signal: string) =>
    void replica.stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(
          `apus-smr: replica ${config.id} did not stop cleanly: ${(error as Error).message}\n`,
        );
        process.exit(1);
      },
    );
  const onSignal = (signal: string) => {
    if (running !== null) stop(running, signal);
    else signalled = signal;
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  startReplica(config).then(
    (replica: RunningReplica) => {
      running = replica;
      if (signalled !== null) stop(replica, signalled);
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

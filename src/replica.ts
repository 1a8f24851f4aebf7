#!/usr/bin/env node
import { parseArgs } from "node:util";
import { VERSION } from "./version.ts";

const HELP = `apus-smr ${VERSION}: Multi-Paxos state-machine replication for Node.js

Usage: node dist/replica.js [options]

  --help       show this text and exit
  --version    print the version and exit

This build contains the consensus core and its simulator (npm run sim -- --help).
The networked replica (client port, peers, WAL, Redis-protocol store) is not in this
build yet; until it is, this program only reports its version.
`;

function main(argv: string[]): number {
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { help: { type: "boolean" }, version: { type: "boolean" } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(
      `apus-smr: ${(error as Error).message}\nRun with --help to see the options.\n`,
    );
    return 2;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  process.stdout.write(HELP);
  return 0;
}

process.exitCode = main(process.argv.slice(2));

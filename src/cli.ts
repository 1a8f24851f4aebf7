#!/usr/bin/env node
/**
 * `apus`: look at a running cluster through the replicas' admin HTTP ports.
 *   apus status [--admin H:P,H:P,...] [--json]   table of every replica; exit 0 when healthy
 *   apus latency [--admin H:P] [--reset]         consensus-latency quantiles as one JSON line
 */
import { type AdminAddress, formatAdminAddress, getAdminJson } from "./cli/admin-client.ts";
import { type CliArgs, cliHelpText, parseCliArgs } from "./cli/cli-args.ts";
import {
  asReplicaStatus,
  formatStatusTable,
  formatSummary,
  isHealthy,
  type StatusRow,
  summarizeCluster,
} from "./cli/status-table.ts";
import { VERSION } from "./version.ts";

const REQUEST_TIMEOUT_MS = 2000;

async function fetchRow(address: AdminAddress): Promise<{ row: StatusRow; raw: unknown }> {
  const admin = formatAdminAddress(address);
  const result = await getAdminJson(address, "/status", REQUEST_TIMEOUT_MS);
  if (!result.ok)
    return { row: { admin, down: result.reason }, raw: { admin, down: result.reason } };
  const status = asReplicaStatus(result.value);
  if (status === null) {
    const down = "answered, but not with an apus-smr /status";
    return { row: { admin, down }, raw: { admin, down } };
  }
  return { row: { admin, status }, raw: result.value };
}

async function status(args: Extract<CliArgs, { command: "status" }>): Promise<number> {
  const fetched = await Promise.all(args.admin.map(fetchRow));
  const rows = fetched.map((f) => f.row);
  const summary = summarizeCluster(rows);
  if (args.json) process.stdout.write(`${JSON.stringify(fetched.map((f) => f.raw))}\n`);
  else process.stdout.write(`${formatStatusTable(rows)}\n${formatSummary(summary)}\n`);
  return isHealthy(summary) ? 0 : 1;
}

async function latency(args: Extract<CliArgs, { command: "latency" }>): Promise<number> {
  let failed = false;
  for (const address of args.admin) {
    const result = await getAdminJson(
      address,
      args.reset ? "/latency?reset=1" : "/latency",
      REQUEST_TIMEOUT_MS,
    );
    const prefix = args.admin.length > 1 ? `${formatAdminAddress(address)} ` : "";
    if (result.ok) {
      process.stdout.write(`${prefix}${JSON.stringify(result.value)}\n`);
    } else {
      failed = true;
      process.stderr.write(`apus: ${formatAdminAddress(address)}: ${result.reason}\n`);
    }
  }
  return failed ? 1 : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (error) {
    process.stderr.write(
      `apus: ${(error as Error).message}\nRun with --help to see the commands.\n`,
    );
    return 2;
  }
  switch (args.command) {
    case "help":
      process.stdout.write(cliHelpText(VERSION));
      return 0;
    case "version":
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case "status":
      return status(args);
    case "latency":
      return latency(args);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`apus: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);

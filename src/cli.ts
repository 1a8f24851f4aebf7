#!/usr/bin/env node
/**
 * `apus`: look at a running cluster through the replicas' admin HTTP ports.
 *   apus status [--admin H:P,H:P,...] [--json]   table of every replica; exit 0 when healthy
 *   apus latency [--admin H:P] [--reset]         consensus-latency quantiles as one JSON line
 *   apus leader transfer [ID] [--admin ...]      hand leadership over; prints who leads after
 *   apus member list|add|promote|remove|replace  the configuration, and changes to it
 * Each takes --user NAME where the admin ports authenticate (the password: --password-file FILE
 * or APUS_ADMIN_PASSWORD, never argv).
 */
import { readFileSync } from "node:fs";
import {
  type AdminAddress,
  type AdminCredentials,
  formatAdminAddress,
  getAdminJson,
} from "./cli/admin-client.ts";
import { type CliArgs, type CliLogin, cliHelpText, parseCliArgs } from "./cli/cli-args.ts";
import { type TransferAnswer, transferVerdict } from "./cli/leader-transfer-report.ts";
import { formatChange, formatConfiguration, memberRequestBody } from "./cli/member-report.ts";
import {
  asReplicaStatus,
  formatStatusTable,
  formatSummary,
  isHealthy,
  type StatusRow,
  summarizeCluster,
} from "./cli/status-table.ts";
import type { MemberChangeOutcome, MembersView } from "./runtime/thread-contracts.ts";
import { VERSION } from "./version.ts";

const REQUEST_TIMEOUT_MS = 2000;
/** The environment variable holding --user's password when --password-file is not given. */
const PASSWORD_ENV = "APUS_ADMIN_PASSWORD";

/**
 * --user's credentials, the password from --password-file (its first line) or APUS_ADMIN_PASSWORD;
 * undefined without --user. Throws a message that says what to pass.
 */
function credentialsOf(login: CliLogin): AdminCredentials | undefined {
  if (login.user === null) return undefined;
  let password: string | undefined;
  if (login.passwordFile !== null) {
    try {
      password = readFileSync(login.passwordFile, "utf8").split(/\r?\n/)[0];
    } catch (error) {
      throw new Error(
        `--password-file ${login.passwordFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
  } else {
    password = process.env[PASSWORD_ENV];
  }
  if (password === undefined || password === "")
    throw new Error(
      `--user ${login.user} needs its password: --password-file FILE, or the environment variable ${PASSWORD_ENV}`,
    );
  return { user: login.user, password };
}

async function fetchRow(
  address: AdminAddress,
  credentials: AdminCredentials | undefined,
): Promise<{ row: StatusRow; raw: unknown; authRefusal: string | null }> {
  const admin = formatAdminAddress(address);
  const result = await getAdminJson(address, "/status", REQUEST_TIMEOUT_MS, { credentials });
  if (!result.ok) {
    const down = result.authRefused === true ? "refused credentials" : result.reason;
    return {
      row: { admin, down },
      raw: { admin, down: result.reason },
      authRefusal: result.authRefused === true ? result.reason : null,
    };
  }
  const status = asReplicaStatus(result.value);
  if (status === null) {
    const down = "answered, but not with an apus-smr /status";
    return { row: { admin, down }, raw: { admin, down }, authRefusal: null };
  }
  return { row: { admin, status }, raw: result.value, authRefusal: null };
}

async function status(
  args: Extract<CliArgs, { command: "status" }>,
  credentials: AdminCredentials | undefined,
): Promise<number> {
  const fetched = await Promise.all(args.admin.map((a) => fetchRow(a, credentials)));
  const refusal = fetched.find((f) => f.authRefusal !== null)?.authRefusal ?? null;
  if (refusal !== null) process.stderr.write(`apus: ${refusal}\n`);
  const rows = fetched.map((f) => f.row);
  const summary = summarizeCluster(rows);
  if (args.json) process.stdout.write(`${JSON.stringify(fetched.map((f) => f.raw))}\n`);
  else process.stdout.write(`${formatStatusTable(rows)}\n${formatSummary(summary)}\n`);
  return isHealthy(summary) ? 0 : 1;
}

async function latency(
  args: Extract<CliArgs, { command: "latency" }>,
  credentials: AdminCredentials | undefined,
): Promise<number> {
  let failed = false;
  for (const address of args.admin) {
    const result = await getAdminJson(
      address,
      args.reset ? "/latency?reset=1" : "/latency",
      REQUEST_TIMEOUT_MS,
      { credentials },
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

/** Long enough for a transfer's own bound (2 x the election timeout) at any sane setting. */
const TRANSFER_TIMEOUT_MS = 30_000;
/** How long to wait for the target to be seen leading after the old leader handed over. */
const SETTLE_MS = 5000;

async function leaderTransfer(
  args: Extract<CliArgs, { command: "leader-transfer" }>,
  credentials: AdminCredentials | undefined,
): Promise<number> {
  // With --json every outcome, failures included, is one JSON line on stdout.
  const say = (code: number, text: string, json: Record<string, unknown>): number => {
    if (args.json) process.stdout.write(`${JSON.stringify(json)}\n`);
    else if (code === 0) process.stdout.write(`${text}\n`);
    else process.stderr.write(`apus: ${text}\n`);
    return code;
  };
  const fetched = await Promise.all(args.admin.map((a) => fetchRow(a, credentials)));
  const refusal = fetched.find((f) => f.authRefusal !== null)?.authRefusal ?? null;
  if (refusal !== null) return say(1, refusal, { ok: false, error: refusal, leaderAfter: 0 });
  const before = fetched.map((f) => f.row);
  // Two replicas may say they lead for a moment (a deposed one has not heard yet): the highest
  // ballot is the real one.
  const from = summarizeCluster(before).leaders[0];
  const index = before.findIndex((row) => "status" in row && row.status.id === from);
  if (from === undefined || index < 0) {
    const text = "no replica answered as leader; try again once one leads (apus status)";
    return say(1, text, { ok: false, error: text, leaderAfter: 0 });
  }
  if (args.target === from) {
    const text = `replica ${from} already leads`;
    return say(0, text, {
      ok: true,
      outcome: "already-leads",
      from,
      target: from,
      leaderAfter: from,
    });
  }
  const leaderAdmin = args.admin[index]!;
  const query = args.target === null ? "" : `?to=${args.target}`;
  const result = await getAdminJson(leaderAdmin, `/leader/transfer${query}`, TRANSFER_TIMEOUT_MS, {
    method: "POST",
    anyStatus: true,
    credentials,
  });
  if (!result.ok) {
    const text = `${formatAdminAddress(leaderAdmin)}: ${result.reason}`;
    return say(1, text, { ok: false, error: text, from });
  }
  const answer = result.value as TransferAnswer;
  if (answer.outcome !== "transferred") {
    const text = `replica ${from} did not hand over leadership: ${answer.outcome ?? "unknown answer"}${answer.target ? ` (target ${answer.target})` : ""}`;
    return say(1, text, { ...answer, ok: false });
  }
  // The target took over (or is campaigning with our blessing); ask everyone until it leads.
  const deadline = Date.now() + SETTLE_MS;
  let leader = 0;
  for (;;) {
    const rows = (await Promise.all(args.admin.map((a) => fetchRow(a, credentials)))).map(
      (f) => f.row,
    );
    leader = summarizeCluster(rows).leaders[0] ?? 0;
    if (leader === answer.target || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const verdict = transferVerdict(from, answer, leader);
  return say(verdict.code, verdict.text, verdict.json);
}

/** Longer than the replica's own bound on a change's steps, so the answer arrives first. */
const MEMBER_TIMEOUT_SLACK_MS = 10_000;
/** The replica's default wait per step (MEMBER_CHANGE_WAIT_MS_DEFAULT). */
const MEMBER_STEP_WAIT_MS_DEFAULT = 30_000;

async function member(
  args: Extract<CliArgs, { command: "member" }>,
  credentials: AdminCredentials | undefined,
): Promise<number> {
  const fetched = await Promise.all(args.admin.map((a) => fetchRow(a, credentials)));
  const refusal = fetched.find((f) => f.authRefusal !== null)?.authRefusal ?? null;
  if (refusal !== null) {
    process.stderr.write(`apus: ${refusal}\n`);
    return 1;
  }
  const rows = fetched.map((f) => f.row);
  const leader = summarizeCluster(rows).leaders[0];
  const leaderIndex = rows.findIndex((row) => "status" in row && row.status.id === leader);
  if (args.member.op === "list") {
    // The leader's view has every member's progress; any answering replica's has the rest.
    const order = [leaderIndex, ...rows.keys()].filter((i) => i >= 0 && "status" in rows[i]!);
    for (const index of order) {
      const result = await getAdminJson(args.admin[index]!, "/members", REQUEST_TIMEOUT_MS, {
        credentials,
      });
      if (!result.ok) continue;
      const view = result.value as MembersView;
      process.stdout.write(
        args.json ? `${JSON.stringify(view)}\n` : `${formatConfiguration(view)}\n`,
      );
      return 0;
    }
    process.stderr.write("apus: no replica of --admin answered /members\n");
    return 1;
  }
  if (leader === undefined || leaderIndex < 0) {
    const known = rows.find((row) => "status" in row && row.status.leader !== null);
    const hint =
      known !== undefined && "status" in known
        ? ` (they follow replica ${known.status.leader}: add its admin port to --admin)`
        : " (try again once one leads: apus status)";
    process.stderr.write(`apus: no replica of --admin answered as leader${hint}\n`);
    return 1;
  }
  const steps = args.member.op === "replace" ? 4 : 1;
  const timeoutMs =
    steps * (args.member.waitMs ?? MEMBER_STEP_WAIT_MS_DEFAULT) + MEMBER_TIMEOUT_SLACK_MS;
  const body = JSON.stringify(memberRequestBody(args.member));
  const result = await getAdminJson(args.admin[leaderIndex]!, "/members", timeoutMs, {
    method: "POST",
    anyStatus: true,
    credentials,
    body,
  });
  if (!result.ok) {
    process.stderr.write(
      `apus: ${formatAdminAddress(args.admin[leaderIndex]!)}: ${result.reason}\n`,
    );
    return 1;
  }
  const outcome = result.value as MemberChangeOutcome;
  const ok = outcome.outcome === "done";
  if (args.json) process.stdout.write(`${JSON.stringify(outcome)}\n`);
  else
    (ok ? process.stdout : process.stderr).write(`${ok ? "" : "apus: "}${formatChange(outcome)}\n`);
  return ok ? 0 : 1;
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
  let credentials: AdminCredentials | undefined;
  if (args.command !== "help" && args.command !== "version") {
    try {
      credentials = credentialsOf(args);
    } catch (error) {
      process.stderr.write(`apus: ${(error as Error).message}\n`);
      return 2;
    }
  }
  switch (args.command) {
    case "help":
      process.stdout.write(cliHelpText(VERSION));
      return 0;
    case "version":
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case "status":
      return status(args, credentials);
    case "latency":
      return latency(args, credentials);
    case "leader-transfer":
      return leaderTransfer(args, credentials);
    case "member":
      return member(args, credentials);
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

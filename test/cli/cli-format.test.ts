import { describe, expect, it } from "vitest";
import { describeAdminError } from "../../src/cli/admin-client.ts";
import { parseCliArgs } from "../../src/cli/cli-args.ts";
import {
  describeExit,
  fitToWidth,
  formatClusterLine,
  type ReplicaView,
} from "../../src/cli/cluster-line.ts";
import {
  defaultClusterWorkers,
  describeTakenPort,
  parseClusterArgs,
  plannedPorts,
  planReplicas,
} from "../../src/cli/cluster-plan.ts";
import { summarizeLogLine } from "../../src/cli/log-tail.ts";
import {
  asReplicaStatus,
  compareBallotText,
  formatStatusTable,
  formatSummary,
  formatUptime,
  isHealthy,
  type StatusRow,
  summarizeCluster,
} from "../../src/cli/status-table.ts";
import type { ReplicaStatus } from "../../src/runtime/thread-contracts.ts";

function status(overrides: Partial<ReplicaStatus> & { id: number }): ReplicaStatus {
  return {
    role: "follower",
    leader: 2,
    ballot: "-",
    promised: "2.2",
    commitIndex: 1532,
    appliedIndex: 1532,
    lastSlot: 1532,
    inFlightSlots: 0,
    pendingRequests: 0,
    app: { kind: "embedded", keys: 0 },
    keys: 10,
    durability: "fsync",
    transport: "udp",
    workers: 1,
    uptimeMs: 65_000,
    peers: [],
    ...overrides,
  };
}

const leader2 = status({ id: 2, role: "leader", ballot: "2.2", pendingRequests: 3 });

describe("apus status table", () => {
  it("prints one row per replica, a down row with its reason, and lag behind the highest commit", () => {
    const rows: StatusRow[] = [
      { admin: "127.0.0.1:8001", status: status({ id: 1, appliedIndex: 1500, commitIndex: 1510 }) },
      { admin: "127.0.0.1:8002", status: leader2 },
      { admin: "127.0.0.1:8003", down: "connection refused" },
    ];
    expect(formatStatusTable(rows)).toBe(
      [
        "admin           id  role      leader  ballot  commit  applied  lag  pending  keys  uptime",
        "127.0.0.1:8001   1  follower       2  -         1510     1500   32        0    10  1m 05s",
        "127.0.0.1:8002   2  leader         2  2.2       1532     1532    0        3    10  1m 05s",
        "127.0.0.1:8003   -  down (connection refused)",
      ].join("\n"),
    );
  });

  it("is healthy with a leader and a majority; a minority up is not", () => {
    const up: StatusRow[] = [
      { admin: "a:1", status: status({ id: 1 }) },
      { admin: "a:2", status: leader2 },
      { admin: "a:3", down: "connection refused" },
    ];
    const summary = summarizeCluster(up);
    expect(summary).toMatchObject({ clusterSize: 3, answered: 2, majority: 2, leaders: [2] });
    expect(isHealthy(summary)).toBe(true);
    expect(formatSummary(summary)).toBe(
      "one leader: replica 2 · majority up: 2 of 3 answer (2 needed)",
    );

    const minority = summarizeCluster([
      up[1]!,
      { admin: "a:1", down: "x" },
      { admin: "a:3", down: "x" },
    ]);
    expect(isHealthy(minority)).toBe(false);
    expect(formatSummary(minority)).toContain("NO majority: 1 of 3 answer, 2 needed");
  });

  it("has no leader when nobody says it leads", () => {
    const summary = summarizeCluster([{ admin: "a:1", status: status({ id: 1 }) }]);
    expect(summary.leaders).toEqual([]);
    expect(isHealthy(summary)).toBe(false);
    expect(formatSummary(summary)).toMatch(/^no leader/);
  });

  it("orders two claimed leaders by ballot: the deposed one has the lower ballot", () => {
    const stale = status({ id: 1, role: "leader", ballot: "1.1" });
    const summary = summarizeCluster([
      { admin: "a:1", status: stale },
      { admin: "a:2", status: leader2 },
    ]);
    expect(summary.leaders).toEqual([2, 1]);
    expect(formatSummary(summary)).toContain("2 replicas say they lead (2, 1)");
    expect(compareBallotText("10.1", "9.3")).toBeGreaterThan(0);
    expect(compareBallotText("2.1", "2.3")).toBeLessThan(0);
    expect(compareBallotText("-", "0.1")).toBeLessThan(0);
  });

  it("counts the majority among the governing configuration's voters (stable ids, learners, removed ones)", () => {
    const current = {
      slot: 131,
      effectiveFrom: 195,
      members: [
        { id: 1, role: "voter" as const, address: "h:1" },
        { id: 2, role: "voter" as const, address: "h:2" },
        { id: 7, role: "voter" as const, address: "h:7" },
        { id: 9, role: "learner" as const, address: "h:9" },
      ],
    };
    const members = { current, latest: current, changing: false, removed: false };
    const summary = summarizeCluster([
      { admin: "a:2", status: status({ id: 2, role: "leader", ballot: "2.2", members }) },
      { admin: "a:9", status: status({ id: 9, members }) },
      { admin: "a:3", status: status({ id: 3, members: { ...members, removed: true } }) },
      { admin: "a:7", down: "connection refused" },
    ]);
    expect(summary.clusterSize).toBe(3);
    expect(summary.answered).toBe(1); // 2; 9 is a learner, 3 was removed
    expect(formatSummary(summary)).toContain("NO majority: 1 of 3 answer, 2 needed");
  });

  it("sizes the cluster from the highest id any answer names, not only the addresses asked", () => {
    const withPeers = status({
      id: 1,
      peers: [1, 2, 3, 4, 5].map((id) => ({
        id,
        address: `h:${id}`,
        chosenSlot: 0,
        lastHeardMsAgo: null,
      })),
    });
    const summary = summarizeCluster([{ admin: "a:1", status: withPeers }]);
    expect(summary.clusterSize).toBe(5);
    expect(summary.majority).toBe(3);
  });

  it("formats uptime at a glance", () => {
    expect(formatUptime(999)).toBe("0s");
    expect(formatUptime(45_000)).toBe("45s");
    expect(formatUptime(723_000)).toBe("12m 03s");
    expect(formatUptime(3 * 3_600_000 + 120_000)).toBe("3h 02m");
    expect(formatUptime(52 * 3_600_000)).toBe("2d 04h");
  });

  it("refuses an answer that is not a replica status", () => {
    expect(asReplicaStatus({ hello: "world" })).toBeNull();
    expect(asReplicaStatus(null)).toBeNull();
    expect(asReplicaStatus({ ...leader2, role: "boss" })).toBeNull();
    expect(asReplicaStatus(JSON.parse(JSON.stringify(leader2)))).toEqual(leader2);
  });

  it("names why a replica did not answer", () => {
    expect(describeAdminError({ code: "ECONNREFUSED" }, 500)).toBe("connection refused");
    expect(describeAdminError({ code: "ERR_ADMIN_TIMEOUT" }, 500)).toBe("no answer within 500 ms");
    expect(describeAdminError(new Error("boom"), 500)).toBe("boom");
  });
});

describe("apus arguments", () => {
  it("defaults status to the three local admin ports", () => {
    const args = parseCliArgs(["status"]);
    expect(args).toEqual({
      command: "status",
      json: false,
      admin: [8001, 8002, 8003].map((port) => ({ host: "127.0.0.1", port })),
      user: null,
      passwordFile: null,
    });
  });

  it("reads --admin lists, --json, latency --reset", () => {
    expect(parseCliArgs(["status", "--admin", "10.0.0.1:9000,[::1]:9001", "--json"])).toEqual({
      command: "status",
      json: true,
      admin: [
        { host: "10.0.0.1", port: 9000 },
        { host: "::1", port: 9001 },
      ],
      user: null,
      passwordFile: null,
    });
    expect(parseCliArgs(["latency", "--reset"])).toEqual({
      command: "latency",
      reset: true,
      admin: [{ host: "127.0.0.1", port: 8001 }],
      user: null,
      passwordFile: null,
    });
    expect(parseCliArgs(["--help"])).toEqual({ command: "help" });
  });

  it("parses leader transfer, with and without a target", () => {
    expect(parseCliArgs(["leader", "transfer"])).toEqual({
      command: "leader-transfer",
      admin: [8001, 8002, 8003].map((port) => ({ host: "127.0.0.1", port })),
      target: null,
      json: false,
      user: null,
      passwordFile: null,
    });
    expect(parseCliArgs(["leader", "transfer", "2", "--admin", "h:1", "--json"])).toEqual({
      command: "leader-transfer",
      admin: [{ host: "h", port: 1 }],
      target: 2,
      json: true,
      user: null,
      passwordFile: null,
    });
    expect(() => parseCliArgs(["leader", "transfer", "x"])).toThrow(/replica id/);
    expect(() => parseCliArgs(["leader", "transfer", "0"])).toThrow(/replica id/);
    expect(() => parseCliArgs(["leader", "elect"])).toThrow(/leader transfer/);
    expect(() => parseCliArgs(["leader", "transfer", "2", "3"])).toThrow(/unexpected argument/);
  });

  it("takes --user and --password-file for every command, never a password itself", () => {
    expect(
      parseCliArgs(["leader", "transfer", "--user", "ops", "--password-file", "/p"]),
    ).toMatchObject({ command: "leader-transfer", user: "ops", passwordFile: "/p" });
    expect(parseCliArgs(["status", "--user", "ops"])).toMatchObject({
      command: "status",
      user: "ops",
      passwordFile: null,
    });
    expect(parseCliArgs(["latency", "--reset", "--user", "ops"])).toMatchObject({ user: "ops" });
    expect(() => parseCliArgs(["status", "--password-file", "/p"])).toThrow(/needs --user NAME/);
    expect(() => parseCliArgs(["status", "--user", "a:b"])).toThrow(/--user/);
    expect(() => parseCliArgs(["status", "--user", "ops", "--password", "x"])).toThrow(/password/);
  });

  it("rejects what it cannot use, naming it", () => {
    expect(() => parseCliArgs([])).toThrow(/missing command/);
    expect(() => parseCliArgs(["stauts"])).toThrow(/unknown command "stauts"/);
    expect(() => parseCliArgs(["status", "--admin", "8001"])).toThrow(
      /--admin: expected host:port/,
    );
    expect(() => parseCliArgs(["status", "--reset"])).toThrow(/--reset belongs to latency/);
    expect(() => parseCliArgs(["status", "--bogus"])).toThrow(/bogus/);
  });
});

describe("cluster launcher arguments and plan", () => {
  it("plans three replicas on consecutive ports with their own data dirs and logs", () => {
    const parsed = parseClusterArgs([], 16);
    expect(parsed.action).toBe("run");
    if (parsed.action !== "run") return;
    const plans = planReplicas(parsed.options);
    expect(
      plans.map((p) => [p.id, p.clientPort, p.peerPort, p.adminPort, p.dataDir, p.logFile]),
    ).toEqual([
      [1, 7001, 17001, 8001, "data/replica-1", "data/replica-1.log"],
      [2, 7002, 17002, 8002, "data/replica-2", "data/replica-2.log"],
      [3, 7003, 17003, 8003, "data/replica-3", "data/replica-3.log"],
    ]);
    expect(plans[1]!.args).toEqual([
      "--id",
      "2",
      "--peers",
      "127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003",
      "--client-port",
      "7002",
      "--admin-port",
      "8002",
      "--data-dir",
      "data/replica-2",
      "--secret-file",
      "data/cluster.secret",
      "--durability",
      "fsync",
      "--transport",
      "udp",
      "--workers",
      "4",
      "--log-format",
      "json",
    ]);
  });

  it("passes everything after -- to every replica, after its own flags", () => {
    const parsed = parseClusterArgs(
      ["--replicas", "5", "--transport", "tcp", "--no-restart", "--", "--batch-max-commands", "1"],
      2,
    );
    if (parsed.action !== "run") throw new Error("expected run");
    expect(parsed.options).toMatchObject({
      replicas: 5,
      transport: "tcp",
      restart: false,
      workers: 0, // 5 replicas on 2 cores: no core to spare, clients on the consensus thread
    });
    const plans = planReplicas(parsed.options);
    expect(plans).toHaveLength(5);
    expect(plans[4]!.args.slice(-2)).toEqual(["--batch-max-commands", "1"]);
    const peerPorts = plannedPorts(parsed.options, plans).filter((p) => p.use === "peer");
    expect(peerPorts.every((p) => p.protocol === "tcp")).toBe(true);
  });

  it("rejects bad values and flags the launcher owns, naming the flag that fixes it", () => {
    expect(() => parseClusterArgs(["--replicas", "10"], 4)).toThrow(
      /--replicas: must be from 1 to 9/,
    );
    expect(() => parseClusterArgs(["--replicas", "0"], 4)).toThrow(/--replicas/);
    expect(() => parseClusterArgs(["--durability", "disk"], 4)).toThrow(
      /--durability: must be one of fsync, memory/,
    );
    expect(() => parseClusterArgs(["--base-admin-port", "7002"], 4)).toThrow(
      /--base-admin-port: ports 7002..7004 overlap --base-client-port ports 7001..7003/,
    );
    expect(() => parseClusterArgs(["--base-client-port", "65534"], 4)).toThrow(
      /runs past port 65535/,
    );
    expect(() => parseClusterArgs(["--", "--peers=x:1"], 4)).toThrow(
      /--peers after -- is set by the launcher/,
    );
    expect(() => parseClusterArgs(["--", "--durability", "memory"], 4)).toThrow(
      /launcher's own --durability/,
    );
    expect(() => parseClusterArgs(["extra"], 4)).toThrow();
  });

  it("shares the cores among replicas for the default worker count", () => {
    expect(defaultClusterWorkers(2, 3)).toBe(0);
    expect(defaultClusterWorkers(8, 3)).toBe(1);
    expect(defaultClusterWorkers(16, 3)).toBe(4);
    expect(defaultClusterWorkers(64, 1)).toBe(4);
  });

  it("says which port is taken and which flag moves it", () => {
    const port = {
      port: 8002,
      protocol: "tcp",
      replicaId: 2,
      use: "admin",
      flag: "--base-admin-port",
    } as const;
    expect(describeTakenPort(port, "is in use")).toBe(
      "port 8002 (admin port of replica 2, tcp) is in use; move the admin ports with --base-admin-port N, or stop what holds it",
    );
  });
});

describe("cluster launcher live line", () => {
  const up = (s: ReplicaStatus): ReplicaView["state"] => ({ kind: "up", status: s });

  it("shows the leader, the commit index and each replica", () => {
    const views: ReplicaView[] = [
      { id: 1, state: up(status({ id: 1 })) },
      { id: 2, state: up(leader2) },
      { id: 3, state: { kind: "restarting" } },
    ];
    expect(formatClusterLine(views)).toBe(
      "leader 2 · commit 1532 · r1 follower ✓ r2 leader ✓ r3 down (restarting)",
    );
    expect(formatClusterLine(views, false)).toBe(
      "leader 2 · r1 follower ✓ r2 leader ✓ r3 down (restarting)",
    );
  });

  it("marks a replica far behind as catching up, with the count only when counters are shown", () => {
    const views: ReplicaView[] = [
      { id: 1, state: up(status({ id: 1, appliedIndex: 32, commitIndex: 32 })) },
      { id: 2, state: up(leader2) },
      { id: 3, state: { kind: "starting" } },
    ];
    expect(formatClusterLine(views)).toBe(
      "leader 2 · commit 1532 · r1 follower catching up (1500 behind) r2 leader ✓ r3 starting…",
    );
    expect(formatClusterLine(views, false)).toBe(
      "leader 2 · r1 follower catching up r2 leader ✓ r3 starting…",
    );
  });

  it("says there is no leader, and why replicas are down", () => {
    const views: ReplicaView[] = [
      { id: 1, state: { kind: "down", why: "failed" } },
      { id: 2, state: { kind: "down", why: "no-restart" } },
      { id: 3, state: { kind: "unreachable", reason: "connection refused" } },
    ];
    expect(formatClusterLine(views)).toBe(
      "no leader · commit 0 · r1 down (failed to start) r2 down r3 not answering",
    );
  });

  it("describes how a replica exited", () => {
    expect(describeExit(2, 4242, null, "SIGKILL")).toBe(
      "replica 2 (pid 4242) was killed by SIGKILL",
    );
    expect(describeExit(1, 7, 1, null)).toBe("replica 1 (pid 7) exited with code 1");
    expect(describeExit(3, null, null, null)).toBe("replica 3 could not be started");
  });

  it("cuts the line to the terminal width so \\r rewrites never wrap", () => {
    expect(fitToWidth("abcdef", 5)).toBe("abc…");
    expect(fitToWidth("abc", 5)).toBe("abc");
    expect(fitToWidth("abcdef", undefined)).toBe("abcdef");
  });

  it("makes a pino log line readable and leaves other lines alone", () => {
    const line = JSON.stringify({
      level: 60,
      msg: "cannot open the log",
      err: { message: "EACCES: permission denied" },
    });
    expect(summarizeLogLine(line)).toBe("FATAL cannot open the log: EACCES: permission denied");
    expect(summarizeLogLine('{"level":30,"msg":"stopped"}')).toBe("INFO stopped");
    expect(summarizeLogLine("apus-smr: --id: required")).toBe("apus-smr: --id: required");
    expect(summarizeLogLine("{not json")).toBe("{not json");
    expect(summarizeLogLine("x".repeat(10), 5)).toBe("xxxx…");
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nodeVersionProblem } from "../../src/cli/node-version.ts";
import { helpText, parseReplicaArgs, parseSize, SETTINGS } from "../../src/runtime/config.ts";
import { coreTiming } from "../../src/workers/consensus/core-timing.ts";

const PEERS = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

function run(argv: string[]) {
  const parsed = parseReplicaArgs(argv);
  if (parsed.action !== "run") throw new Error("expected run");
  return parsed.config;
}

function failure(argv: string[]): string {
  try {
    parseReplicaArgs(argv);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a failure");
}

describe("replica settings", () => {
  it("fills defaults and parses sizes and peers", () => {
    const config = run(["--id", "2", "--peers", PEERS, "--batch-max-bytes", "64k"]);
    expect(config.id).toBe(2);
    expect(config.peers[2]).toEqual({ host: "127.0.0.1", port: 7003 });
    expect(config.batchBytesMax).toBe(65536);
    expect(config.dataDir).toBe("./data/replica-2");
    expect(config.durability).toBe("fsync");
    expect(parseSize("16m")).toBe(16 * 1024 * 1024);
    expect(parseSize("12x")).toBeNull();
  });

  it("takes stable ids in --peers, --join and --promote-lag-slots", () => {
    const parsed = parseReplicaArgs([
      "--id",
      "7",
      "--peers",
      "7=10.0.0.7:7400,1=10.0.0.1:7400,2=10.0.0.2:7400",
      "--join",
      "--promote-lag-slots",
      "10",
    ]);
    if (parsed.action !== "run") throw new Error("expected a run");
    const { config } = parsed;
    expect(config.id).toBe(7);
    expect(config.join).toBe(true);
    expect(config.promoteLagSlots).toBe(10);
    expect(config.peers.length).toBe(7);
    expect(config.peers[0]).toEqual({ host: "10.0.0.1", port: 7400 });
    expect(config.peers[2]).toBeUndefined();
    expect(config.peers[6]).toEqual({ host: "10.0.0.7", port: 7400 });
    expect(config.dataDir).toBe("./data/replica-7");
    const plain = parseReplicaArgs(["--id", "1", "--peers", PEERS]);
    expect(plain.action === "run" && plain.config.join).toBe(false);
  });

  it("stops with one line that names the setting", () => {
    expect(failure(["--id", "4", "--peers", PEERS])).toBe(
      "--id: is 4 but --peers names no replica 4 (it lists 1, 2, 3): list this replica's own ID=host:port too",
    );
    expect(failure(["--id", "1"])).toMatch(/^--peers: required/);
    expect(failure(["--id", "1", "--peers", "localhost"])).toMatch(
      /^--peers: expected ID=host:port,ID=host:port,... \(or host:port,... in id order\)/,
    );
    expect(failure(["--id", "1", "--peers", "1=a:1,b:2"])).toMatch(/mixes ID=host:port and plain/);
    expect(failure(["--id", "1", "--peers", PEERS, "--durability", "disk"])).toMatch(
      /^--durability: must be one of fsync, memory/,
    );
    expect(
      failure([
        "--id",
        "1",
        "--peers",
        PEERS,
        "--heartbeat-ms",
        "300",
        "--election-timeout-ms",
        "500",
      ]),
    ).toMatch(/^--heartbeat-ms: \(300\) must be at most half/);
    expect(
      failure([
        "--id",
        "1",
        "--peers",
        PEERS,
        "--block-lease-ms",
        "900",
        "--election-timeout-ms",
        "500",
      ]),
    ).toMatch(/^--block-lease-ms: \(900\) must be at least 2 × --election-timeout-ms \(500\)/);
    expect(failure(["--id", "1", "--peers", "a:1,a:1"])).toMatch(/lists a:1 twice/);
    expect(failure(["--bogus"])).toMatch(/Unknown option '--bogus'/);
    expect(failure(["--id", "1", "--peers", PEERS, "--checkpoint", "redis-cli SAVE"])).toMatch(
      /^--checkpoint: only means something with --app/,
    );
    const base = ["--id", "1", "--peers", PEERS];
    expect(failure([...base, "--tls-cert", "c.pem"])).toMatch(
      /^--tls-key: --tls-cert and --tls-key/,
    );
    expect(failure([...base, "--tls-ca", "ca.pem"])).toMatch(/^--tls-ca: needs --tls-cert/);
    expect(failure([...base, "--peer-tls-cert", "c.pem"])).toMatch(/needs all three/);
    expect(
      failure([...base, "--peer-tls-cert", "c", "--peer-tls-key", "k", "--peer-tls-ca", "a"]),
    ).toMatch(/runs over --transport tcp \(this replica uses udp\)/);
    expect(
      failure([
        ...base,
        "--app",
        "memcached -p {port}",
        "--protocol",
        "memcache",
        "--users-file",
        "u",
      ]),
    ).toMatch(/^--users-file: client authentication speaks RESP/);
  });

  it("reads --config JSON, and flags win over it", () => {
    const dir = mkdtempSync(join(tmpdir(), "apus-config-"));
    const file = join(dir, "replica.json");
    writeFileSync(
      file,
      JSON.stringify({ id: 1, peers: PEERS.split(","), window: 8, "log-level": "warn" }),
    );
    const config = run(["--config", file, "--window", "16"]);
    expect(config.window).toBe(16);
    expect(config.logLevel).toBe("warn");
    writeFileSync(file, JSON.stringify({ id: 1, peers: PEERS, windw: 8 }));
    expect(failure(["--config", file])).toMatch(/unknown setting "windw"/);
    // Keys renamed qualifier-last (batchMaxCommands → batchCommandsMax) still read from old files.
    writeFileSync(
      file,
      JSON.stringify({
        id: 1,
        peers: PEERS,
        batchMaxCommands: 7,
        maxValueBytes: "1m",
        batchBytesMax: "2k",
      }),
    );
    const renamed = run(["--config", file]);
    expect(renamed.batchCommandsMax).toBe(7);
    expect(renamed.valueBytesMax).toBe(1024 * 1024);
    expect(renamed.batchBytesMax).toBe(2048);
  });

  it("reads the snapshot stream's settings and refuses a port offset past 65535", () => {
    const config = run(["--id", "1", "--peers", PEERS]);
    expect(config.snapshotPortOffset).toBe(0);
    expect(config.snapshotChunkBytes).toBe(1024 * 1024);
    expect(config.snapshotStallTimeoutMs).toBe(10_000);
    expect(config.snapshotMemoryBytesMax).toBe(1024 * 1024 * 1024);
    expect(config.peerRecvBufferBytes).toBe(0);
    const set = run([
      "--id",
      "1",
      "--peers",
      PEERS,
      "--snapshot-port-offset",
      "100",
      "--snapshot-chunk-bytes",
      "256k",
      "--peer-recv-buffer-bytes",
      "64k",
    ]);
    expect(set.snapshotPortOffset).toBe(100);
    expect(set.snapshotChunkBytes).toBe(256 * 1024);
    expect(set.peerRecvBufferBytes).toBe(64 * 1024);
    expect(
      failure(["--id", "1", "--peers", "127.0.0.1:65000", "--snapshot-port-offset", "600"]),
    ).toMatch(/^--snapshot-port-offset: \(600\) puts 127.0.0.1:65000's snapshot stream past/);
    expect(failure(["--id", "1", "--peers", PEERS, "--snapshot-chunk-bytes", "1k"])).toMatch(
      /^--snapshot-chunk-bytes: must be at least 4096/,
    );
  });

  it("documents every setting in --help with its default", () => {
    const help = helpText("0.0.0");
    for (const setting of SETTINGS) expect(help).toContain(`--${setting.flag} `);
    expect(help).toContain("(default: 6379)");
  });

  it("maps milliseconds to core ticks that satisfy the core's checks", () => {
    const timing = coreTiming({ heartbeatMs: 50, electionTimeoutMs: 500 });
    expect(timing).toEqual({
      tickMs: 25,
      heartbeatTicks: 2,
      electionTicks: 20,
      retransmitTicks: 4,
    });
    // The test clusters' fast settings keep a 10 ms tick.
    expect(coreTiming({ heartbeatMs: 20, electionTimeoutMs: 300 }).tickMs).toBe(10);
    // A long heartbeat interval still ticks at most every 25 ms.
    expect(coreTiming({ heartbeatMs: 1000, electionTimeoutMs: 5000 }).tickMs).toBe(25);
    const tight = coreTiming({ heartbeatMs: 1, electionTimeoutMs: 2 });
    expect(tight.heartbeatTicks * 2).toBeLessThanOrEqual(tight.electionTicks);
  });

  it("refuses a Node without reusePort and zlib.crc32", () => {
    expect(nodeVersionProblem("20.20.2")).toMatch(/needs Node >= 22.12/);
    expect(nodeVersionProblem("22.12.0")).toBeNull();
    expect(nodeVersionProblem("24.1.0")).toBeNull();
  });
});

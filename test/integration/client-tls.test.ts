/**
 * TLS on the client port with real replica processes (issue 10), certificates made by openssl:
 * redis-cli --tls and ioredis `tls` work on every replica of a cluster whose connection workers
 * share the port (reusePort); a plain client to the TLS port fails its handshake, is counted, and
 * the replica keeps serving. With --tls-ca (here on the consensus thread, --workers 0, and with a
 * password) a client must show a certificate that CA signed.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./cluster-harness.ts";
import { makeTestCerts, type TestCerts } from "./test-certs.ts";

let dir: string;
let certs: TestCerts;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "apus-tls-"));
  certs = makeTestCerts(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** redis-cli's stdout and stderr, and whether it exited 0. */
function cli(port: number, args: readonly string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(
      "redis-cli",
      ["-h", "127.0.0.1", "-p", String(port), "--no-auth-warning", ...args],
      { timeout: 20_000 },
      (error, stdout, stderr) => resolve({ ok: error === null, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

function counter(metrics: string, name: string): number {
  let sum = 0;
  for (const line of metrics.split("\n"))
    if (line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

describe("--tls-cert/--tls-key: three replicas, two connection workers sharing each port", () => {
  let cluster: TestCluster;
  let client: Redis | null = null;

  beforeAll(async () => {
    cluster = await TestCluster.start({
      replicas: 3,
      workers: 2,
      extraArgs: ["--tls-cert", certs.serverCert, "--tls-key", certs.serverKey],
    });
    await cluster.waitForLeader();
    await cluster.waitForAllUp();
  }, 60_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it("serves redis-cli --tls --cacert on every replica", async () => {
    const tls = ["--tls", "--cacert", certs.caCert];
    for (const r of cluster.replicas)
      expect((await cli(r.clientPort, [...tls, "SET", `tls-${r.id}`, `v${r.id}`])).out).toBe("OK");
    for (const r of cluster.replicas) {
      const other = (r.id % 3) + 1;
      expect((await cli(r.clientPort, [...tls, "GET", `tls-${other}`])).out).toBe(`v${other}`);
    }
  });

  it("refuses a plain client (the handshake fails, counted) and keeps serving TLS clients", async () => {
    const r = cluster.replica(1);
    const before = counter(await cluster.metrics(1), "apus_client_tls_handshake_failures_total");
    const plain = await cli(r.clientPort, ["PING"]);
    expect(plain.ok).toBe(false);
    expect(plain.out).not.toContain("PONG");
    // Several plain tries land on both connection workers (the kernel spreads them).
    for (let i = 0; i < 4; i++)
      expect((await cli(r.clientPort, ["SET", "plain", "x"])).out).not.toBe("OK");
    const after = counter(await cluster.metrics(1), "apus_client_tls_handshake_failures_total");
    expect(after - before).toBeGreaterThanOrEqual(5);
    expect((await cli(r.clientPort, ["--tls", "--cacert", certs.caCert, "PING"])).out).toBe("PONG");
    const read = await cli(r.clientPort, ["--tls", "--cacert", certs.caCert, "EXISTS", "plain"]);
    expect(read.out).toBe("0");
  });

  it("serves ioredis with `tls`", async () => {
    client = new Redis({
      port: cluster.replica(2).clientPort,
      host: "127.0.0.1",
      tls: { ca: readFileSync(certs.caCert) },
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    expect(await client.set("ioredis-tls", "yes")).toBe("OK");
    expect(await client.get("tls-1")).toBe("v1");
  });
});

describe("--tls-ca: client certificates required (--workers 0, with a password)", () => {
  let cluster: TestCluster;
  let port: number;

  beforeAll(async () => {
    const password = join(dir, "requirepass");
    writeFileSync(password, "tls-and-auth\n", { mode: 0o600 });
    cluster = await TestCluster.start({
      replicas: 1,
      workers: 0,
      extraArgs: [
        "--tls-cert",
        certs.serverCert,
        "--tls-key",
        certs.serverKey,
        "--tls-ca",
        certs.caCert,
        "--requirepass-file",
        password,
      ],
    });
    await cluster.waitForLeader();
    port = cluster.replica(1).clientPort;
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("serves a client with a certificate the CA signed, and refuses one without or with another's", async () => {
    const tls = ["--tls", "--cacert", certs.caCert];
    const signed = [...tls, "--cert", certs.clientCert, "--key", certs.clientKey];
    expect((await cli(port, [...signed, "-a", "tls-and-auth", "SET", "k", "v"])).out).toBe("OK");
    expect((await cli(port, [...signed, "GET", "k"])).out).toBe("NOAUTH Authentication required.");
    const without = await cli(port, [...tls, "-a", "tls-and-auth", "GET", "k"]);
    expect(without.ok).toBe(false);
    expect(without.out).not.toMatch(/^v$/m);
    const stranger = [...tls, "--cert", certs.strangerCert, "--key", certs.strangerKey];
    const strangers = await cli(port, [...stranger, "-a", "tls-and-auth", "GET", "k"]);
    expect(strangers.ok).toBe(false);
    expect(strangers.out).not.toMatch(/^v$/m);
    expect(
      counter(await cluster.metrics(1), "apus_client_tls_handshake_failures_total"),
    ).toBeGreaterThanOrEqual(2);
    expect((await cli(port, [...signed, "-a", "tls-and-auth", "GET", "k"])).out).toBe("v");
  });
});

/**
 * Client authentication on real replica processes (issue 10): --requirepass-file (the default
 * user, AUTH password) and --users-file (named users, roles read-only / read-write / admin). A
 * command before AUTH gets -NOAUTH and never runs; redis-cli -a, redis-cli --user/--pass and
 * ioredis `password` / `username` connect unchanged; a read-only user cannot write, a read-write
 * one cannot FLUSHALL; replies to commands refused at the replica keep their place in a pipeline;
 * a stranger may send only a login's worth of bytes. Then the same roles in transparent mode
 * (the program's redis-server's command table), on the consensus thread (--workers 0): a command
 * the table does not know needs admin, a refusal inside MULTI aborts EXEC, AUTH inside MULTI is
 * queued; and a memcached program refused at start.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis, type RedisOptions } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPLICA_JS, TestCluster } from "./cluster-harness.ts";
import { SocketReader } from "./socket-reader.ts";

const DEFAULT_PASSWORD = "default-pass-0123";
const USERS = `# name role password
reader read-only reader-pass
writer read-write writer-pass
boss admin boss-pass
`;
const WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";
const NOAUTH = "NOAUTH Authentication required.";

function noPerm(name: string): string {
  return `NOPERM this user has no permissions to run the '${name}' command`;
}

const tempDirs: string[] = [];

/** A directory for a test's password files, removed after the file's tests. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "apus-auth-"));
  tempDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes the password and users files into a new directory; returns the replica flags naming them. */
function authFlags(dir = tempDir()): string[] {
  const requirepass = join(dir, "requirepass");
  const users = join(dir, "users");
  writeFileSync(requirepass, `${DEFAULT_PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(users, USERS, { mode: 0o600 });
  return ["--requirepass-file", requirepass, "--users-file", users];
}

/** An ioredis client that never retries: every error reaches the test. */
function connect(port: number, options: RedisOptions = {}): Redis {
  const c = new Redis({
    port,
    host: "127.0.0.1",
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
    ...options,
  });
  c.on("error", () => {});
  return c;
}

/** One RESP2 reply read off a raw socket, as text: `+OK`, `-ERR …`, `:1`, a bulk's bytes, `(nil)`. */
async function readReply(reader: SocketReader): Promise<string> {
  const line = (await reader.line("\r\n")).toString("latin1").slice(0, -2);
  if (line[0] !== "$") return line;
  const length = Number(line.slice(1));
  if (length < 0) return "(nil)";
  return (await reader.bytes(length + 2)).toString("latin1").slice(0, -2);
}

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
}

/** redis-cli with its stdout and stderr, whatever its exit status. */
function cli(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      "redis-cli",
      ["-p", String(port), "--no-auth-warning", ...args],
      { timeout: 20_000 },
      (_error, stdout, stderr) => resolve(`${stdout}${stderr}`.trim()),
    );
  });
}

/** A counter's value in a replica's /metrics text (summed over its connection workers). */
function counter(metrics: string, name: string): number {
  let sum = 0;
  for (const line of metrics.split("\n"))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

describe("client AUTH on the embedded store: three replicas, two connection workers each", () => {
  let cluster: TestCluster;
  let leaderPort: number;
  let followerPort: number;
  const clients: Redis[] = [];

  function tracked(port: number, options: RedisOptions): Redis {
    const c = connect(port, options);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    cluster = await TestCluster.start({ replicas: 3, extraArgs: authFlags() });
    const leader = await cluster.waitForLeader();
    await cluster.waitForAllUp();
    leaderPort = cluster.replica(leader).clientPort;
    followerPort = cluster.replica((leader % 3) + 1).clientPort;
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  it("answers -NOAUTH before AUTH, and nothing runs: the key stays unwritten on every replica", async () => {
    const reader = await SocketReader.open(followerPort);
    reader.write(command("SET", "noauth-key", "x") + command("PING") + command("HELLO", "2"));
    expect(await readReply(reader)).toBe(`-${NOAUTH}`);
    expect(await readReply(reader)).toBe(`-${NOAUTH}`);
    expect(await readReply(reader)).toMatch(/^-NOAUTH HELLO must be called/);
    reader.close();
    // An authenticated write after it, then the key read on every replica: never written.
    const boss = tracked(leaderPort, { username: "boss", password: "boss-pass" });
    expect(await boss.set("after-noauth", "1")).toBe("OK");
    for (const r of cluster.replicas) {
      const out = await cli(r.clientPort, ["-a", DEFAULT_PASSWORD, "GET", "noauth-key"]);
      expect(out).toBe("");
    }
    const metrics = await cluster.metrics(
      cluster.replicas.find((r) => r.clientPort === followerPort)!.id,
    );
    expect(counter(metrics, "apus_client_noauth_total")).toBeGreaterThanOrEqual(3);
  });

  it("redis-cli -a and --user/--pass log in; a wrong password gets WRONGPASS", async () => {
    expect(await cli(followerPort, ["-a", DEFAULT_PASSWORD, "SET", "cli-key", "v1"])).toBe("OK");
    expect(
      await cli(leaderPort, ["--user", "writer", "--pass", "writer-pass", "GET", "cli-key"]),
    ).toBe("v1");
    const wrong = await cli(leaderPort, ["-a", "not-the-password", "GET", "cli-key"]);
    expect(wrong).toContain(WRONGPASS);
    expect(wrong).toContain(NOAUTH);
    const unknown = await cli(leaderPort, ["--user", "nobody", "--pass", "writer-pass", "PING"]);
    expect(unknown).toContain(WRONGPASS);
    const metrics = await cluster.metrics(
      cluster.replicas.find((r) => r.clientPort === leaderPort)!.id,
    );
    expect(counter(metrics, "apus_client_auth_failures_total")).toBeGreaterThanOrEqual(2);
  });

  it("ioredis logs in with `password` (the default user) and with `username` + `password`", async () => {
    const byDefault = tracked(followerPort, { password: DEFAULT_PASSWORD });
    expect(await byDefault.set("ioredis-key", "v2")).toBe("OK");
    const named = tracked(leaderPort, { username: "reader", password: "reader-pass" });
    expect(await named.get("ioredis-key")).toBe("v2");
    // ioredis fails the first command with the refused AUTH's error.
    const wrong = tracked(leaderPort, { username: "reader", password: "nope" });
    await expect(wrong.get("ioredis-key")).rejects.toThrow(WRONGPASS);
  });

  it("a read-only user reads but cannot write; a read-write user writes but cannot FLUSHALL", async () => {
    const admin = tracked(leaderPort, { password: DEFAULT_PASSWORD });
    await admin.set("role-key", "original");
    const reader = tracked(followerPort, { username: "reader", password: "reader-pass" });
    await expect(reader.set("role-key", "changed")).rejects.toThrow(noPerm("set"));
    await expect(reader.del("role-key")).rejects.toThrow(noPerm("del"));
    expect(await reader.get("role-key")).toBe("original");
    expect(await reader.ping()).toBe("PONG");

    const writer = tracked(followerPort, { username: "writer", password: "writer-pass" });
    expect(await writer.set("role-key", "written")).toBe("OK");
    await expect(writer.flushall()).rejects.toThrow(noPerm("flushall"));
    await expect(writer.config("SET", "save", "")).rejects.toThrow(noPerm("config|set"));
    expect(await writer.config("GET", "save")).toEqual(["save", ""]);
    expect(await admin.get("role-key")).toBe("written");
    expect(await admin.dbsize()).toBeGreaterThan(0);

    const metrics = await cluster.metrics(
      cluster.replicas.find((r) => r.clientPort === followerPort)!.id,
    );
    expect(counter(metrics, "apus_client_noperm_total")).toBeGreaterThanOrEqual(4);
  });

  it("HELLO 2 AUTH logs in (SETNAME too) and answers as redis-server does; HELLO 3 AUTH too, in RESP3", async () => {
    const hello = await cli(leaderPort, [
      "HELLO",
      "2",
      "AUTH",
      "writer",
      "writer-pass",
      "SETNAME",
      "app",
    ]);
    expect(hello.split("\n").slice(0, 6)).toEqual([
      "server",
      "redis",
      "version",
      "7.0.0",
      "proto",
      "2",
    ]);
    expect(hello).toContain("standalone");
    expect(await cli(leaderPort, ["HELLO", "2", "AUTH", "writer", "wrong"])).toBe(WRONGPASS);
    // redis-cli prints a RESP3 map as "key" => value lines.
    const hello3 = await cli(leaderPort, ["HELLO", "3", "AUTH", "writer", "writer-pass"]);
    expect(hello3).toContain("proto");
    expect(hello3).toMatch(/proto\W+3/);
    expect(await cli(leaderPort, ["HELLO", "2", "AUTH", "writer"])).toBe(
      "ERR Syntax error in HELLO option 'AUTH'",
    );
  });

  it("replies to commands answered at the replica keep their place in a pipeline", async () => {
    const admin = tracked(leaderPort, { password: DEFAULT_PASSWORD });
    await admin.set("pipe-key", "before");
    const reader = await SocketReader.open(followerPort);
    reader.write(
      command("GET", "pipe-key") +
        command("AUTH", "reader", "reader-pass") +
        command("GET", "pipe-key") +
        command("SET", "pipe-key", "by-reader") +
        command("GET", "pipe-key") +
        command("AUTH", "writer", "wrong") +
        command("AUTH", "writer", "writer-pass") +
        command("SET", "pipe-key", "by-writer") +
        command("FLUSHALL") +
        command("GET", "pipe-key"),
    );
    const replies: string[] = [];
    for (let i = 0; i < 10; i++) replies.push(await readReply(reader));
    expect(replies).toEqual([
      `-${NOAUTH}`,
      "+OK",
      "before",
      `-${noPerm("set")}`,
      "before",
      `-${WRONGPASS}`, // a failed AUTH keeps the user logged in
      "+OK",
      "+OK",
      `-${noPerm("flushall")}`,
      "by-writer",
    ]);
    reader.close();
  });

  it("before AUTH, a request over the small limits is a protocol error and the connection is closed", async () => {
    const replica = cluster.replicas.find((r) => r.clientPort === leaderPort)!;
    const before = counter(await cluster.metrics(replica.id), "apus_client_logged_out_cut_total");
    const big = await SocketReader.open(leaderPort);
    big.write(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${1024 * 1024}\r\n`);
    expect(await readReply(big)).toBe("-ERR Protocol error: invalid bulk length");
    await expect(big.line("\r\n")).rejects.toThrow(/closed/);
    const many = await SocketReader.open(leaderPort);
    many.write(command("AUTH", ...Array.from({ length: 11 }, (_, i) => `a${i}`)));
    expect(await readReply(many)).toBe("-ERR Protocol error: invalid multibulk length");
    // Once logged in, the same connection may send a large value.
    const loggedIn = await SocketReader.open(leaderPort);
    const value = "v".repeat(1024 * 1024);
    loggedIn.write(command("AUTH", DEFAULT_PASSWORD) + command("SET", "big-after-auth", value));
    expect(await readReply(loggedIn)).toBe("+OK");
    expect(await readReply(loggedIn)).toBe("+OK");
    loggedIn.close();
    const after = counter(await cluster.metrics(replica.id), "apus_client_logged_out_cut_total");
    expect(after - before).toBe(2);
  });
});

describe("client AUTH in transparent mode (redis-server copies) on the consensus thread", () => {
  let cluster: TestCluster;
  let port: number;
  const clients: Redis[] = [];

  beforeAll(async () => {
    // FLUSHALL renamed: WIPEALL is in no COMMAND table, so only an admin may run it.
    const app =
      "redis-server --port {port} --bind {host} --dir {dir} --save '' --appendonly no --rename-command FLUSHALL WIPEALL";
    cluster = await TestCluster.start({
      replicas: 1,
      workers: 0,
      extraArgs: ["--app", app, ...authFlags()],
    });
    await cluster.waitForLeader(60_000);
    port = cluster.replica(1).clientPort;
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  it("roles follow redis-server's own command table; AUTH never reaches the copy", async () => {
    expect(await cli(port, ["SET", "k", "v"])).toBe(NOAUTH);
    const admin = connect(port, { password: DEFAULT_PASSWORD });
    const reader = connect(port, { username: "reader", password: "reader-pass" });
    const writer = connect(port, { username: "writer", password: "writer-pass" });
    clients.push(admin, reader, writer);
    expect(await admin.set("k", "v")).toBe("OK");
    await expect(reader.set("k", "x")).rejects.toThrow(noPerm("set"));
    await expect(reader.lpush("list", "x")).rejects.toThrow(noPerm("lpush"));
    expect(await reader.get("k")).toBe("v");
    expect(await reader.strlen("k")).toBe(1);
    expect(await writer.lpush("list", "x")).toBe(1);
    await expect(writer.flushall()).rejects.toThrow(noPerm("flushall"));
    await expect(writer.swapdb(0, 1)).rejects.toThrow(noPerm("swapdb"));
    await expect(writer.client("KILL", "ID", "1")).rejects.toThrow(noPerm("client|kill"));
    expect(await admin.dbsize()).toBe(2);
    // HELLO 3 is the copy's to answer (redis-server speaks RESP3); its AUTH is checked here.
    const hello = await cli(port, ["HELLO", "2", "AUTH", "reader", "reader-pass"]);
    expect(hello.split("\n").slice(0, 2)).toEqual(["server", "redis"]);
  });

  it("a command the program's table does not know (FLUSHALL renamed WIPEALL) needs admin", async () => {
    const admin = connect(port, { password: DEFAULT_PASSWORD });
    const reader = connect(port, { username: "reader", password: "reader-pass" });
    const writer = connect(port, { username: "writer", password: "writer-pass" });
    clients.push(admin, reader, writer);
    await admin.set("survivor", "1");
    await expect(reader.call("WIPEALL")).rejects.toThrow(noPerm("wipeall"));
    await expect(writer.call("wipeall")).rejects.toThrow(noPerm("wipeall"));
    expect(await admin.get("survivor")).toBe("1");
    expect(await admin.call("WIPEALL")).toBe("OK");
    expect(await admin.dbsize()).toBe(0);
  });

  it("a command refused inside MULTI aborts EXEC (-EXECABORT, nothing applied), as in redis-server", async () => {
    const reader = await SocketReader.open(port);
    reader.write(
      command("AUTH", "writer", "writer-pass") +
        command("MULTI") +
        command("SET", "tx-key", "written") +
        command("FLUSHALL") +
        command("EXEC") +
        command("EXISTS", "tx-key"),
    );
    const replies: string[] = [];
    for (let i = 0; i < 6; i++) replies.push(await readReply(reader));
    expect(replies).toEqual([
      "+OK",
      "+OK",
      "+QUEUED",
      `-${noPerm("flushall")}`,
      "-EXECABORT Transaction discarded because of previous errors.",
      ":0",
    ]);
    reader.close();
  });

  it("AUTH inside MULTI is queued and logs in at EXEC; its password never reaches the copy", async () => {
    const reader = await SocketReader.open(port);
    reader.write(
      command("AUTH", "reader", "reader-pass") +
        command("MULTI") +
        command("AUTH", "writer", "writer-pass") +
        command("AUTH", "writer", "wrong") +
        command("EXISTS", "auth-tx") +
        command("EXEC") +
        command("SET", "auth-tx", "by-writer") +
        command("GET", "auth-tx"),
    );
    const replies: string[] = [];
    for (let i = 0; i < 10; i++) replies.push(await readReply(reader));
    expect(replies).toEqual([
      "+OK",
      "+OK",
      "+QUEUED",
      "+QUEUED",
      "+QUEUED",
      "*3",
      "+OK",
      `-${WRONGPASS}`,
      ":0",
      "+OK",
    ]);
    expect(await readReply(reader)).toBe("by-writer");
    reader.close();
  });
});

describe("a memcached program with a password file", () => {
  it("is refused at start: memcache has no AUTH", async () => {
    const dir = tempDir();
    const flags = authFlags(dir);
    const out = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          REPLICA_JS,
          "--id",
          "1",
          "--peers",
          "127.0.0.1:1",
          "--data-dir",
          join(dir, "data"),
          "--app",
          `memcached -p {port} -l {host} -U 0${process.getuid?.() === 0 ? " -u root" : ""}`,
          "--protocol",
          "memcache",
          ...flags,
        ],
        { timeout: 20_000 },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : (error.code as number), output: stdout + stderr }),
      );
    });
    // Refused by the settings check (a usage error, exit 2), before the copy starts.
    expect(out.code).toBe(2);
    expect(out.output).toContain("--protocol memcache has no AUTH");
    expect(out.output).toContain("--tls-ca");
  });
});

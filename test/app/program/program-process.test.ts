import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  expandPlaceholders,
  ProgramError,
  quoteArgv,
  splitCommand,
} from "../../../src/app/program/program-command.ts";
import { ProgramOutput } from "../../../src/app/program/program-output.ts";
import {
  PROGRAM_RESTART_DELAY_MS_MAX,
  PROGRAM_RESTART_DELAY_MS_MIN,
  type ProgramExit,
  type ProgramOptions,
  ProgramProcess,
  pickFreePort,
  portIsFree,
  restartDelayMs,
} from "../../../src/app/program/program-process.ts";

const REDIS = "redis-server --port {port} --dir {dir} --save ''";
const ROOT = mkdtempSync(join(tmpdir(), "apus-program-"));
const started: ProgramProcess[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((program) => program.stop()));
});
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  dirCount += 1;
  return join(ROOT, `copy-${dirCount}`);
}

function program(options: Partial<ProgramOptions> & { command: string }): ProgramProcess {
  const created = new ProgramProcess({ dir: freshDir(), replicaId: 1, ...options });
  started.push(created);
  return created;
}

/** Connect, send one RESP inline command, return the first reply line. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      received += text;
      const end = received.indexOf("\r\n");
      if (end >= 0) {
        socket.destroy();
        resolveReply(received.slice(0, end));
      }
    });
    socket.on("error", reject);
    socket.write(`${command}\r\n`);
  });
}

/** Whether a pid is a live (not zombie) process. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A node TCP listener that ignores SIGTERM (stop() must SIGKILL it). */
function stubbornListener(): string {
  const script = join(ROOT, "stubborn.mjs");
  writeFileSync(
    script,
    `import { createServer } from "node:net";
process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
createServer((s) => s.end()).listen(Number(process.argv[2]), "127.0.0.1");
`,
  );
  return quoteArgv([process.execPath, script, "{port}"]);
}

async function startedError(promise: Promise<unknown>): Promise<ProgramError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProgramError);
  return error as ProgramError;
}

describe("splitCommand splits words and quotes like a POSIX shell, without one", () => {
  it.each([
    ["redis-server --port {port}", ["redis-server", "--port", "{port}"]],
    ["  a \t b\nc  ", ["a", "b", "c"]],
    ["redis-server --save ''", ["redis-server", "--save", ""]],
    ['x "" y', ["x", "", "y"]],
    [`'a b' "c d"`, ["a b", "c d"]],
    [`a'b'"c"d`, ["abcd"]],
    [`a"b c"d`, ["ab cd"]],
    [String.raw`"q\"d \\ \$ \x"`, [String.raw`q"d \ $ \x`]],
    [String.raw`a\ b \'c \"d \\`, ["a b", "'c", '"d', "\\"]],
    [String.raw`'it'\''s'`, ["it's"]],
    [String.raw`'no \escape in single'`, [String.raw`no \escape in single`]],
    ["a \\\nb", ["a", "b"]],
    ["sh -c 'echo boom >&2; exit 3'", ["sh", "-c", "echo boom >&2; exit 3"]],
    ["echo $ a$", ["echo", "$", "a$"]],
    ["a#b '#c'", ["a#b", "#c"]],
    [
      `memcached -p {port} -l 127.0.0.1 -U 0`,
      ["memcached", "-p", "{port}", "-l", "127.0.0.1", "-U", "0"],
    ],
    [`app '{"json":1}' x*`, ["app", '{"json":1}', "x*"]],
  ])("%j -> %j", (template, argv) => {
    expect(splitCommand(template)).toEqual(argv);
  });

  it.each([
    ["redis-server | tee log", "operator |"],
    ["a; b", "operator ;"],
    ["a && b", "operator &&"],
    ["a || b", "operator ||"],
    ["a > out", "operator >"],
    ["a >> out", "operator >>"],
    ["a 2>&1", "operator >"],
    ["a < in", "operator <"],
    ["a &", "operator &"],
    ["(a)", "operator ("],
    ["a `date`", "command substitution"],
    ["a $(date)", "command substitution"],
    ['a "$(date)"', "command substitution"],
    ['a "x`date`"', "command substitution"],
    ["a $HOME", "expansion of $"],
    ['a "$' + '{HOME}"', "expansion of $"],
    ["a # comment", "comment"],
    ["a 'open", "single quote is never closed"],
    ['a "open', "double quote is never closed"],
    ["a \\", "ends with a backslash"],
    ["", "names no program"],
    ["   ", "names no program"],
  ])("rejects %j (%s)", (template, what) => {
    let error: unknown = null;
    try {
      splitCommand(template);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProgramError);
    expect((error as ProgramError).code).toBe("ERR_APP_COMMAND");
    expect((error as ProgramError).message).toContain(what);
    if (what.startsWith("operator") || what === "command substitution") {
      expect((error as ProgramError).message).toContain("wrapper script");
    }
  });
});

describe("expandPlaceholders", () => {
  const values = { port: "7001", dir: "/d/with space", host: "127.0.0.1", id: "2" };

  it("replaces {port} {dir} {host} {id} inside each argument; an argument stays one", () => {
    expect(
      expandPlaceholders(
        ["x", "--port={port}", "{dir}", "{host}:{port}", "n{id}{id}", "{}"],
        values,
      ),
    ).toEqual(["x", "--port=7001", "/d/with space", "127.0.0.1:7001", "n22", "{}"]);
  });

  it("rejects an unknown placeholder, naming the known ones", () => {
    expect(() => expandPlaceholders(["--x", "{nope}"], values)).toThrow(
      /unknown placeholder \{nope\}; the known ones are \{port\}, \{dir\}, \{host\}, \{id\}/,
    );
    expect(() => new ProgramProcess({ command: "a {dri}", dir: freshDir(), replicaId: 1 })).toThrow(
      ProgramError,
    );
  });

  it("quoteArgv round-trips through splitCommand", () => {
    const argv = ["a b", "", "it's", '"q"', "$x", "plain", "{port}"];
    expect(splitCommand(quoteArgv(argv))).toEqual(argv);
  });
});

describe("pure helpers", () => {
  it("restartDelayMs doubles from the minimum and stops at the cap", () => {
    expect(restartDelayMs(0)).toBe(PROGRAM_RESTART_DELAY_MS_MIN);
    expect(restartDelayMs(1)).toBe(2 * PROGRAM_RESTART_DELAY_MS_MIN);
    expect(restartDelayMs(3)).toBe(8 * PROGRAM_RESTART_DELAY_MS_MIN);
    expect(restartDelayMs(10)).toBe(PROGRAM_RESTART_DELAY_MS_MAX);
    expect(restartDelayMs(1000)).toBe(PROGRAM_RESTART_DELAY_MS_MAX);
  });

  it("ProgramOutput keeps the last lines of both streams, joins partial lines, cuts long ones", () => {
    const seen: string[] = [];
    const output = new ProgramOutput((line, stream) => seen.push(`${stream}:${line}`), 3, 10);
    output.write("stdout", "one\r\ntw");
    output.write("stderr", "err\n");
    output.write("stdout", "o\nthree\n");
    output.write("stdout", "x".repeat(50));
    output.end("stdout");
    expect(seen).toEqual([
      "stdout:one",
      "stderr:err",
      "stdout:two",
      "stdout:three",
      `stdout:${"x".repeat(10)} [line cut]`,
    ]);
    expect(output.tail()).toEqual(["two", "three", `${"x".repeat(10)} [line cut]`]);
  });

  it("pickFreePort gives a loopback port nothing listens on", async () => {
    const port = await pickFreePort();
    expect(port).toBeGreaterThan(0);
    expect(await portIsFree(port)).toBe(true);
  });
});

describe("ProgramProcess with real programs", () => {
  it("starts redis-server on a private port in an emptied 0700 directory; PING answers +PONG", async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "stale.rdb"), "left from an earlier run");
    const lines: string[] = [];
    const redis = program({ command: REDIS, dir, onOutput: (line) => lines.push(line) });
    await redis.start();
    const status = redis.describe();
    expect(status.state).toBe("running");
    expect(status.pid).toBeGreaterThan(0);
    expect(status.argv).toEqual([
      "redis-server",
      "--port",
      String(redis.port),
      "--dir",
      resolve(dir),
      "--save",
      "",
    ]);
    expect(await ask(redis.port!, "PING")).toBe("+PONG");
    expect(existsSync(join(dir, "stale.rdb"))).toBe(false);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await redis.whenRunning();
    await redis.stop();
    expect(redis.describe().state).toBe("stopped");
    expect(alive(status.pid!)).toBe(false);
    expect(lines.join("\n")).toMatch(/Ready to accept connections/);
  });

  it("a program that exits at once rejects with its command, exit code and output", async () => {
    const failing = program({ command: "sh -c 'echo boom >&2; exit 3'" });
    const error = await startedError(failing.start());
    expect(error.code).toBe("ERR_APP_START");
    expect(error.message).toContain("boom");
    expect(error.message).toContain("exited with code 3");
    expect(error.message).toContain("command: sh -c 'echo boom >&2; exit 3'");
    expect(error.exit?.code).toBe(3);
    const status = failing.describe();
    expect(status.state).toBe("exited");
    expect(status.exits).toBe(1);
    expect(status.lastExit?.code).toBe(3);
    await expect(failing.whenRunning()).rejects.toMatchObject({ code: "ERR_APP_NOT_RUNNING" });
  });

  it("a program that never listens times out and is killed", async () => {
    const sleeper = program({ command: "sleep 30", startTimeoutMs: 300 });
    const began = Date.now();
    const error = await startedError(sleeper.start());
    expect(Date.now() - began).toBeLessThan(3000);
    expect(error.code).toBe("ERR_APP_START");
    expect(error.message).toContain("within 300 ms (startTimeoutMs)");
    expect(error.exit?.signal).toBe("SIGKILL");
    expect(sleeper.describe().pid).toBe(null);
  });

  it("a program that cannot be spawned rejects with the reason", async () => {
    const missing = program({ command: "apus-no-such-program --port {port}" });
    const error = await startedError(missing.start());
    expect(error.code).toBe("ERR_APP_START");
    expect(error.message).toContain("could not be spawned");
    expect(error.message).toContain("ENOENT");
  });

  it("a port already in use is refused before spawning", async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
    const port = (squatter.address() as { port: number }).port;
    const redis = program({ command: REDIS, port });
    const error = await startedError(redis.start());
    expect(error.message).toContain("already in use");
    squatter.close();
  });

  it("kill -9 of the program: onExit fires, describe() says exited, restart 'never' leaves it", async () => {
    const exits: ProgramExit[] = [];
    const redis = program({ command: REDIS, onExit: (exit) => exits.push(exit) });
    await redis.start();
    const pid = redis.pid!;
    process.kill(pid, "SIGKILL");
    await until(() => exits.length === 1);
    expect(exits[0]!.signal).toBe("SIGKILL");
    const status = redis.describe();
    expect(status).toMatchObject({ state: "exited", pid: null, exits: 1, restarts: 0 });
    expect(status.lastExit?.signal).toBe("SIGKILL");
    await expect(redis.whenRunning()).rejects.toMatchObject({ code: "ERR_APP_NOT_RUNNING" });
    // The caller rebuilds: start() again empties the directory and counts a restart.
    await redis.start();
    expect(redis.describe()).toMatchObject({ state: "running", restarts: 1 });
    expect(await ask(redis.port!, "PING")).toBe("+PONG");
  });

  it("restart 'always' brings it back on a new pid, the same port, an emptied directory", async () => {
    const exits: ProgramExit[] = [];
    const running: number[] = [];
    const dir = freshDir();
    const redis = program({
      command: REDIS,
      dir,
      restart: "always",
      onExit: (exit) => exits.push(exit),
      onRunning: (pid) => running.push(pid),
    });
    await redis.start();
    const first = redis.pid!;
    const port = redis.port!;
    expect(await ask(port, "SET k v")).toBe("+OK");
    writeFileSync(join(dir, "marker"), "x");
    process.kill(first, "SIGKILL");
    await until(() => running.length === 2);
    await redis.whenRunning();
    expect(exits).toHaveLength(1);
    expect(redis.pid).not.toBe(first);
    expect(redis.port).toBe(port);
    expect(existsSync(join(dir, "marker"))).toBe(false);
    expect(await ask(port, "PING")).toBe("+PONG");
    expect(await ask(port, "GET k")).toBe("$-1");
    expect(redis.describe()).toMatchObject({ state: "running", exits: 1, restarts: 1 });
  });

  it("restart 'always' backs off, doubling, while the program keeps crashing soon after start", async () => {
    const script = join(ROOT, "crashy.mjs");
    writeFileSync(
      script,
      `import { createServer } from "node:net";
createServer().listen(Number(process.argv[2]), "127.0.0.1", () => setTimeout(() => process.exit(1), 30));
`,
    );
    const exitTimes: number[] = [];
    const crashy = program({
      command: quoteArgv([process.execPath, script, "{port}"]),
      restart: "always",
      onExit: () => exitTimes.push(Date.now()),
    });
    await crashy.start();
    await until(() => exitTimes.length >= 3, 10_000);
    // Delays before restarts 1 and 2: restartDelayMs(0) and restartDelayMs(1) (lower bounds only).
    expect(exitTimes[1]! - exitTimes[0]!).toBeGreaterThanOrEqual(restartDelayMs(0) - 10);
    expect(exitTimes[2]! - exitTimes[1]!).toBeGreaterThanOrEqual(restartDelayMs(1) - 10);
    expect(crashy.describe().exits).toBeGreaterThanOrEqual(3);
    await crashy.stop();
    expect(crashy.describe().state).toBe("stopped");
  });

  it("stop() SIGKILLs a program that ignores SIGTERM after the grace period; stop() is idempotent", async () => {
    const lines: string[] = [];
    const stubborn = program({
      command: stubbornListener(),
      stopGraceMs: 300,
      onOutput: (line) => lines.push(line),
    });
    await stubborn.start();
    const pid = stubborn.pid!;
    const began = Date.now();
    await Promise.all([stubborn.stop(), stubborn.stop()]);
    expect(Date.now() - began).toBeGreaterThanOrEqual(290);
    expect(alive(pid)).toBe(false);
    expect(lines).toContain("ignoring SIGTERM");
    expect(stubborn.describe()).toMatchObject({ state: "stopped", pid: null, exits: 0 });
    await stubborn.stop();
    await expect(stubborn.whenRunning()).rejects.toMatchObject({ code: "ERR_APP_NOT_RUNNING" });
  });

  it("stop() during start() rejects the start and leaves nothing running", async () => {
    const sleeper = program({ command: "sleep 30", startTimeoutMs: 5000 });
    const starting = sleeper.start();
    await until(() => sleeper.pid !== null);
    const pid = sleeper.pid!;
    await sleeper.stop();
    const error = await startedError(starting);
    expect(error.message).toContain("stop() was called");
    expect(alive(pid)).toBe(false);
    expect(sleeper.describe()).toMatchObject({ state: "stopped", exits: 0 });
  });

  it("a replica process that exits does not leave its program behind", async () => {
    const script = join(ROOT, "replica-exits.ts");
    const module = resolve("src/app/program/program-process.ts");
    writeFileSync(
      script,
      `import { ProgramProcess } from ${JSON.stringify(module)};
const program = new ProgramProcess({ command: ${JSON.stringify(REDIS)}, dir: ${JSON.stringify(freshDir())}, replicaId: 1 });
await program.start();
console.log(program.pid);
process.exit(0);
`,
    );
    const out = execFileSync(process.execPath, [script], { encoding: "utf8", timeout: 20_000 });
    const pid = Number(out.trim());
    expect(pid).toBeGreaterThan(0);
    await until(() => !alive(pid), 2000);
  });
});

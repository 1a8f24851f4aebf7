/**
 * Runs and supervises one replica's copy of an unmodified server program (transparent mode,
 * `--app`): a fresh, empty directory; the program spawned without a shell in its own process
 * group, listening on a private loopback port; ready once a TCP connect to that port succeeds;
 * its output kept in a small ring; an unexpected exit reported, counted and, under restart
 * "always", followed by a fresh start after a capped backoff. stop() is SIGTERM, a grace period,
 * then SIGKILL, and a process "exit" hook kills whatever is still running when the replica ends.
 *
 * The copy always starts empty: the replica rebuilds it by replaying its log, so whoever starts
 * or restarts the program (this class under "always", the caller under "never") must replay.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdir, rm } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, parse, resolve } from "node:path";
import { ApusError, assert } from "../../core/errors.ts";
import {
  PROGRAM_PLACEHOLDERS,
  ProgramError,
  type ProgramExit,
  type ProgramPlaceholderValues,
  programArgv,
  quoteArgv,
} from "./program-command.ts";
import { ProgramOutput, type ProgramStream } from "./program-output.ts";

export {
  PROGRAM_PLACEHOLDERS,
  ProgramError,
  type ProgramErrorCode,
  type ProgramExit,
  programArgv,
  splitCommand,
} from "./program-command.ts";
export { PROGRAM_OUTPUT_LINES_MAX } from "./program-output.ts";

/** The program listens here only: the copy is private to its replica. */
export const PROGRAM_HOST = "127.0.0.1";
/** Default startTimeoutMs: how long start() waits for the program to accept a connection. */
export const PROGRAM_START_TIMEOUT_MS = 10_000;
/** Default stopGraceMs: how long stop() waits after SIGTERM before it sends SIGKILL. */
export const PROGRAM_STOP_GRACE_MS = 5_000;
/** Pause between connection attempts while the program is starting. */
export const PROGRAM_CONNECT_RETRY_MS = 25;
/**
 * One connection attempt gives up after this long (loopback answers at once unless the
 * program's accept backlog is full).
 */
export const PROGRAM_CONNECT_ATTEMPT_MS = 500;
/** Restart "always": the delay before the first restart; it doubles with each failure in a row. */
export const PROGRAM_RESTART_DELAY_MS_MIN = 100;
/** Restart "always": the cap on the doubling delay. */
export const PROGRAM_RESTART_DELAY_MS_MAX = 5_000;
/** A run that lasted this long was healthy: the next restart waits the minimum delay again. */
export const PROGRAM_RESTART_STABLE_MS = 10_000;
/**
 * After the program exits, how long to wait for the rest of its output (a grandchild it started
 * may hold the pipes open).
 */
export const PROGRAM_OUTPUT_DRAIN_MS = 200;
/** Mode of the program's directory: only the replica's user may read the copy. */
export const PROGRAM_DIR_MODE = 0o700;

assert(PROGRAM_RESTART_DELAY_MS_MIN > 0, "PROGRAM_RESTART_DELAY_MS_MIN must be positive");
assert(PROGRAM_RESTART_DELAY_MS_MIN <= PROGRAM_RESTART_DELAY_MS_MAX, "restart delay min > max");
assert(PROGRAM_CONNECT_RETRY_MS < PROGRAM_START_TIMEOUT_MS, "connect retry >= start timeout");
assert(PROGRAM_CONNECT_ATTEMPT_MS <= PROGRAM_START_TIMEOUT_MS, "connect attempt > start timeout");

export type ProgramState = "starting" | "running" | "exited" | "stopped";
export type ProgramRestartPolicy = "never" | "always";
export const PROGRAM_RESTART_POLICIES: readonly ProgramRestartPolicy[] = ["never", "always"];

export interface ProgramOptions {
  /** The command template, e.g. `redis-server --port {port} --dir {dir} --save ''`. */
  readonly command: string;
  /** The directory the replica owns for the copy ({dir}); emptied and recreated on every start. */
  readonly dir: string;
  /** This replica's id ({id}). */
  readonly replicaId: number;
  /** The loopback port ({port}); a free one is picked on the first start when absent. */
  readonly port?: number;
  /** "never" (default): an exit is reported, the caller decides. "always": restart, backoff. */
  readonly restart?: ProgramRestartPolicy;
  readonly startTimeoutMs?: number;
  readonly stopGraceMs?: number;
  /** Each line the program writes (for the replica's logger). */
  readonly onOutput?: (line: string, stream: ProgramStream) => void;
  /**
   * The program ended other than through stop(), and no start() rejection reports it: a crash
   * after start, or a failed automatic restart.
   */
  readonly onExit?: (exit: ProgramExit) => void;
  /** It accepts connections (after start() and after each automatic restart): replay now. */
  readonly onRunning?: (pid: number) => void;
}

/** describe(): a plain JSON object for /status. */
export interface ProgramStatus {
  readonly command: string;
  readonly argv: readonly string[];
  readonly pid: number | null;
  readonly port: number | null;
  readonly dir: string;
  readonly state: ProgramState;
  readonly restart: ProgramRestartPolicy;
  /** Ends other than through stop(): crashes, exits during start, start timeouts. */
  readonly exits: number;
  /** Starts after the first one (automatic or by the caller). */
  readonly restarts: number;
  readonly lastExit: ProgramExit | null;
  /** Why the last start failed, if it did. */
  readonly lastError: string | null;
  readonly outputTail: readonly string[];
}

/** One spawned process, from spawn to its exit. */
interface ProgramRun {
  readonly child: ChildProcess;
  /** Undefined when spawn itself failed (no such file, no permission). */
  readonly pid: number | undefined;
  readonly output: ProgramOutput;
  readonly startedAtMs: number;
  /** Set when the process has exited and its output is drained. */
  exit: ProgramExit | null;
  readonly exited: Promise<ProgramExit>;
}

/** Restart "always": the delay before a restart after `failureCount` failures in a row. */
export function restartDelayMs(failureCount: number): number {
  assert(Number.isInteger(failureCount) && failureCount >= 0, "failureCount must be >= 0");
  const doublings = Math.min(failureCount, 30);
  return Math.min(PROGRAM_RESTART_DELAY_MS_MAX, PROGRAM_RESTART_DELAY_MS_MIN * 2 ** doublings);
}

/** A free TCP port on the loopback address: listen on port 0, read the port, close. */
export function pickFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, PROGRAM_HOST, () => {
      const address = server.address();
      assert(address !== null && typeof address === "object", "listen gave no port");
      server.close(() => resolvePort(address.port));
    });
  });
}

/** Whether nothing listens on PROGRAM_HOST:port (we can bind it). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once("error", () => resolveFree(false));
    server.listen(port, PROGRAM_HOST, () => server.close(() => resolveFree(true)));
  });
}

/** One TCP connect to PROGRAM_HOST:port; true when it is accepted within attemptMs. */
export function portAccepts(port: number, attemptMs: number): Promise<boolean> {
  return new Promise((resolveAccepts) => {
    const socket = connect({ port, host: PROGRAM_HOST });
    const finish = (accepted: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolveAccepts(accepted);
    };
    const timer = setTimeout(() => finish(false), attemptMs);
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/**
 * Empty and recreate the program's directory with PROGRAM_DIR_MODE. Refuses the filesystem root,
 * the home directory and the working directory: emptying one of those is never what was meant.
 */
export async function prepareProgramDir(dir: string): Promise<void> {
  const absolute = resolve(dir);
  checkProgramDir(absolute);
  await rm(absolute, { recursive: true, force: true });
  await mkdir(dirname(absolute), { recursive: true });
  await mkdir(absolute, { mode: PROGRAM_DIR_MODE });
  await chmod(absolute, PROGRAM_DIR_MODE);
}

function checkProgramDir(absolute: string): void {
  const refused = [parse(absolute).root, homedir(), process.cwd()].map((p) => resolve(p));
  if (refused.includes(absolute)) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `program dir ${absolute} would be emptied on every start; give the program a directory of its own (e.g. under the replica's data directory)`,
    );
  }
}

/** Live programs' process groups, killed by the exit hook. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/**
 * Send a signal to a program's process group (the program and anything it started). A group
 * already gone (ESRCH), or no longer ours (EPERM), is not an error.
 */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ESRCH" && code !== "EPERM") throw error;
  }
}

/** Why a start failed, before the program's end is known (the error is built after it). */
class StartFailure {
  readonly what: string;
  constructor(what: string) {
    this.what = what;
  }
}

/** The replica is ending: nothing it started may outlive it. Synchronous, as "exit" requires. */
function killLiveProgramsSync(): void {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone already, or not ours any more: nothing left to do while exiting
    }
  }
}

function trackGroup(pid: number): void {
  if (!exitHookInstalled) {
    process.on("exit", killLiveProgramsSync);
    exitHookInstalled = true;
  }
  liveGroups.add(pid);
}

/** Resolves true when `promise` settles within ms, false otherwise; leaves no timer behind. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolveSettled) => {
    const timer = setTimeout(() => resolveSettled(false), ms);
    void promise.finally(() => {
      clearTimeout(timer);
      resolveSettled(true);
    });
  });
}

function describeEnd(exit: ProgramExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

function checkWholeNumber(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ApusError(
      "ERR_INVALID_CONFIG",
      `program ${name} is ${value}; use a whole number from ${min} to ${max}`,
    );
  }
}

export class ProgramProcess {
  private readonly command: string;
  private readonly dir: string;
  private readonly replicaId: number;
  private readonly restart: ProgramRestartPolicy;
  private readonly startTimeoutMs: number;
  private readonly stopGraceMs: number;
  private readonly options: ProgramOptions;

  /** The loopback port; null until the first start picks one. Never changes once set. */
  private portNumber: number | null;
  private state: ProgramState = "stopped";
  /** The process now spawned, from spawn until its exit is handled. */
  private run: ProgramRun | null = null;
  /** Fills the emptied directory before the next spawn (start(seed)). */
  private seed: ((dir: string) => Promise<void>) | null = null;
  /** The argv last spawned ([] before the first start). */
  private argv: readonly string[] = [];
  /** The output of the last run, kept for describe() after it ended. */
  private lastOutput: ProgramOutput = new ProgramOutput();
  private exits = 0;
  private restarts = 0;
  private spawns = 0;
  private lastExit: ProgramExit | null = null;
  private lastError: string | null = null;
  /**
   * Restart "always": ends in a row (failed restarts, runs shorter than PROGRAM_RESTART_STABLE_MS)
   * that each doubled the restart delay; a stable run or start() resets it.
   */
  private failureCount = 0;
  /** The pending automatic restart. Invariant: non-null only in state "exited" under "always". */
  private restartTimer: NodeJS.Timeout | null = null;
  /** The start in progress (by start() or by a restart). */
  private launching: Promise<void> | null = null;
  /** stop() in progress. */
  private stopping: Promise<void> | null = null;
  /** Set by stop(), cleared by start(): exits and start failures after it are intended. */
  private stopRequested = false;
  /** whenRunning() callers waiting for state "running". */
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: ProgramOptions) {
    this.options = options;
    this.command = options.command;
    this.restart = options.restart ?? "never";
    this.startTimeoutMs = options.startTimeoutMs ?? PROGRAM_START_TIMEOUT_MS;
    this.stopGraceMs = options.stopGraceMs ?? PROGRAM_STOP_GRACE_MS;
    this.replicaId = options.replicaId;
    this.portNumber = options.port ?? null;
    if (typeof options.dir !== "string" || options.dir.length === 0) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        "program dir is empty; give the program a directory",
      );
    }
    this.dir = resolve(options.dir);
    checkProgramDir(this.dir);
    if (!PROGRAM_RESTART_POLICIES.includes(this.restart)) {
      throw new ApusError(
        "ERR_INVALID_CONFIG",
        `program restart is ${JSON.stringify(this.restart)}; use "never" or "always"`,
      );
    }
    checkWholeNumber("replicaId", this.replicaId, 1, Number.MAX_SAFE_INTEGER);
    if (this.portNumber !== null) checkWholeNumber("port", this.portNumber, 1, 65535);
    checkWholeNumber("startTimeoutMs", this.startTimeoutMs, 1, 24 * 3600 * 1000);
    checkWholeNumber("stopGraceMs", this.stopGraceMs, 0, 24 * 3600 * 1000);
    // The template is checked now, at the edge, with stand-in values.
    programArgv(this.command, this.placeholderValues(1));
  }

  /** The loopback port, or null before the first start picked one. */
  get port(): number | null {
    return this.portNumber;
  }

  get pid(): number | null {
    return this.run?.pid ?? null;
  }

  /**
   * Empty the directory (then let `seed` fill it: a checkpoint to start from), spawn the program
   * and resolve once it accepts a TCP connection on its
   * port. Rejects with ProgramError("ERR_APP_START") (the command, how it ended, its last output)
   * when it cannot be spawned, exits first, or startTimeoutMs passes (it is killed then).
   * Allowed when stopped or exited; a pending automatic restart is cancelled.
   */
  async start(seed?: (dir: string) => Promise<void>): Promise<void> {
    assert(this.launching === null, "ProgramProcess.start(): a start is already in progress");
    this.seed = seed ?? null;
    assert(this.state !== "running", "ProgramProcess.start(): already running");
    assert(this.stopping === null, "ProgramProcess.start(): stop() is in progress");
    this.cancelRestart();
    this.stopRequested = false;
    this.failureCount = 0;
    if (this.spawns > 0) this.restarts += 1;
    try {
      await this.launch();
    } catch (error) {
      this.rejectWaiters(error as Error);
      throw error;
    }
  }

  /**
   * Resolves when the program accepts connections: at once when running, else after the start or
   * automatic restart in progress. Rejects with ProgramError("ERR_APP_NOT_RUNNING") when it is
   * stopped or has exited with no restart coming, and when stop() is called meanwhile.
   */
  whenRunning(): Promise<void> {
    if (this.state === "running") return Promise.resolve();
    if (this.state === "starting" || this.restartTimer !== null) {
      return new Promise((resolveRunning, reject) => {
        this.waiters.push({ resolve: resolveRunning, reject });
      });
    }
    return Promise.reject(this.notRunningError());
  }

  /**
   * SIGTERM to the program's process group, up to stopGraceMs, then SIGKILL; resolves when it is
   * gone. Cancels a pending restart and a start in progress. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  describe(): ProgramStatus {
    return {
      command: this.command,
      argv: [...this.argv],
      pid: this.pid,
      port: this.portNumber,
      dir: this.dir,
      state: this.state,
      restart: this.restart,
      exits: this.exits,
      restarts: this.restarts,
      lastExit: this.lastExit,
      lastError: this.lastError,
      outputTail: (this.run?.output ?? this.lastOutput).tail(),
    };
  }

  private placeholderValues(port: number): ProgramPlaceholderValues {
    return { port: String(port), dir: this.dir, host: PROGRAM_HOST, id: String(this.replicaId) };
  }

  private async launch(): Promise<void> {
    assert(this.run === null, "launch(): a program is still running");
    this.state = "starting";
    const launching = this.launchSteps();
    this.launching = launching;
    try {
      await launching;
    } finally {
      this.launching = null;
    }
  }

  private async launchSteps(): Promise<void> {
    let run: ProgramRun | null = null;
    try {
      this.portNumber ??= await pickFreePort();
      const port = this.portNumber;
      this.checkNotStopped();
      if (!(await portIsFree(port))) {
        throw new StartFailure(
          `port ${PROGRAM_HOST}:${port} is already in use (a copy left from an earlier run, or another program); free it or choose another port`,
        );
      }
      this.checkNotStopped();
      await prepareProgramDir(this.dir);
      // A checkpoint to start from (files the program loads at start, e.g. dump.rdb), once.
      if (this.seed !== null) await this.seed(this.dir);
      this.seed = null;
      this.checkNotStopped();
      this.argv = programArgv(this.command, this.placeholderValues(port));
      run = this.spawnRun(this.argv);
      await this.waitAccepting(run, port);
    } catch (error) {
      throw await this.launchFailure(run, error);
    }
    this.state = "running";
    this.lastError = null;
    const pid = run.pid!;
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
    this.options.onRunning?.(pid);
  }

  /** A start failed: kill what was spawned, record how it ended, and return the start error. */
  private async launchFailure(run: ProgramRun | null, error: unknown): Promise<Error> {
    let exit: ProgramExit | null = null;
    if (run !== null) {
      if (run.pid !== undefined) signalGroup(run.pid, "SIGKILL");
      exit = await run.exited;
      this.run = null;
      this.lastOutput = run.output;
    }
    if (this.stopRequested) {
      return new ProgramError(
        "ERR_APP_START",
        `${this.commandLine()}: stop() was called before it accepted connections`,
        exit,
      );
    }
    this.state = "exited";
    if (exit !== null) {
      this.exits += 1;
      this.lastExit = exit;
    }
    let failure: Error;
    if (error instanceof StartFailure) failure = this.startError(error.what, exit);
    else if (error instanceof ProgramError || error instanceof ApusError) failure = error;
    else failure = this.startError(`could not be started: ${String(error)}`, exit, error);
    this.lastError = failure.message;
    return failure;
  }

  private checkNotStopped(): void {
    if (this.stopRequested) throw new ProgramError("ERR_APP_START", "stop() was called");
  }

  private spawnRun(argv: readonly string[]): ProgramRun {
    const output = new ProgramOutput(this.options.onOutput);
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: a terminal's Ctrl-C reaches the replica only (which stops the
      // program in order), and signals to -pid reach anything a wrapper script started.
      detached: true,
    });
    this.spawns += 1;
    const pid = child.pid;
    if (pid !== undefined) trackGroup(pid);
    for (const stream of ["stdout", "stderr"] as const) {
      const readable = child[stream]!;
      readable.setEncoding("utf8");
      readable.on("data", (text: string) => output.write(stream, text));
    }
    const run: ProgramRun = {
      child,
      pid,
      output,
      startedAtMs: performance.now(),
      exit: null,
      exited: this.watchExit(child, output),
    };
    this.run = run;
    void run.exited.then((exit) => {
      run.exit = exit;
      this.onRunExit(run);
    });
    return run;
  }

  /** How the child ended, once its output is drained (or PROGRAM_OUTPUT_DRAIN_MS passed). */
  private watchExit(child: ChildProcess, output: ProgramOutput): Promise<ProgramExit> {
    return new Promise((resolveExit) => {
      let closed = false;
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        output.end("stdout");
        output.end("stderr");
        resolveExit({ code, signal, outputTail: output.tail(), at: new Date().toISOString() });
      };
      child.once("close", () => {
        closed = true;
      });
      child.once("error", (error) => {
        // Emitted without "exit" when spawn fails; later errors (a failed kill) change nothing.
        if (child.pid === undefined) {
          output.note(`spawn failed: ${error.message}`);
          finish(null, null);
        }
      });
      child.once("exit", (code, signal) => {
        if (child.pid !== undefined) {
          liveGroups.delete(child.pid);
          // Anything it started and left behind would hold the port or the directory.
          signalGroup(child.pid, "SIGKILL");
        }
        if (closed) return finish(code, signal);
        const timer = setTimeout(() => finish(code, signal), PROGRAM_OUTPUT_DRAIN_MS);
        child.once("close", () => {
          clearTimeout(timer);
          finish(code, signal);
        });
      });
    });
  }

  /** Connect every PROGRAM_CONNECT_RETRY_MS until accepted; throws on exit or timeout. */
  private async waitAccepting(run: ProgramRun, port: number): Promise<void> {
    const deadline = performance.now() + this.startTimeoutMs;
    for (;;) {
      if (run.pid === undefined) {
        await run.exited;
        throw new StartFailure("could not be spawned (is it installed, on PATH, and executable?)");
      }
      if (run.exit !== null) {
        throw new StartFailure(
          `${describeEnd(run.exit)} before it accepted connections on ${PROGRAM_HOST}:${port} (a program that daemonizes must be told to stay in the foreground)`,
        );
      }
      this.checkNotStopped();
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) {
        throw new StartFailure(
          `did not accept a connection on ${PROGRAM_HOST}:${port} within ${this.startTimeoutMs} ms (startTimeoutMs), so it was killed; check that the command makes it listen on {port}`,
        );
      }
      const attemptMs = Math.max(1, Math.min(remainingMs, PROGRAM_CONNECT_ATTEMPT_MS));
      if ((await portAccepts(port, attemptMs)) && run.exit === null) {
        this.checkNotStopped();
        return;
      }
      await settlesWithin(run.exited, PROGRAM_CONNECT_RETRY_MS);
    }
  }

  /** The run ended. Start failures and stop() are handled where they happen; this is the rest. */
  private onRunExit(run: ProgramRun): void {
    if (this.run !== run || this.state !== "running" || this.stopRequested) return;
    const exit = run.exit!;
    this.run = null;
    this.lastOutput = run.output;
    this.exits += 1;
    this.lastExit = exit;
    this.state = "exited";
    if (performance.now() - run.startedAtMs >= PROGRAM_RESTART_STABLE_MS) this.failureCount = 0;
    if (this.restart === "always") this.scheduleRestart();
    else this.rejectWaiters(this.notRunningError());
    this.options.onExit?.(exit);
  }

  private scheduleRestart(): void {
    assert(this.restartTimer === null, "scheduleRestart(): a restart is already pending");
    const delayMs = restartDelayMs(this.failureCount);
    this.failureCount += 1;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.restartNow();
    }, delayMs);
  }

  private async restartNow(): Promise<void> {
    this.restarts += 1;
    try {
      await this.launch();
    } catch (error) {
      if (this.stopRequested) return;
      this.scheduleRestart();
      if (error instanceof ProgramError && error.exit !== null) this.options.onExit?.(error.exit);
    }
  }

  private cancelRestart(): void {
    if (this.restartTimer === null) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  private async stopNow(): Promise<void> {
    this.stopRequested = true;
    this.cancelRestart();
    const run = this.run;
    if (run?.pid !== undefined && run.exit === null) {
      signalGroup(run.pid, "SIGTERM");
      if (!(await settlesWithin(run.exited, this.stopGraceMs))) {
        signalGroup(run.pid, "SIGKILL");
      }
      await run.exited;
    }
    if (this.launching !== null) await this.launching.catch(() => {});
    if (this.run === run && run !== null) {
      this.lastOutput = run.output;
      this.run = null;
    }
    this.state = "stopped";
    this.rejectWaiters(this.notRunningError());
  }

  private rejectWaiters(error: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  private notRunningError(): ProgramError {
    const why =
      this.state === "stopped"
        ? "was stopped"
        : 'has exited (restart policy "never": the caller restarts it)';
    return new ProgramError(
      "ERR_APP_NOT_RUNNING",
      `${this.commandLine()}: the program ${why}`,
      this.lastExit,
    );
  }

  private commandLine(): string {
    return this.argv.length > 0 ? quoteArgv(this.argv) : this.command;
  }

  /** An ERR_APP_START error: what happened, the command, and the program's last lines of output. */
  private startError(what: string, exit: ProgramExit | null, cause?: unknown): ProgramError {
    const tail = exit?.outputTail ?? [];
    const lines = [`the program ${what}`, `command: ${this.commandLine()}`];
    if (tail.length > 0) lines.push("last output:", ...tail.map((line) => `  ${line}`));
    else lines.push("it wrote no output");
    return new ProgramError(
      "ERR_APP_START",
      lines.join("\n"),
      exit,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Placeholder names, for the flag's help text. */
export const PROGRAM_PLACEHOLDER_HELP = PROGRAM_PLACEHOLDERS.map((name) => `{${name}}`).join(" ");
